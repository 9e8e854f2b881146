"""What every console page needs: the service's parts, the environment shown, links that keep it,
and rendering a template with the visitor's name, forms' CSRF token and environment selector."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from starlette.datastructures import State

from otel_prompt_canary._version import __version__
from otel_prompt_canary.loop.drift import DriftMonitor
from otel_prompt_canary.loop.store import LoopStore
from otel_prompt_canary.names import DEFAULT_ENVIRONMENT, ENVIRONMENT_PARAMETER
from otel_prompt_canary.registry.base import Registry
from otel_prompt_canary.service.console.visitors import Visitor, VisitorDep, require_visitor_role
from otel_prompt_canary.service.environments import check_served
from otel_prompt_canary.service.principals import Role
from otel_prompt_canary.service.settings import ServiceSettings
from otel_prompt_canary.service.watch import RouteWatches

__all__ = [
    "TEMPLATES",
    "EnvironmentDep",
    "Service",
    "ServiceDep",
    "ShownEnvironmentDep",
    "readable_environments",
    "render",
]

_HERE = Path(__file__).parent
_KEPT_BY_SELECTOR = frozenset({"prompt", "q", "against"})
TEMPLATES = Jinja2Templates(directory=str(_HERE / "templates"))


def _number(value: float | None) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return f"{value:.4g}"


def _diff_line_class(line: str) -> str:
    if line.startswith(("+++", "---")):
        return "file"
    if line.startswith("@@"):
        return "hunk"
    if line.startswith("+"):
        return "add"
    if line.startswith("-"):
        return "del"
    return "same"


TEMPLATES.env.globals["num"] = _number
TEMPLATES.env.globals["line_class"] = _diff_line_class
TEMPLATES.env.globals["static"] = lambda name: f"/console/static/{name}?v={__version__}"


class Service:
    """The parts of the control plane the console reads and acts on (those the API handlers use)."""

    def __init__(self, state: State) -> None:
        self._state = state

    @property
    def registry(self) -> Registry:
        registry: Registry = self._state.registry
        return registry

    @property
    def settings(self) -> ServiceSettings:
        settings: ServiceSettings = self._state.settings
        return settings

    @property
    def store(self) -> LoopStore | None:
        store: LoopStore | None = self._state.loop_store
        return store

    @property
    def watch(self) -> RouteWatches:
        """What wakes the routers' long-polls when a flag changes."""
        watch: RouteWatches = self._state.route_watch
        return watch

    @property
    def drift(self) -> DriftMonitor | None:
        monitor: DriftMonitor | None = getattr(self._state, "drift_monitor", None)
        return monitor

    @property
    def environments(self) -> tuple[str, ...]:
        """The environments the control plane serves, in promotion order."""
        return tuple(self.settings.environments) or (DEFAULT_ENVIRONMENT,)


async def get_service(request: Request) -> Service:
    """The control plane behind the console."""
    state: State = request.app.state.service
    return Service(state)


ServiceDep = Annotated[Service, Depends(get_service)]


async def get_environment(
    service: ServiceDep,
    environment: Annotated[
        str | None, Query(alias=ENVIRONMENT_PARAMETER, max_length=64, description="The environment shown")
    ] = None,
) -> str:
    """The environment a page shows: the one asked for (404 for one the control plane does not
    serve), else the default one (or the first served)."""
    if environment is None or environment == "":
        served = service.environments
        return DEFAULT_ENVIRONMENT if DEFAULT_ENVIRONMENT in served else served[0]
    return check_served(service.settings, environment)


EnvironmentDep = Annotated[str, Depends(get_environment)]


async def get_shown_environment(
    request: Request, visitor: VisitorDep, service: ServiceDep, environment: EnvironmentDep
) -> str:
    """The environment a page shows, which the visitor must be allowed to read (403 otherwise, as
    the API refuses to show its flags); when none was asked for, the first one the visitor may read."""
    if request.query_params.get(ENVIRONMENT_PARAMETER) in (None, ""):
        readable = readable_environments(service, visitor)
        if readable and environment not in readable:
            environment = readable[0]
    require_visitor_role(
        request, visitor, Role.READ, environment, doing="read the routing flags, rollouts and audit trail"
    )
    return environment


ShownEnvironmentDep = Annotated[str, Depends(get_shown_environment)]


def readable_environments(service: Service, visitor: Visitor | None) -> tuple[str, ...]:
    """The environments served whose flags and rollouts ``visitor`` may read, in promotion order."""
    return tuple(env for env in service.environments if visitor is None or visitor.may(Role.READ, env))


def render(
    request: Request,
    template: str,
    *,
    visitor: Visitor | None,
    service: Service,
    environment: str,
    status_code: int = 200,
    **values: Any,
) -> HTMLResponse:
    """``template`` rendered with ``values`` and what every page shows."""

    def link(path: str, **params: object) -> str:
        query = {ENVIRONMENT_PARAMETER: environment, **params}
        pairs = [(key, str(value)) for key, value in query.items() if value is not None and value != ""]
        return f"{path}?{urlencode(pairs)}" if pairs else path

    context = {
        "visitor": visitor,
        "environment": environment,
        "environments": readable_environments(service, visitor),
        "link": link,
        # What the environment selector keeps of the page's query (a cursor is an environment's own).
        "kept": [(k, v) for k, v in request.query_params.multi_items() if k in _KEPT_BY_SELECTOR],
        **values,
    }
    response: HTMLResponse = TEMPLATES.TemplateResponse(request, template, context, status_code=status_code)
    # Pages show state and carry CSRF tokens: never cached, never framed by another site.
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    )
    response.headers["Referrer-Policy"] = "same-origin"
    return response
