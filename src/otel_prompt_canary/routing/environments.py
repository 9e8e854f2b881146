"""Which environment an application, a router or a tool routes by.

One control plane may serve several environments (``staging``, ``production``...), each with its
own routing flag of every prompt (docs/environments.md). A process names its environment with an
argument, else the ``OTEL_PROMPT_CANARY_ENVIRONMENT`` variable, else it is
:data:`~otel_prompt_canary.names.DEFAULT_ENVIRONMENT` (``production``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from otel_prompt_canary.names import DEFAULT_ENVIRONMENT, ENVIRONMENT_VARIABLE
from otel_prompt_canary.registry.models import validate_environment_name

__all__ = ["resolve_environment"]


def resolve_environment(environment: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """``environment`` when given, else ``OTEL_PROMPT_CANARY_ENVIRONMENT`` (read from ``environ``,
    by default the process's), else :data:`~otel_prompt_canary.names.DEFAULT_ENVIRONMENT`.

    Raises :class:`~otel_prompt_canary.errors.InvalidInputError` for a name no environment can
    have, saying where it came from.
    """
    if environment is not None:
        return validate_environment_name(environment)
    variables = os.environ if environ is None else environ
    value = variables.get(ENVIRONMENT_VARIABLE, "").strip()
    if not value:
        return DEFAULT_ENVIRONMENT
    try:
        return validate_environment_name(value)
    except ValueError as exc:
        raise type(exc)(f"{ENVIRONMENT_VARIABLE}: {exc}") from None
