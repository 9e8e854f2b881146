"""Run the control plane in a background thread on loopback, for tests of its clients.

::

    with running_server(registry, ServiceSettings(insecure_dev=True)) as base_url:
        RemoteRegistry(base_url).list_prompts()

The server binds ``127.0.0.1`` on an ephemeral port and stops when the block ends.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from otel_prompt_canary.registry.base import Registry
from otel_prompt_canary.service.server import build_server
from otel_prompt_canary.service.settings import ServiceSettings

__all__ = ["running_server"]


@contextmanager
def running_server(
    registry: Registry,
    settings: ServiceSettings,
    *,
    host: str = "127.0.0.1",
    startup_timeout: float = 10.0,
) -> Iterator[str]:
    """Serve ``registry`` with uvicorn in a thread; yields the base URL (``http://host:port``)."""
    server = build_server(registry, settings, host=host, port=0, log_level="warning")
    thread = threading.Thread(target=server.run, name="prompt-canary-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.stop()
            raise RuntimeError("the control plane did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        thread.join(timeout=10)
