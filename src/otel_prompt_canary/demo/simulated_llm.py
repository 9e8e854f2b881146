"""A local simulated LLM that speaks the OpenAI and Anthropic HTTP APIs.

The real ``openai`` and ``anthropic`` SDKs work against it unchanged, streaming included: point their
``base_url`` at it. What it answers is programmed by a :class:`~otel_prompt_canary.demo.behaviour.Behaviour`.
It never reaches the network and binds to 127.0.0.1 only.

Endpoints:

- ``POST /v1/chat/completions``, ``POST /v1/responses``, the legacy ``POST /v1/completions`` (JSON or
  server-sent events), ``POST /v1/moderations``
- ``GET /v1/models`` and ``GET /v1/models/{model}`` (in the Anthropic shape when the request carries an
  ``anthropic-version`` header)
- ``POST /v1/messages`` (Anthropic; JSON or server-sent events; ``beta.messages`` too, whose
  ``?beta=true`` and ``anthropic-beta`` header the simulated model ignores)

Errors use each provider's error body and status, so the SDKs raise their own exception classes.
Not simulated: several choices (``n``), stop sequences, log probabilities, audio and images, built-in
tools, stored responses (``previous_response_id`` is echoed, not resolved).

Use :func:`running_simulated_llm` in tests and demos::

    with running_simulated_llm(Behaviour()) as llm:
        client = openai.OpenAI(base_url=llm.base_url, api_key="test")
        anthropic_client = anthropic.Anthropic(base_url=llm.anthropic_base_url, api_key="test")
"""

from __future__ import annotations

import inspect
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import uvicorn
from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from otel_prompt_canary.demo import (
    _anthropic_messages,
    _catalogue,
    _chat_completions,
    _completions,
    _responses_api,
)
from otel_prompt_canary.demo._wire import (
    Answer,
    ApiError,
    EventStream,
    JsonBody,
    Provider,
    answer,
    check_api_key,
    error_response,
    json_response,
    read_body,
)
from otel_prompt_canary.demo.behaviour import Behaviour, ModelRequest

__all__ = ["SimulatedLLM", "create_app", "running_simulated_llm", "start_simulated_llm"]

HOST = "127.0.0.1"


def _bare_fastapi(**settings: Any) -> FastAPI:
    """A FastAPI app without docs routes and without FastAPI's own telemetry.

    The simulated model is not the system under observation: FastAPI's native OpenTelemetry support
    (recent versions) would put its HTTP spans, metrics and logs in the caller's global providers, and
    its auto-configured exporters would reach out to the network.
    """
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters:
        settings["telemetry"] = {
            "tracing": False,
            "metrics": False,
            "logs": False,
            "operation_spans": False,
            "auto_configure": False,
        }
    return FastAPI(docs_url=None, redoc_url=None, openapi_url=None, **settings)


@dataclass(frozen=True)
class _Api:
    """How one generation API reads a request and writes an answer."""

    parse: Callable[[JsonBody], ModelRequest]
    body: Callable[[Answer, ModelRequest], dict[str, Any]]
    events: Callable[[Answer, ModelRequest], list[bytes]]


_CHAT = _Api(
    _chat_completions.parse_chat_request,
    _chat_completions.completion_body,
    _chat_completions.completion_events,
)
_RESPONSES = _Api(
    _responses_api.parse_responses_request,
    _responses_api.response_body,
    _responses_api.response_events,
)
_COMPLETIONS = _Api(
    _completions.parse_completions_request,
    _completions.text_completion_body,
    _completions.text_completion_events,
)
_MESSAGES = _Api(
    _anthropic_messages.parse_messages_request,
    _anthropic_messages.message_body,
    _anthropic_messages.message_events,
)


def _provider(request: Request) -> Provider:
    """Whose error shape to answer with: Anthropic's for its paths and its SDK, else OpenAI's."""
    if request.url.path.startswith("/v1/messages") or "anthropic-version" in request.headers:
        return "anthropic"
    return "openai"


