"""The environments a control plane serves, and the ``?environment=`` of its requests.

A control plane serves the environments of
:attr:`ServiceSettings.environments <otel_prompt_canary.service.settings.ServiceSettings.environments>`,
in promotion order (``staging,production``: a version goes from staging to production). Every
routes, rollouts and history endpoint takes ``?environment=`` (default
:data:`~otel_prompt_canary.names.DEFAULT_ENVIRONMENT`); an environment it does not serve is answered
404, naming the ones it serves, and nothing changes.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query

from otel_prompt_canary.errors import InvalidInputError, NotFoundError
from otel_prompt_canary.names import DEFAULT_ENVIRONMENT, ENVIRONMENT_PARAMETER
from otel_prompt_canary.registry.models import ENVIRONMENT_NAME_PATTERN, validate_environment_name
from otel_prompt_canary.service.deps import SettingsDep
from otel_prompt_canary.service.settings import ServiceSettings

__all__ = ["EnvironmentDep", "check_served", "get_environment", "previous_environment"]


def check_served(settings: ServiceSettings, environment: str) -> str:
    """``environment`` if this control plane serves it; else :class:`NotFoundError` (404) naming
    the ones it serves (:class:`InvalidInputError`, 422, for a name no environment can have)."""
    validate_environment_name(environment)
    if environment not in settings.environments:
        served = ", ".join(settings.environments)
        raise NotFoundError(f"unknown environment {environment!r}: this control plane serves {served}")
    return environment


def previous_environment(settings: ServiceSettings, environment: str) -> str | None:
    """The environment a version is promoted from into ``environment`` (None for the first)."""
    index = settings.environments.index(environment)
    return settings.environments[index - 1] if index > 0 else None


async def get_environment(
    settings: SettingsDep,
    environment: Annotated[
        str,
        Query(
            alias=ENVIRONMENT_PARAMETER,
            description="The environment whose routing flags, rollouts and audit trail to use",
            json_schema_extra={"pattern": ENVIRONMENT_NAME_PATTERN.pattern, "examples": ["staging"]},
        ),
    ] = DEFAULT_ENVIRONMENT,
) -> str:
    """The ``?environment=`` of the request, served by this control plane."""
    try:
        return check_served(settings, environment)
    except InvalidInputError as exc:
        raise InvalidInputError(f"query.environment: {exc}") from None


EnvironmentDep = Annotated[str, Depends(get_environment)]
