"""OpenAI-compatible HTTP calls an application makes itself with ``httpx`` or ``httpx2``.

``Client.send`` and ``AsyncClient.send`` are wrapped (for both libraries). A ``POST`` whose path ends
in ``/chat/completions`` or ``/responses`` is recorded like an SDK call: the JSON request body is read
for the model, parameters and system prompt, the JSON response (or the server-sent events of a
stream, as the application reads them) for the response. The ``openai`` and ``anthropic`` SDKs run on
``httpx2`` too: their requests are sent while a client patch records the call, which the context
says, so they pass through untouched and every call counts once.

Only the request body is ever changed (rewrite mode); the response bytes reach the application as
the server sent them.
"""

from __future__ import annotations

import codecs
import json
import logging
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any, Final

from opentelemetry import context as otel_context

from otel_prompt_canary.instrumentation._call import Accumulator, Api, CallState
from otel_prompt_canary.instrumentation._openai import ChatCompletionsApi, ResponsesApi
from otel_prompt_canary.instrumentation._streams import CLOSED_EARLY
from otel_prompt_canary.instrumentation._wrappers import Patcher, Wrapper, skip
from otel_prompt_canary.instrumentation.utils import server_of

# The runtime is injected into the wrappers, never looked up: it is needed here as a type only.
if TYPE_CHECKING:
    from otel_prompt_canary.instrumentation._runtime import Runtime

__all__ = ["LLM_PATHS", "patch"]

logger = logging.getLogger("otel_prompt_canary.instrumentation")

#: URL path endings of the OpenAI-compatible generation endpoints recorded on the HTTP path.
LLM_PATHS: Final = ("/chat/completions", "/responses")
#: A JSON response body larger than this is passed through without checks.
_MAX_BODY: Final = 8 * 1024 * 1024


def patch(runtime: Runtime, patcher: Patcher, modules: list[str]) -> None:
    """Wrap ``Client.send``/``AsyncClient.send`` of each of ``modules`` (``httpx``, ``httpx2``)."""
    chat = ChatCompletionsApi(())
    responses = ResponsesApi(())
    for name in modules:
        module = __import__(name)
        sync_stream, async_stream = _stream_classes(module)
        patcher.patch(name, "Client.send", _sync_send(runtime, chat, responses, module, sync_stream))
        patcher.patch(name, "AsyncClient.send", _async_send(runtime, chat, responses, module, async_stream))


def _api_of(request: Any, chat: Api, responses: Api) -> Api | None:
    try:
        if request.method != "POST":
            return None
        path: str = request.url.path
    except Exception:
        return None
    if path.endswith("/chat/completions"):
        return chat
    if path.endswith("/responses"):
        return responses
    return None


def _body(request: Any) -> dict[str, Any] | None:
    try:
        body = json.loads(request.content)
    except Exception:  # a streaming body, not JSON, not read
        return None
    return body if isinstance(body, dict) else None


def _rebuild(module: Any, request: Any, body: dict[str, Any]) -> Any:
    headers = [(k, v) for k, v in request.headers.multi_items() if k.lower() != "content-length"]
    return module.Request(
        request.method,
        request.url,
        headers=headers,
        content=json.dumps(body).encode(),
        extensions=request.extensions,
    )


def _start(
    runtime: Runtime, module: Any, api: Api, request: Any
) -> tuple[CallState, otel_context.Context, Any] | None:
    body = _body(request)
    if body is None:
        return None
    started = runtime.begin(api, None, body)
    if started is None:
        return None
    call, ctx, call_body = started
    call.request.attributes.update(server_of(request.url))
    if call.span is not None:
        call.span.set_attributes(server_of(request.url))
    if call_body is not body:
        try:
            request = _rebuild(module, request, call_body)
        except Exception:
            logger.warning("could not rewrite an HTTP request body; sending it unchanged", exc_info=True)
    return call, ctx, request


def _replace_request(args: tuple[Any, ...], kwargs: dict[str, Any], request: Any) -> tuple[Any, ...]:
    if args:
        return (request, *args[1:])
    kwargs["request"] = request
    return args


def _sync_send(runtime: Runtime, chat: Api, responses: Api, module: Any, stream_cls: type) -> Wrapper:
    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        if skip(runtime):  # first: an SDK call in flight is the common case, and the cheapest test
            return wrapped(*args, **kwargs)
        request = args[0] if args else kwargs.get("request")
        api = _api_of(request, chat, responses)
        if api is None:
            return wrapped(*args, **kwargs)
        started = _start(runtime, module, api, request)
        if started is None:
            return wrapped(*args, **kwargs)
        call, ctx, request = started
        args = _replace_request(args, kwargs, request)
        token = otel_context.attach(ctx)
        try:
            response = wrapped(*args, **kwargs)
        except BaseException as error:
            otel_context.detach(token)
            runtime.fail(call, error)
            raise
        otel_context.detach(token)
        _observe(runtime, call, response, stream_cls)
        return response

    return wrapper


