"""Routes read from the control plane over HTTP, by long polling.

The loop, on a background thread::

    GET {base}/v1/routes                         first read: answered at once
    GET {base}/v1/routes?wait=30                 with If-None-Match: <etag of the last answer>
        304 Not Modified  -> nothing changed within `wait` seconds: ask again
        200 OK            -> {"revision": "<etag>", "routes": [<Route>...]} with an ETag header;
                             the control plane answers at once when any routing flag changes
    GET {base}/v1/prompts/{name}/versions/{n}    for each version the cache does not hold yet

Reads need no credentials; a bearer token is sent when one is given. On any error (connection
refused, timeout, HTTP 5xx, malformed body) the last known routes stay in force and the loop retries
with capped exponential backoff (0.2 s doubling up to 5 s by default).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
import time
import weakref
from collections.abc import Iterable
from typing import Any, Final
from urllib.parse import quote

import httpcore
import httpx
from pydantic import ValidationError

from otel_prompt_canary._version import __version__
from otel_prompt_canary.errors import NotFoundError, RegistryUnavailableError
from otel_prompt_canary.registry.models import PromptVersion, Route
from otel_prompt_canary.routing.cache import RouteCache
from otel_prompt_canary.routing.source import Backoff, RouteSource

__all__ = ["DEFAULT_LONG_POLL_WAIT", "DEFAULT_TIMEOUT", "HttpSource"]

logger = logging.getLogger("otel_prompt_canary.routing")

#: Seconds the control plane may hold a long poll before answering 304.
DEFAULT_LONG_POLL_WAIT = 30.0
#: Seconds to connect, send, and read anything that is not a long poll.
DEFAULT_TIMEOUT = 5.0
#: The shortest time between two reads when the server answers at once (no long-poll support).
DEFAULT_MIN_INTERVAL = 0.25

_ROUTE_FIELDS: Final = frozenset(Route.model_fields)
_VERSION_FIELDS: Final = frozenset(PromptVersion.model_fields)


def _known_fields(fields: frozenset[str], data: object) -> object:
    """``data`` without the fields not in ``fields``, so that a newer server stays readable."""
    if isinstance(data, dict):
        return {k: v for k, v in data.items() if k in fields}
    return data


class _InterruptibleBackend(httpcore.SyncBackend):
    """A network backend that can shut down every socket it opened.

    Closing an httpx client does not wake a thread blocked reading a long poll; shutting the socket
    down does, so that :meth:`HttpSource.close` returns at once.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sockets: weakref.WeakSet[socket.socket] = weakref.WeakSet()
        self._interrupted = False

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        stream = super().connect_tcp(host, port, timeout, local_address, socket_options)
        sock = stream.get_extra_info("socket")
        with self._lock:
            if self._interrupted:
                stream.close()
                raise httpcore.ConnectError("the route source is closed")
            if isinstance(sock, socket.socket):
                self._sockets.add(sock)
        return stream

    def interrupt(self) -> None:
        with self._lock:
            self._interrupted = True
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):  # already closed
                sock.shutdown(socket.SHUT_RDWR)


def _transport(backend: httpcore.NetworkBackend, verify: ssl.SSLContext | str | bool) -> httpx.HTTPTransport:
    transport = httpx.HTTPTransport(verify=verify)
    if isinstance(getattr(transport, "_pool", None), httpcore.ConnectionPool):
        # httpx offers no public hook for the network backend; without it, close() still works but
        # waits for a long poll in progress to end (or its timeout).
        transport._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify),
            max_connections=4,
            keepalive_expiry=5.0,
            network_backend=backend,
        )
    return transport


