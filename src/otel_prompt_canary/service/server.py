"""Running the control plane with uvicorn (what ``prompt-canary serve`` does).

On shutdown, long-polls waiting on ``GET /v1/routes`` are answered at once (304) so that a restart
takes no longer than the requests in flight, instead of up to a minute of held polls.
"""

from __future__ import annotations

from types import FrameType

import uvicorn
from fastapi import FastAPI

from otel_prompt_canary.registry.base import Registry
from otel_prompt_canary.service.app import create_app
from otel_prompt_canary.service.settings import ServiceSettings
from otel_prompt_canary.service.watch import RouteWatch

__all__ = ["ControlPlaneServer", "build_server", "run_server"]


class ControlPlaneServer(uvicorn.Server):
    """A uvicorn server that releases long-polls as soon as it is asked to stop."""

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self._watch: RouteWatch = app.state.route_watch

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._watch.release()
        super().handle_exit(sig, frame)

    def stop(self) -> None:
        """Ask the server to stop (from any thread)."""
        self._watch.release()
        self.should_exit = True


def build_server(
    registry: Registry,
    settings: ServiceSettings,
    *,
    host: str = "127.0.0.1",
    port: int = 8787,
    log_level: str = "info",
) -> ControlPlaneServer:
    """A server for ``registry``, ready to ``run()``."""
    app = create_app(registry, settings)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        lifespan="on",
        # Requests in flight get this long to finish once a stop is asked.
        timeout_graceful_shutdown=5,
    )
    return ControlPlaneServer(config, app)


def run_server(
    registry: Registry,
    settings: ServiceSettings,
    *,
    host: str = "127.0.0.1",
    port: int = 8787,
    log_level: str = "info",
) -> None:
    """Serve ``registry`` until interrupted (Ctrl-C or SIGTERM)."""
    build_server(registry, settings, host=host, port=port, log_level=log_level).run()
