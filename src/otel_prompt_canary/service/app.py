"""The control plane's HTTP application: wiring only; the handlers live in the route modules."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from otel_prompt_canary._version import __version__
from otel_prompt_canary.errors import PromptCanaryError
from otel_prompt_canary.evals.probes import Prober, parse_probes
from otel_prompt_canary.loop.controller import RolloutController
from otel_prompt_canary.loop.retention import Pruner, Retention
from otel_prompt_canary.loop.store import LoopStore, SqlLoopStore
from otel_prompt_canary.registry.base import Registry
from otel_prompt_canary.registry.sql import SqlRegistry
from otel_prompt_canary.service import receivers
from otel_prompt_canary.service.api import ROUTERS
from otel_prompt_canary.service.api.routes import NotModifiedShortcut
from otel_prompt_canary.service.console import create_console
from otel_prompt_canary.service.deps import RouteWatchDep, SettingsDep
from otel_prompt_canary.service.drift_monitoring import DriftMonitoring
from otel_prompt_canary.service.errors import error_response, install_error_handlers
from otel_prompt_canary.service.limits import RequestGuard, describe_guard
from otel_prompt_canary.service.schemas import ErrorResponse
from otel_prompt_canary.service.settings import ServiceSettings
from otel_prompt_canary.service.watch import RouteWatches, routes_reader

__all__ = ["create_app"]

_DESCRIPTION = """\
The control plane of otel-prompt-canary: an immutable, versioned prompt registry and the routing
flag of each prompt (which version is stable, which is in canary, at what weight).

Every write (POST) needs `Authorization: Bearer <token>`; the alert receivers and the report
endpoint also accept their senders' own credentials and signatures (docs/alerts.md). Reads are open
unless the service runs with a read token: then they need `Authorization: Bearer <read token>` (or
the write token; the reporting credential reads routes, prompt versions and policies).

Lists come in pages: `limit` (default 100, at most 1000) and an opaque `cursor`; the `Link` header
of a page names the next one (`rel="next"`), and its absence says it was the last.

Errors answer `{"error": {"type": ..., "message": ...}}`. Capacity and deadlines answer 503 with
`Retry-After` (too many connections or parked long-polls, a request over its deadline), 408 (a body
or headers that did not arrive in time); see docs/control-plane.md.
"""


def create_app(registry: Registry, settings: ServiceSettings) -> FastAPI:
    """The ASGI application serving ``registry`` (which the caller keeps and closes).

    An :class:`~otel_prompt_canary.registry.sql.SqlRegistry` also stores alerts and reports (its
    :class:`~otel_prompt_canary.loop.store.SqlLoopStore`); with any other registry, the alert
    receivers and ``/v1/reports`` answer 501. With ``settings.controller`` (the default) and a store
    of reports, the rollout controller runs while the application does (its lifespan);
    ``app.state.controller`` holds it (else None).
    """
    watch = RouteWatches(
        routes_reader(registry), settings.environments, poll_seconds=settings.store_poll_seconds
    )
    store: LoopStore | None = SqlLoopStore(registry) if isinstance(registry, SqlRegistry) else None
    controller: RolloutController | None = None
    if settings.controller and store is not None:
        controller = RolloutController(
            registry,
            store,
            interval_seconds=settings.controller_interval_seconds,
            time_scale=settings.time_scale,
            on_change=lambda _route: watch.notify_threadsafe(),
            environments=settings.environments,
        )
    # Retention (docs/registry.md#retention): the store is pruned every hour.
    pruner = (
        Pruner(registry, Retention.parse(settings.retention)) if isinstance(registry, SqlRegistry) else None
    )
    # Drift monitoring of every prompt's live stable version (docs/drift.md).
    drift = DriftMonitoring.of(registry, settings)
    # Golden-set probes of the live stable versions (docs/evaluations.md).
    probes = parse_probes(settings.probes)
    prober = Prober(registry, probes) if probes and isinstance(registry, SqlRegistry) else None

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if controller is not None:
            controller.start()
        if pruner is not None:
            pruner.start()
        if drift is not None:
            drift.start()
        if prober is not None:
            prober.start()
        try:
            yield
        finally:
            if prober is not None:
                await run_in_threadpool(prober.stop)
            if drift is not None:
                await run_in_threadpool(drift.stop)
            if pruner is not None:
                await run_in_threadpool(pruner.stop)
            if controller is not None:
                await run_in_threadpool(controller.stop)
            await watch.aclose()

    app = FastAPI(
        title="otel-prompt-canary control plane",
        version=__version__,
        description=_DESCRIPTION,
        openapi_url="/openapi.json",
        redoc_url=None,
        lifespan=lifespan,
    )
    build_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            describe_guard(build_openapi(), settings)
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]
    app.state.registry = registry
    app.state.settings = settings
    app.state.route_watch = watch
    app.state.loop_store = store
    app.state.controller = controller
    app.state.drift_monitor = None if drift is None else drift.monitor
    # The last added runs first: the guard (credentials, limits, deadlines) before the shortcut.
    app.add_middleware(NotModifiedShortcut, watch=watch)
    app.add_middleware(RequestGuard, settings=settings)
    install_error_handlers(app)
    for resource in ROUTERS:
        app.include_router(resource)
    app.include_router(receivers.router)
    # The web console (docs/console.md), and "/" leads there.
    app.mount("/console", create_console(app))
    app.add_api_route("/", to_console, methods=["GET"], include_in_schema=False)
    app.add_api_route(
        "/healthz",
        healthz,
        methods=["GET"],
        tags=["health"],
        summary="Health",
        responses={503: {"model": ErrorResponse, "description": "The store is unreachable"}},
    )
    return app


async def to_console() -> RedirectResponse:
    """``/``: the console."""
    return RedirectResponse("/console/", status_code=307)


async def healthz(watch: RouteWatchDep, settings: SettingsDep) -> JSONResponse:
    """``ok`` when the store answers a read of the routing flags (of the first environment served)."""
    try:
        snap = await watch[settings.environments[0]].snapshot()
    except PromptCanaryError as exc:
        return error_response(503, "RegistryUnavailableError", f"the store is unreachable: {exc}")
    except Exception as exc:  # any store failure means unhealthy, whatever its type
        return error_response(
            503, "RegistryUnavailableError", f"the store is unreachable: {type(exc).__name__}"
        )
    return JSONResponse({"status": "ok", "version": __version__, "routes": len(snap.routes)})