class HttpSource(RouteSource):
    """Long-polls the control plane at ``base_url`` for routing flags."""

    def __init__(
        self,
        cache: RouteCache,
        base_url: str,
        *,
        token: str | None = None,
        long_poll_wait: float = DEFAULT_LONG_POLL_WAIT,
        timeout: float = DEFAULT_TIMEOUT,
        min_interval: float = DEFAULT_MIN_INTERVAL,
        verify: ssl.SSLContext | str | bool = True,
        backoff: Backoff | None = None,
    ) -> None:
        if long_poll_wait < 0 or timeout <= 0 or min_interval < 0:
            raise ValueError(
                "long_poll_wait and min_interval must be >= 0 and timeout > 0, got "
                f"{long_poll_wait}, {min_interval} and {timeout}"
            )
        base_url = base_url.rstrip("/")
        super().__init__(cache, description=base_url, backoff=backoff)
        self._base_url = base_url
        self._long_poll_wait = long_poll_wait
        self._min_interval = min_interval
        self._backend = _InterruptibleBackend()
        headers = {
            "Accept": "application/json",
            "User-Agent": f"otel-prompt-canary/{__version__}",
        }
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._timeout = httpx.Timeout(timeout)
        self._long_poll_timeout = httpx.Timeout(timeout, read=long_poll_wait + timeout)
        self._client = httpx.Client(
            base_url=base_url,
            headers=headers,
            timeout=self._timeout,
            transport=_transport(self._backend, verify),
        )
        self._etag: str | None = None
        self._complete = True

    def poll_once(self) -> float:
        params: dict[str, str] = {}
        headers: dict[str, str] = {}
        if self._etag is not None and self._complete:
            headers["If-None-Match"] = self._etag
            params["wait"] = f"{self._long_poll_wait:g}"
        started = time.monotonic()
        response = self._get("/v1/routes", params, headers, self._long_poll_timeout)
        if response.status_code == 304:
            return self._pace(started)
        if response.status_code != 200:
            raise RegistryUnavailableError(self._http_error("GET /v1/routes", response))
        etag, routes = self._parse_routes(response)
        if etag is not None and etag == self._etag and self._complete:
            return self._pace(started)  # the server ignored If-None-Match: nothing changed
        self._complete = self.cache.apply(routes, self._fetch_version)
        self._etag = etag
        if not self._complete:
            return max(self._min_interval, 0.2)
        return 0.0 if etag is not None else self._pace(started)

    def _pace(self, started: float) -> float:
        # A server that answers at once (no long polling) must not turn the loop into a busy loop.
        return max(0.0, self._min_interval - (time.monotonic() - started))

    def _get(
        self, path: str, params: dict[str, str], headers: dict[str, str], timeout: httpx.Timeout
    ) -> httpx.Response:
        try:
            return self._client.get(path, params=params, headers=headers, timeout=timeout)
        except httpx.HTTPError as exc:
            raise RegistryUnavailableError(f"GET {self._base_url}{path}: {exc!r}") from exc

    def _http_error(self, what: str, response: httpx.Response) -> str:
        body = response.text[:200].strip()
        return f"{what} on {self._base_url} answered HTTP {response.status_code}: {body}"

    def _parse_routes(self, response: httpx.Response) -> tuple[str | None, list[Route]]:
        try:
            body = response.json()
        except ValueError as exc:
            raise RegistryUnavailableError(f"GET /v1/routes: the body is not JSON ({exc})") from exc
        if not isinstance(body, dict) or not isinstance(body.get("routes"), list):
            raise RegistryUnavailableError(
                f'GET /v1/routes: expected {{"revision": ..., "routes": [...]}}, got {response.text[:200]!r}'
            )
        routes: list[Route] = []
        for item in body["routes"]:
            try:
                routes.append(Route.model_validate(_known_fields(_ROUTE_FIELDS, item)))
            except ValidationError as exc:
                logger.warning("ignoring a malformed route from %s: %s", self._base_url, exc)
        etag = response.headers.get("etag")
        if etag is None and body.get("revision") is not None:
            etag = str(body["revision"])
        return etag, routes

    def _fetch_version(self, name: str, version: int) -> PromptVersion:
        path = f"/v1/prompts/{quote(name, safe='')}/versions/{version}"
        response = self._get(path, {}, {}, self._timeout)
        if response.status_code == 404:
            raise NotFoundError(f"the control plane has no version {name}@{version}")
        if response.status_code != 200:
            raise RegistryUnavailableError(self._http_error(f"GET {path}", response))
        try:
            data = _known_fields(_VERSION_FIELDS, response.json())
            return PromptVersion.model_validate(data)
        except (ValueError, ValidationError) as exc:
            raise RegistryUnavailableError(f"GET {path}: malformed version ({exc})") from exc

    def _interrupt(self) -> None:
        self._backend.interrupt()

    def _release(self) -> None:
        self._client.close()
