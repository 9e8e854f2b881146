"""Running the control plane with uvicorn (what ``prompt-canary serve`` does).

On shutdown, long-polls waiting on ``GET /v1/routes`` are answered at once (304) so that a restart
takes no longer than the requests in flight, instead of up to a minute of held polls.

The server speaks HTTP/1.1 through :func:`~otel_prompt_canary.service.connections.guarded_protocol`
(a cap on open connections, a deadline for each request's headers), raises its open-files limit to
what ``max_connections`` needs when the system allows, and refuses to listen beyond loopback with
``insecure_dev``.
"""

from __future__ import annotations

import ipaddress
import logging
from types import FrameType

import uvicorn
from fastapi import FastAPI

from otel_prompt_canary.errors import InvalidInputError
from otel_prompt_canary.registry.base import Registry
from otel_prompt_canary.service.app import create_app
from otel_prompt_canary.service.connections import guarded_protocol
from otel_prompt_canary.service.settings import ServiceSettings
from otel_prompt_canary.service.watch import RouteWatches

__all__ = ["ControlPlaneServer", "build_server", "is_loopback", "run_server"]

logger = logging.getLogger("otel_prompt_canary.service")

#: Open files a process needs beside its connections (the store, logs, the listening socket...).
_SPARE_FILES = 64


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only (``localhost``, ``127.0.0.0/8``, ``::1``)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


def _check_host(settings: ServiceSettings, host: str) -> None:
    if settings.insecure_dev and not is_loopback(host):
        raise InvalidInputError(
            f"--insecure-dev listens on loopback only (127.0.0.1, ::1 or localhost), not {host!r}: "
            "give a --token to serve other hosts"
        )


def _raise_open_files_limit(settings: ServiceSettings) -> None:
    """Raise the soft limit of open files to what ``max_connections`` needs, within the hard limit."""
    try:
        import resource
    except ImportError:  # not on this platform: its own limits apply
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = settings.max_connections + _SPARE_FILES
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        if target > soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        if target < wanted:
            logger.warning(
                "open files are limited to %d: fewer than --max-connections %d can be served",
                target,
                settings.max_connections,
            )


class ControlPlaneServer(uvicorn.Server):
    """A uvicorn server that releases long-polls as soon as it is asked to stop."""

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self._watch: RouteWatches = app.state.route_watch

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
    """A server for ``registry``, ready to ``run()``.

    :class:`~otel_prompt_canary.errors.InvalidInputError` when ``settings.insecure_dev`` and
    ``host`` is not loopback.
    """
    _check_host(settings, host)
    _raise_open_files_limit(settings)
    app = create_app(registry, settings)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        lifespan="on",
        http=guarded_protocol(settings),
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
