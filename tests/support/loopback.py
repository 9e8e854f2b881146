"""Servers for tests, run in a thread of the test process on 127.0.0.1 and stopped at the end.

One harness, :func:`serving_in_thread`, starts a server's loop in a daemon thread, waits until it
has started, and at the end asks it to stop and joins the thread; the servers the suites run are
built on it::

    with running_server(registry, ServiceSettings(token=TOKEN)) as base_url:  # the control plane
        RemoteRegistry(base_url).list_prompts()

    with http_server(Handler) as base_url:  # any http.server handler
        ...

:func:`uvicorn_in_thread` runs any ASGI app's uvicorn server the same way. For the URL of a port
nothing listens on, :func:`free_port`; for a server that accepts connections and never answers,
:func:`silent_server`.

This module imports neither FastAPI nor uvicorn itself, so that suites without the control plane
can use it.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

from tests.support.waiting import eventually

if TYPE_CHECKING:
    import uvicorn

    from otel_prompt_canary.registry.base import Registry
    from otel_prompt_canary.service.settings import ServiceSettings

__all__ = [
    "free_port",
    "http_server",
    "running_server",
    "serving_in_thread",
    "silent_server",
    "uvicorn_in_thread",
]

#: Seconds a server gets to stop once asked (its thread is joined that long).
STOP_TIMEOUT = 10.0


@contextmanager
def serving_in_thread(
    serve: Callable[[], object],
    *,
    name: str,
    stop: Callable[[], object],
    started: Callable[[], bool] = lambda: True,
    startup_timeout: float = 30.0,
) -> Iterator[None]:
    """Run ``serve()`` in a daemon thread named ``name`` until ``started()``; at the end of the block
    call ``stop()`` and join the thread.

    Fails when the thread ends before it started, or has not ended :data:`STOP_TIMEOUT` seconds
    after ``stop()``.
    """
    thread = threading.Thread(target=serve, name=name, daemon=True)
    thread.start()
    try:
        eventually(
            lambda: started() or not thread.is_alive(), timeout=startup_timeout, what=f"the start of {name}"
        )
        assert thread.is_alive(), f"{name} ended before it started"
        yield
    finally:
        stop()
        thread.join(STOP_TIMEOUT)
        assert not thread.is_alive(), f"{name} did not stop within {STOP_TIMEOUT:g} s"


@contextmanager
def uvicorn_in_thread(
    server: uvicorn.Server,
    *,
    name: str,
    stop: Callable[[], object] | None = None,
    sockets: list[socket.socket] | None = None,
    startup_timeout: float = 30.0,
) -> Iterator[int]:
    """Run a uvicorn ``server`` (on ``sockets`` when given); yields the port it listens on.

    At the end ``stop()`` asks it to exit (by default: ``should_exit``).
    """

    def ask_to_exit() -> None:
        server.should_exit = True

    with serving_in_thread(
        lambda: server.run(sockets=sockets),
        name=name,
        stop=stop or ask_to_exit,
        started=lambda: server.started,
        startup_timeout=startup_timeout,
    ):
        port: int = server.servers[0].sockets[0].getsockname()[1]
        yield port


@contextmanager
def running_server(
    registry: Registry,
    settings: ServiceSettings,
    *,
    host: str = "127.0.0.1",
    startup_timeout: float = 30.0,
) -> Iterator[str]:
    """The control plane serving ``registry`` (uvicorn, in a thread); yields its base URL.

    It binds ``host`` on an ephemeral port; stopping it releases held long-polls at once.
    """
    from otel_prompt_canary.service.server import build_server

    server = build_server(registry, settings, host=host, port=0, log_level="warning")
    with uvicorn_in_thread(
        server, name="prompt-canary-test-server", stop=server.stop, startup_timeout=startup_timeout
    ) as port:
        yield f"http://{host}:{port}"


@contextmanager
def http_server(
    handler: type[BaseHTTPRequestHandler],
    *,
    tls: ssl.SSLContext | None = None,
    name: str = "loopback HTTP server",
) -> Iterator[str]:
    """Serve ``handler`` (``http.server``, a thread per request) on 127.0.0.1; yields the base URL.

    With ``tls`` (a server-side context) it speaks HTTPS.
    """
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    scheme = "https" if tls is not None else "http"
    try:
        with serving_in_thread(
            lambda: server.serve_forever(poll_interval=0.05), name=name, stop=server.shutdown
        ):
            yield f"{scheme}://127.0.0.1:{server.server_address[1]}"
    finally:
        server.server_close()


def free_port() -> int:
    """A port of 127.0.0.1 that nothing listens on (bound a moment ago, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def silent_server() -> Iterator[str]:
    """The base URL of a server that accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
