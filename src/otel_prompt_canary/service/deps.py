"""Injectable dependencies of the route handlers: the registry, the settings, auth, the principal
and the actor.

Every one is ``async def``: none blocks, and FastAPI would run a plain ``def`` dependency in its
thread pool, a thread hop per dependency per request.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Depends, Header, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from otel_prompt_canary.errors import AuthenticationError, InvalidInputError, PromptCanaryError
from otel_prompt_canary.loop.store import LoopStore
from otel_prompt_canary.names import ACTOR_HEADER
from otel_prompt_canary.registry.base import Registry
from otel_prompt_canary.registry.models import PROMPT_NAME_PATTERN, validate_prompt_name
from otel_prompt_canary.registry.reviews import SqlReviews
from otel_prompt_canary.registry.sql import SqlRegistry
from otel_prompt_canary.service.principals import Principal, PrincipalDep, get_principal
from otel_prompt_canary.service.settings import ServiceSettings
from otel_prompt_canary.service.watch import RouteWatches

__all__ = [
    "ActorDep",
    "AuthorDep",
    "LoopStoreDep",
    "NotSupportedError",
    "Principal",
    "PrincipalDep",
    "PromptNameDep",
    "RegistryDep",
    "RouteWatchDep",
    "SettingsDep",
    "WriterDep",
    "get_actor",
    "get_actor_header",
    "get_loop_store",
    "get_principal",
    "get_registry",
    "get_route_watch",
    "get_settings",
    "require_writer",
    "reviews_of",
]

_ACTOR_PATTERN = re.compile(r"^[\w.@:+/ -]{1,128}$")

# Declared for the OpenAPI document; the request guard checks the header (and the role it needs).
_bearer = HTTPBearer(
    auto_error=False, description="A credential: the write token, or one of the credentials file"
)


async def get_registry(request: Request) -> Registry:
    """The registry the application serves."""
    registry: Registry = request.app.state.registry
    return registry


async def get_settings(request: Request) -> ServiceSettings:
    """The application's settings."""
    settings: ServiceSettings = request.app.state.settings
    return settings


async def get_route_watch(request: Request) -> RouteWatches:
    """The application's route watchers, one per environment (ETag and long-poll)."""
    watch: RouteWatches = request.app.state.route_watch
    return watch


class NotSupportedError(PromptCanaryError):
    """The registry behind this service cannot store alerts, reports or reviews."""

    http_status = 501


def reviews_of(registry: Registry) -> SqlReviews:
    """The reviews ``registry`` stores (:class:`NotSupportedError`, 501, when it cannot store them)."""
    if not isinstance(registry, SqlRegistry):
        raise NotSupportedError(
            f"this control plane's registry ({type(registry).__name__}) does not store reviews"
        )
    return SqlReviews(registry)


async def get_loop_store(request: Request) -> LoopStore:
    """The store of alerts and reports (501 when the registry has none)."""
    store: LoopStore | None = request.app.state.loop_store
    if store is None:
        registry = request.app.state.registry
        raise NotSupportedError(
            f"this control plane's registry ({type(registry).__name__}) does not store alerts or reports"
        )
    return store


RegistryDep = Annotated[Registry, Depends(get_registry)]
LoopStoreDep = Annotated[LoopStore, Depends(get_loop_store)]
SettingsDep = Annotated[ServiceSettings, Depends(get_settings)]
RouteWatchDep = Annotated[RouteWatches, Depends(get_route_watch)]


async def require_writer(
    request: Request,
    settings: SettingsDep,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Refuse a write the request guard did not let through.

    The guard (:mod:`otel_prompt_canary.service.access`) checks the credential and the role before
    the body is read and puts the principal on the request; one without a principal did not pass
    through it (an application assembled without the guard), and is refused.
    """
    if getattr(request.state, "principal", None) is None and not settings.writes_open:
        raise AuthenticationError(
            "missing credentials: writes need the header 'Authorization: Bearer <token>'"
        )


WriterDep = Annotated[None, Depends(require_writer)]


async def get_actor_header(
    actor: Annotated[
        str | None,
        Header(
            alias=ACTOR_HEADER,
            description="Who asks for the change, for the audit log",
        ),
    ] = None,
) -> str | None:
    """The validated ``X-Prompt-Canary-Actor`` header, or None when it is absent."""
    if actor is None:
        return None
    actor = actor.strip()
    if not _ACTOR_PATTERN.fullmatch(actor):
        raise InvalidInputError(
            f"invalid {ACTOR_HEADER} header: use 1-128 letters, digits, spaces or . _ @ : + / -"
        )
    return actor


async def get_actor(header: Annotated[str | None, Depends(get_actor_header)]) -> str:
    """The name recorded as the actor of a transition: the actor header, else ``api``."""
    return header if header is not None else "api"


AuthorDep = Annotated[str | None, Depends(get_actor_header)]
ActorDep = Annotated[str, Depends(get_actor)]


async def get_prompt_name(
    name: Annotated[
        str,
        Path(
            description="The prompt's name",
            # Described for clients; checked by validate_prompt_name, whose message says what is wrong.
            json_schema_extra={
                "pattern": PROMPT_NAME_PATTERN.pattern,
                "maxLength": 128,
                "examples": ["support-bot"],
            },
        ),
    ],
) -> str:
    """The ``{name}`` path parameter, validated."""
    return validate_prompt_name(name)


PromptNameDep = Annotated[str, Depends(get_prompt_name)]