def create_app(behaviour: Behaviour | None = None) -> FastAPI:
    """The simulated LLM as an ASGI app; ``behaviour`` (default: a fresh :class:`Behaviour`) answers."""
    behaviour = behaviour if behaviour is not None else Behaviour()
    app = _bare_fastapi(title="otel-prompt-canary simulated LLM")
    app.state.behaviour = behaviour

    async def generate(request: Request, api: _Api) -> Response:
        check_api_key(request, behaviour)
        model_request = api.parse(await read_body(request))
        result = await answer(behaviour, model_request)
        if model_request.stream:
            return EventStream(api.events(result, model_request), result.reply)
        dropped = result.reply.drop_connection_after is not None
        return json_response(api.body(result, model_request), drop=dropped)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        return await generate(request, _CHAT)

    @app.post("/v1/responses")
    async def responses(request: Request) -> Response:
        return await generate(request, _RESPONSES)

    @app.post("/v1/completions")
    async def completions(request: Request) -> Response:
        return await generate(request, _COMPLETIONS)

    @app.post("/v1/messages")
    async def messages(request: Request) -> Response:
        return await generate(request, _MESSAGES)

    @app.post("/v1/moderations")
    async def moderations(request: Request) -> Response:
        check_api_key(request, behaviour)
        return json_response(_catalogue.moderation_body(behaviour, await read_body(request)))

    @app.get("/v1/models")
    async def models(request: Request) -> Response:
        check_api_key(request, behaviour)
        anthropic = _provider(request) == "anthropic"
        return json_response(_catalogue.model_list(behaviour, anthropic=anthropic))

    @app.get("/v1/models/{model_id:path}")
    async def model(request: Request, model_id: str) -> Response:
        check_api_key(request, behaviour)
        found = _catalogue.find_model(behaviour, model_id)
        if _provider(request) == "anthropic":
            return json_response(_catalogue.anthropic_model(found))
        return json_response(_catalogue.openai_model(found))

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        return error_response(_provider(request), exc)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        message = f"Invalid URL ({request.method} {request.url.path})"
        return error_response(_provider(request), ApiError(exc.status_code, message))

    return app


class SimulatedLLM:
    """A simulated LLM serving on 127.0.0.1 in a background thread; :meth:`stop` ends it.

    ``base_url`` is for OpenAI clients (``http://127.0.0.1:PORT/v1``), ``anthropic_base_url`` for
    Anthropic clients (``http://127.0.0.1:PORT``, the SDK adds ``/v1``).
    """

    def __init__(
        self, behaviour: Behaviour, server: uvicorn.Server, thread: threading.Thread, port: int
    ) -> None:
        self.behaviour = behaviour
        self.port = port
        self._server = server
        self._thread = thread

    def __repr__(self) -> str:
        return f"SimulatedLLM(url={self.url!r}, running={self.running})"

    @property
    def url(self) -> str:
        """The server's root URL."""
        return f"http://{HOST}:{self.port}"

    @property
    def base_url(self) -> str:
        """The ``base_url`` of an OpenAI client."""
        return f"{self.url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        """The ``base_url`` of an Anthropic client."""
        return self.url

    @property
    def running(self) -> bool:
        """True until the server has stopped."""
        return self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving, close open connections and join the server thread (idempotent)."""
        self._server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout)

    def __enter__(self) -> SimulatedLLM:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def start_simulated_llm(
    behaviour: Behaviour | None = None, *, port: int = 0, startup_timeout: float = 10.0
) -> SimulatedLLM:
    """Start a simulated LLM on 127.0.0.1 (``port`` 0: a free port) and return once it accepts calls."""
    behaviour = behaviour if behaviour is not None else Behaviour()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit this: without it, Nagle's algorithm and delayed ACKs hold a
        # streamed response's small writes for ~40 ms each on loopback.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((HOST, port))
    except OSError:
        sock.close()
        raise
    config = uvicorn.Config(
        create_app(behaviour),
        loop="asyncio",
        http="h11",
        ws="none",
        lifespan="off",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="simulated-llm", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            thread.join(startup_timeout)
            sock.close()
            raise RuntimeError("the simulated LLM did not start")
        time.sleep(0.005)
    return SimulatedLLM(behaviour, server, thread, sock.getsockname()[1])


@contextmanager
def running_simulated_llm(behaviour: Behaviour | None = None, *, port: int = 0) -> Iterator[SimulatedLLM]:
    """Run a simulated LLM for the duration of a ``with`` block (see :func:`start_simulated_llm`)."""
    llm = start_simulated_llm(behaviour, port=port)
    try:
        yield llm
    finally:
        llm.stop()