def _async_send(runtime: Runtime, chat: Api, responses: Api, module: Any, stream_cls: type) -> Wrapper:
    async def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        if skip(runtime):  # first: an SDK call in flight is the common case, and the cheapest test
            return await wrapped(*args, **kwargs)
        request = args[0] if args else kwargs.get("request")
        api = _api_of(request, chat, responses)
        if api is None:
            return await wrapped(*args, **kwargs)
        started = _start(runtime, module, api, request)
        if started is None:
            return await wrapped(*args, **kwargs)
        call, ctx, request = started
        args = _replace_request(args, kwargs, request)
        token = otel_context.attach(ctx)
        try:
            response = await wrapped(*args, **kwargs)
        except BaseException as error:
            otel_context.detach(token)
            runtime.fail(call, error)
            raise
        otel_context.detach(token)
        _observe(runtime, call, response, stream_cls)
        return response

    return wrapper


def _observe(runtime: Runtime, call: CallState, response: Any, stream_cls: type) -> None:
    """Record a response now (read) or as its body is read (streamed); never raises."""
    try:
        status = response.status_code
        if status >= 400:
            runtime.finish(call, None, error_type=str(status))
            return
        content_type = response.headers.get("content-type", "")
        sse = "text/event-stream" in content_type
        if not sse and response.is_stream_consumed:
            runtime.finish(call, _json_view(call, response.content))
            return
        encoding = response.headers.get("content-encoding", "").lower().strip()
        observer = _BodyObserver(runtime, call, sse, encoding)
        call.streaming = True
        response.stream = stream_cls(response.stream, observer)
    except Exception:
        logger.warning("could not record an HTTP LLM response", exc_info=True)
        runtime.end_quietly(call)


def _json_view(call: CallState, content: bytes) -> Any:
    try:
        data = json.loads(content)
    except Exception:
        return None
    return call.api.response(data, call)


class _BodyObserver:
    """Sees the bytes of a response body go by; records the call at the body's end."""

    def __init__(self, runtime: Runtime, call: CallState, sse: bool, encoding: str) -> None:
        self.runtime = runtime
        self.call = call
        self.sse = sse
        self.accumulator: Accumulator | None = call.api.accumulator() if sse else None
        self.buffer = bytearray()
        self.text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.pending = ""
        self.broken = False
        self.decompress: Any = None
        if encoding in ("gzip", "x-gzip"):
            self.decompress = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self.decompress = zlib.decompressobj()
        elif encoding not in ("", "identity"):
            self.broken = True  # an encoding we do not decode: record the call without checks

    def feed(self, chunk: bytes) -> None:
        if self.call.done or self.broken:
            return
        try:
            if self.decompress is not None:
                chunk = self.decompress.decompress(chunk)
            if self.sse:
                self._events(self.text.decode(chunk))
            else:
                self.buffer += chunk
                if len(self.buffer) > _MAX_BODY:
                    self.broken = True
                    self.buffer = bytearray()
        except Exception:
            logger.debug("could not read an HTTP response body", exc_info=True)
            self.broken = True

    def _events(self, text: str) -> None:
        assert self.accumulator is not None
        self.pending += text.replace("\r\n", "\n")
        while "\n\n" in self.pending:
            event, self.pending = self.pending.split("\n\n", 1)
            data = "\n".join(line[5:].lstrip() for line in event.split("\n") if line.startswith("data:"))
            if not data or data == "[DONE]":
                continue
            try:
                item = json.loads(data)
            except ValueError:
                continue
            if self.accumulator.add(item):
                self.ended()
                return

    def ended(self) -> None:
        call = self.call
        if call.done:
            return
        response = None
        if not self.broken:
            try:
                if self.sse:
                    assert self.accumulator is not None
                    response = self.accumulator.response(call)
                else:
                    response = _json_view(call, bytes(self.buffer))
            except Exception:
                logger.debug("could not build an HTTP response view", exc_info=True)
        self._finish(response, None, None)

    def failed(self, error: BaseException) -> None:
        if not self.call.done:
            self._finish(None, error, None)

    def closed(self) -> None:
        if not self.call.done:
            self._finish(None, None, CLOSED_EARLY)

    def _finish(self, response: Any, error: BaseException | None, error_type: str | None) -> None:
        self.runtime.finish_quietly(
            self.call, response, error=error, error_type=error_type, what="an HTTP LLM response"
        )


def _stream_classes(module: Any) -> tuple[type, type]:
    """Body wrappers that are a ``SyncByteStream``/``AsyncByteStream`` of ``module``."""

    class ObservedStream(module.SyncByteStream):  # type: ignore[misc]
        def __init__(self, inner: Any, observer: _BodyObserver) -> None:
            self._inner = inner
            self._observer = observer

        def __iter__(self) -> Iterator[bytes]:
            observer = self._observer
            try:
                for chunk in self._inner:
                    observer.feed(chunk)
                    yield chunk
            except Exception as error:
                observer.failed(error)
                raise
            observer.ended()

        def close(self) -> None:
            try:
                self._inner.close()
            finally:
                self._observer.closed()

    class AsyncObservedStream(module.AsyncByteStream):  # type: ignore[misc]
        def __init__(self, inner: Any, observer: _BodyObserver) -> None:
            self._inner = inner
            self._observer = observer

        async def __aiter__(self) -> AsyncIterator[bytes]:
            observer = self._observer
            try:
                async for chunk in self._inner:
                    observer.feed(chunk)
                    yield chunk
            except Exception as error:
                observer.failed(error)
                raise
            observer.ended()

        async def aclose(self) -> None:
            try:
                await self._inner.aclose()
            finally:
                self._observer.closed()

    return ObservedStream, AsyncObservedStream
