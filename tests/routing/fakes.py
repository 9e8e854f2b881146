"""Test doubles for the router suite: a scripted registry and small HTTP servers on loopback.

``ScriptedRegistry`` serves whatever routes a test sets, including states a real registry never
produces (a stale replica still showing a rolled-back rollout as ramping). ``FakeControlPlane`` speaks
just the two endpoints routers read (``GET /v1/routes`` with ETag, 304 and ``wait``, and
``GET /v1/prompts/{name}/versions/{n}``) under uvicorn on 127.0.0.1; tests stop and restart it, make
it drip its answers a byte at a time, or answer with a body that never ends.
``CannedServer`` answers every request as a test function says (odd answers, TLS), and
``RecordingProxy`` is an HTTP proxy (forwarding and ``CONNECT``) that records what went through it.
Each runs in a thread by :mod:`tests.support.loopback`.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import select
import socket
import ssl
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route as HttpRoute

from otel_prompt_canary.errors import NotFoundError, RegistryUnavailableError
from otel_prompt_canary.registry.models import PromptSpec, PromptVersion, RolloutState, Route
from tests.support.loopback import http_server, uvicorn_in_thread

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def version(
    name: str,
    number: int,
    template: str | None = None,
    *,
    messages: list[dict[str, str]] | None = None,
    model: str | None = None,
    config: dict[str, Any] | None = None,
) -> PromptVersion:
    """A registry version of ``name`` (a text template naming its version unless given)."""
    if template is None and messages is None:
        template = f"{name} v{number}: {{{{ question }}}}"
    spec = PromptSpec.model_validate(
        {
            "name": name,
            "template": template,
            "messages": messages,
            "model": model,
            "config": config or {},
        }
    )
    return PromptVersion.from_spec(spec, version=number, created_at=NOW)


def route(
    prompt: str,
    *,
    stable: int = 1,
    canary: int | None = None,
    weight_bp: int = 0,
    rollout_id: str | None = None,
    state: RolloutState | str = RolloutState.IDLE,
    revision: int = 1,
) -> Route:
    """A routing flag; any combination, consistent or not."""
    return Route(
        prompt=prompt,
        stable_version=stable,
        canary_version=canary,
        canary_weight_bp=weight_bp,
        rollout_id=rollout_id,
        state=RolloutState(state),
        revision=revision,
        updated_at=NOW,
    )


def ramping(prompt: str, rollout_id: str, weight_bp: int, *, revision: int = 2) -> Route:
    """``prompt`` canarying version 2 over stable version 1 at ``weight_bp``."""
    return route(
        prompt,
        stable=1,
        canary=2,
        weight_bp=weight_bp,
        rollout_id=rollout_id,
        state=RolloutState.RAMPING,
        revision=revision,
    )


def rolled_back(prompt: str, rollout_id: str, *, revision: int = 3) -> Route:
    """``prompt`` after rolling back ``rollout_id``: everyone on version 1."""
    return route(prompt, stable=1, rollout_id=rollout_id, state=RolloutState.ROLLED_BACK, revision=revision)


class ScriptedRegistry:
    """A :class:`~otel_prompt_canary.registry.base.Registry` whose routes a test sets directly.

    Only the reads a router makes are implemented; ``fail`` makes every read raise as if the store
    were down.
    """

    def __init__(self, routes: Iterable[Route] = (), versions: Iterable[PromptVersion] = ()):
        self._lock = threading.Lock()
        self._routes = {r.prompt: r for r in routes}
        self._versions = {(v.name, v.version): v for v in versions}
        self.fail = False
        #: When set, reading versions fails as if the store went down between two reads.
        self.fail_versions = False
        self.closed = False
        self.reads = 0

    def set_routes(self, *routes: Route) -> None:
        with self._lock:
            self._routes.update({r.prompt: r for r in routes})

    def add_versions(self, *versions: PromptVersion) -> None:
        with self._lock:
            self._versions.update({(v.name, v.version): v for v in versions})

    def list_routes(self) -> list[Route]:
        with self._lock:
            self.reads += 1
            if self.fail:
                raise RegistryUnavailableError("store down (scripted)")
            return [self._routes[name] for name in sorted(self._routes)]

    def get_route(self, name: str) -> Route:
        with self._lock:
            return self._routes[name]

    def get_version(self, name: str, version: int | None = None) -> PromptVersion:
        with self._lock:
            if self.fail or self.fail_versions:
                raise RegistryUnavailableError("store down (scripted)")
            found = self._versions.get((name, version or 0))
        if found is None:
            raise NotFoundError(f"no version {name}@{version}")
        return found

    def close(self) -> None:
        self.closed = True

    def _unused(self, *args: object, **kwargs: object) -> Any:
        raise NotImplementedError("not needed by the router")

    push = list_prompts = list_versions = diff = start_rollout = transition = _unused
    get_rollout = history = _unused


class FakeControlPlane:
    """``GET /v1/routes`` (ETag, If-None-Match, ``wait``) and the version endpoint, on loopback."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._routes: dict[str, Route] = {}
        self._versions: dict[tuple[str, int], PromptVersion] = {}
        self._revision = 1
        #: (path, If-None-Match, wait, Authorization) of every request received.
        self.requests: list[tuple[str, str | None, str | None, str | None]] = []
        #: When set, /v1/routes answers with this status.
        self.fail_status: int | None = None
        #: When True, /v1/routes ignores If-None-Match and ``wait`` (answers 200 at once).
        self.ignore_conditional = False
        #: When set, applied to the JSON body of every 200 answer of /v1/routes.
        self.rewrite_body: Callable[[dict[str, Any]], dict[str, Any]] | None = None
        #: When set, /v1/routes answers at once, its true body sent one byte every so many seconds
        #: (as a server or proxy in trouble does), until the client goes away.
        self.drip_seconds: float | None = None
        #: When True, /v1/routes answers 200 with a body that never ends.
        self.endless = False
        #: How each /v1/routes request was answered, in the order they came: "200 <etag>",
        #: "304", "503", "dripped <etag>", "endless".
        self.route_answers: list[str] = []
        self.port = 0
        self._serving: ExitStack | None = None
        self._stopping = False
        self.app = Starlette(
            routes=[
                HttpRoute("/v1/routes", self._list_routes),
                HttpRoute("/v1/prompts/{name}/versions/{number:int}", self._get_version),
            ]
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- state, set by tests -------------------------------------------------------------------

    def set_routes(self, *routes: Route) -> None:
        with self._lock:
            self._routes.update({r.prompt: r for r in routes})
            self._revision += 1

    def add_versions(self, *versions: PromptVersion) -> None:
        with self._lock:
            self._versions.update({(v.name, v.version): v for v in versions})

    def _etag(self) -> str:
        return f'"r{self._revision}"'

    def route_requests(self) -> list[tuple[str, str | None, str | None, str | None]]:
        return [r for r in list(self.requests) if r[0] == "/v1/routes"]

    # -- endpoints -----------------------------------------------------------------------------

    async def _list_routes(self, request: Request) -> Response:
        inm = request.headers.get("if-none-match")
        wait = request.query_params.get("wait")
        self.requests.append(("/v1/routes", inm, wait, request.headers.get("authorization")))
        if self.fail_status is not None:
            self.route_answers.append(str(self.fail_status))
            return JSONResponse({"detail": "scripted failure"}, status_code=self.fail_status)
        if not self.ignore_conditional and self.drip_seconds is None:
            deadline = time.monotonic() + float(wait or 0)
            while inm == self._etag() and time.monotonic() < deadline and not self._stopping:
                await asyncio.sleep(0.005)
            if inm == self._etag():
                self.route_answers.append("304")
                return Response(status_code=304, headers={"ETag": self._etag()})
        if self.endless:
            self.route_answers.append("endless")
            return StreamingResponse(self._endless(request), media_type="application/json")
        with self._lock:
            etag = self._etag()
            body = {
                "revision": etag.strip('"'),
                "routes": [r.model_dump(mode="json") for _, r in sorted(self._routes.items())],
            }
        if self.rewrite_body is not None:
            body = self.rewrite_body(body)
        if self.drip_seconds is not None:
            self.route_answers.append(f"dripped {etag}")
            content = json.dumps(body).encode()
            return StreamingResponse(
                self._drip(request, content, self.drip_seconds),
                media_type="application/json",
                headers={"ETag": etag, "Content-Length": str(len(content))},
            )
        self.route_answers.append(f"200 {etag}")
        return JSONResponse(body, headers={"ETag": etag})

    async def _drip(self, request: Request, content: bytes, seconds: float) -> AsyncIterator[bytes]:
        for i in range(len(content)):
            if self._stopping or await request.is_disconnected():
                return
            yield content[i : i + 1]
            await asyncio.sleep(seconds)

    async def _endless(self, request: Request) -> AsyncIterator[bytes]:
        one = json.dumps(route("p").model_dump(mode="json")).encode()
        chunk = b",".join([one] * (65536 // len(one)))
        yield b'{"revision": "endless", "routes": [' + chunk
        # Endless for any client that reads it all: 1 GiB, unless the client goes away first.
        for _ in range(2**30 // len(chunk)):
            if self._stopping or await request.is_disconnected():
                return
            yield b"," + chunk

    async def _get_version(self, request: Request) -> Response:
        name, number = request.path_params["name"], request.path_params["number"]
        self.requests.append((request.url.path, None, None, request.headers.get("authorization")))
        with self._lock:
            found = self._versions.get((name, number))
        if found is None:
            error = {"type": "NotFoundError", "message": f"prompt {name!r} has no version {number}"}
            return JSONResponse({"error": error}, status_code=404)
        return JSONResponse(found.model_dump(mode="json"))

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> FakeControlPlane:
        """Start serving (on the same port as before after a :meth:`stop`)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=1,
            timeout_keep_alive=30,
        )
        self._stopping = False
        with ExitStack() as serving:
            serving.enter_context(
                uvicorn_in_thread(uvicorn.Server(config), name="fake-control-plane", sockets=[sock])
            )
            self._serving = serving.pop_all()
        return self

    def stop(self) -> None:
        """Stop serving: connections are closed, the port refuses connections."""
        if self._serving is None:
            return
        self._stopping = True
        serving, self._serving = self._serving, None
        serving.close()


# -- plain HTTP servers (http.server) ------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    """One request a loopback server received."""

    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes


#: What a canned server answers: (status, headers, body).
Canned = tuple[int, dict[str, str], bytes]


class _Recording(BaseHTTPRequestHandler):
    """A request handler that records each request in ``received`` and answers quietly."""

    protocol_version = "HTTP/1.1"
    received: list[Received]

    def record(self) -> Received:
        length = int(self.headers.get("Content-Length") or 0)
        request = Received(
            self.command,
            self.path,
            {k.lower(): v for k, v in self.headers.items()},
            self.rfile.read(length) if length else b"",
        )
        self.received.append(request)
        return request

    def reply(self, status: int, headers: Iterable[tuple[str, str]], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def canned_server(
    answer: Callable[[Received], Canned], *, tls: ssl.SSLContext | None = None
) -> Iterator[tuple[str, list[Received]]]:
    """Serve ``answer(request)`` for every request on 127.0.0.1; yields (base URL, requests received).

    With ``tls`` (a server-side context) the server speaks HTTPS.
    """

    class Handler(_Recording):
        def _answer(self) -> None:
            status, headers, body = answer(self.record())
            self.reply(status, headers.items(), body)

        do_GET = do_POST = do_PUT = do_DELETE = _answer

    Handler.received = []
    with http_server(Handler, tls=tls, name="canned server") as url:
        yield url, Handler.received


@contextmanager
def recording_proxy() -> Iterator[tuple[str, list[Received]]]:
    """An HTTP proxy on 127.0.0.1 (absolute-URI forwarding and ``CONNECT`` tunnels).

    Yields (proxy URL, requests received): a forwarded request records its absolute URL as
    ``path``, a tunnel records ``CONNECT`` and ``host:port``.
    """

    class Handler(_Recording):
        def _forward(self) -> None:
            request = self.record()
            target = urlsplit(request.path)
            upstream = http.client.HTTPConnection(target.hostname or "", target.port or 80, timeout=60)
            hop_by_hop = {"proxy-authorization", "proxy-connection", "connection", "keep-alive"}
            forwarded = {k: v for k, v in request.headers.items() if k not in hop_by_hop}
            path = target.path + (f"?{target.query}" if target.query else "")
            try:
                upstream.request(request.method, path, body=request.body or None, headers=forwarded)
                response = upstream.getresponse()
                body = response.read()
            except OSError:
                self.send_error(502)
                return
            finally:
                upstream.close()
            framing = ("transfer-encoding", "connection", "content-length")
            headers = [(k, v) for k, v in response.getheaders() if k.lower() not in framing]
            self.reply(response.status, headers, body)

        do_GET = do_POST = _forward

        def do_CONNECT(self) -> None:
            self.record()
            host, _, port = self.path.rpartition(":")
            try:
                upstream = socket.create_connection((host, int(port)), timeout=10)
            except OSError:
                self.send_error(502)
                return
            self.send_response(200, "Connection established")
            self.end_headers()
            self.close_connection = True
            with upstream:
                sockets = [self.connection, upstream]
                while True:
                    readable, _, _ = select.select(sockets, [], [], 60)
                    if not readable:
                        return
                    for sock in readable:
                        data = b""
                        with suppress(OSError):
                            data = sock.recv(65536)
                        if not data:
                            return
                        (upstream if sock is self.connection else self.connection).sendall(data)

    Handler.received = []
    with http_server(Handler, name="recording proxy") as url:
        yield url, Handler.received
