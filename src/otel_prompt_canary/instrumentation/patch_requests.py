"""OpenAI-compatible HTTP calls an application makes itself with ``requests`` (vLLM, Ollama, own clients).

``Session.send`` is wrapped (``requests.post`` and every session go through it). A ``POST`` to one of
the paths of :data:`~otel_prompt_canary.instrumentation.patch_httpx.LLM_PATHS` with a JSON body is
recorded like an SDK call: the request body is read for the model, parameters and system prompt;
the response is read when ``requests`` has read it (``stream=False``), else as the application
iterates it (``iter_lines()``, ``iter_content()``: the server-sent events up to ``data: [DONE]``).
Closing the response before its end, or dropping it, records ``error.type=stream_closed_early``.

Only the request body is ever changed (rewrite mode, on a copy of the prepared request); the
response reaches the application as the server sent it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import wrapt
from opentelemetry import context as otel_context
from opentelemetry.util.types import AttributeValue

from otel_prompt_canary import names
from otel_prompt_canary.instrumentation._bodies import BodyReader, json_view
from otel_prompt_canary.instrumentation._call import UNREADABLE, Api, CallState
from otel_prompt_canary.instrumentation._wrappers import Patcher, Wrapper, skip
from otel_prompt_canary.instrumentation.patch_httpx import api_of_path, llm_apis

# The runtime is injected into the wrappers, never looked up: it is needed here as a type only.
if TYPE_CHECKING:
    from otel_prompt_canary.instrumentation._runtime import Runtime

__all__ = ["patch"]

logger = logging.getLogger("otel_prompt_canary.instrumentation")


def patch(runtime: Runtime, patcher: Patcher) -> None:
    """Wrap ``requests.Session.send``."""
    patcher.patch("requests.sessions", "Session.send", _send(runtime, llm_apis()))


def _server(url: str) -> dict[str, AttributeValue]:
    parts = urlsplit(url)
    if not parts.hostname:
        return {}
    attributes: dict[str, AttributeValue] = {names.SERVER_ADDRESS: parts.hostname}
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    if port is not None:
        attributes[names.SERVER_PORT] = port
    return attributes


def _body(request: Any) -> dict[str, Any] | None:
    try:
        body = json.loads(request.body)
    except Exception:  # no body, a generator, not JSON
        return None
    return body if isinstance(body, dict) else None


def _send(runtime: Runtime, apis: Mapping[str, Api]) -> Wrapper:
    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        if skip(runtime):
            return wrapped(*args, **kwargs)
        request: Any = args[0] if args else kwargs.get("request")
        try:
            api = api_of_path(request.method, urlsplit(request.url).path, apis)
        except Exception:
            api = None
        body = None if api is None else _body(request)
        if api is None or body is None:
            return wrapped(*args, **kwargs)
        started = runtime.begin(api, None, body)
        if started is None:
            return wrapped(*args, **kwargs)
        call, ctx, call_body = started
        server = _server(request.url)
        call.request.attributes.update(server)
        if call.span is not None:
            call.span.set_attributes(server)
        if call_body is not body:
            args, kwargs = _rewritten(request, call_body, args, kwargs)
        token = otel_context.attach(ctx)
        try:
            response = wrapped(*args, **kwargs)
        except BaseException as error:
            otel_context.detach(token)
            runtime.fail(call, error)
            raise
        otel_context.detach(token)
        _observe(runtime, call, response, bool(kwargs.get("stream")))
        return response

    return wrapper


def _rewritten(
    request: Any, body: dict[str, Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The arguments with a copy of ``request`` that carries ``body`` (unchanged when that fails)."""
    try:
        copy = request.copy()
        copy.body = json.dumps(body).encode()
        copy.headers["Content-Length"] = str(len(copy.body))
    except Exception:
        logger.warning("could not rewrite an HTTP request body; sending it unchanged", exc_info=True)
        return args, kwargs
    if args:
        return (copy, *args[1:]), kwargs
    return args, {**kwargs, "request": copy}


def _observe(runtime: Runtime, call: CallState, response: Any, stream: bool) -> None:
    """Record a response now (read) or as the application iterates it; never raises."""
    try:
        if response.status_code >= 400:
            runtime.finish(call, None, error_type=str(response.status_code))
            return
        sse = "text/event-stream" in response.headers.get("content-type", "")
        if not stream:
            view = json_view(call, response.content)
            runtime.finish(call, view, error_type=None if view is not None else UNREADABLE)
            return
        call.deferred = True
        response.raw = _WatchedRaw(response.raw, BodyReader(runtime, call, sse))
    except Exception:
        logger.warning("could not record an HTTP LLM response", exc_info=True)
        runtime.end_quietly(call)


class _WatchedRaw(wrapt.ObjectProxy[Any]):
    """A ``urllib3`` response whose decoded chunks, end, close and loss the reader sees.

    ``requests`` reads a streamed body through ``raw.stream(..., decode_content=True)``; a body
    read otherwise (``raw.read()``) is not seen, and the call is recorded when it is closed.
    """

    def __init__(self, wrapped: Any, reader: BodyReader) -> None:
        super().__init__(wrapped)
        self._self_reader = reader

    def stream(self, *args: Any, **kwargs: Any) -> Iterator[bytes]:
        reader = self._self_reader
        decoded = kwargs.get("decode_content", args[1] if len(args) > 1 else None)
        if not decoded:
            reader.broken = True  # raw bytes, maybe compressed: not read
        try:
            for chunk in self.__wrapped__.stream(*args, **kwargs):
                reader.body_chunk(chunk)
                yield chunk
        except Exception as error:
            reader.body_failed(error)
            raise
        reader.body_ended()

    def close(self) -> Any:
        try:
            return self.__wrapped__.close()
        finally:
            self._self_reader.body_closed()

    def __del__(self) -> None:
        try:
            reader = self._self_reader
        except Exception:  # a proxy whose __init__ failed
            return
        reader.body_closed()
