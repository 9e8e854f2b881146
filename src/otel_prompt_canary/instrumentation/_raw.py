"""Raw responses (``.with_raw_response``, ``.with_streaming_response``): recorded when their body is read.

The SDKs hand the application a response object whose body it parses (``parse()``) or reads as bytes
(``read()``, ``text``, ``json()``, ``iter_lines()``...) when it wants. LangChain, the OpenAI Agents
SDK and LiteLLM go through this path. The call is recorded:

- at once when the SDK read the body already (a ``with_raw_response`` call that does not stream):
  the response is parsed as the application will parse it (the SDK keeps the parsed object, so the
  application's own ``parse()`` gets that very object and the work is done once), inside the SDK's
  span, before the SDK or another instrumentation ends it;
- else when the application parses the body: a stream becomes a stream proxy (recorded at its
  end), an object is recorded at once;
- else as the application reads the bytes (the body is read as the HTTP path reads it);
- when the body is closed, or the response dropped, unread: ``error.type=stream_closed_early``.

A failure of ``parse()`` is the application's: it is raised to it unchanged, and recorded.
"""

from __future__ import annotations

import inspect
import logging
from typing import TYPE_CHECKING, Any

import wrapt

from otel_prompt_canary.instrumentation._bodies import BodyReader, watch_body
from otel_prompt_canary.instrumentation._call import UNREADABLE, CallState
from otel_prompt_canary.instrumentation._streams import Recording, proxy_stream

if TYPE_CHECKING:
    from otel_prompt_canary.instrumentation._runtime import Runtime

__all__ = ["AsyncRawResponseProxy", "RawResponseProxy", "proxy_raw", "settle"]

logger = logging.getLogger("otel_prompt_canary.instrumentation")


def proxy_raw(raw: Any, runtime: Runtime, call: CallState) -> Any:
    """The proxy of a raw response; one whose body the SDK read already is recorded now."""
    recording = Recording(runtime, call)
    http = getattr(raw, "http_response", None)
    # A body the SDK read in full before returning (a raw response that does not stream).
    in_memory = http is None or bool(
        getattr(http, "is_stream_consumed", False) and getattr(http, "is_closed", False)
    )
    body = None
    if not in_memory:
        body = RawBody(runtime, recording, http)
        if not watch_body(http, body):
            body = None
    if inspect.iscoroutinefunction(getattr(type(raw), "parse", None)):
        return AsyncRawResponseProxy(raw, recording, body, in_memory)
    proxy = RawResponseProxy(raw, recording, body)
    if in_memory:
        proxy._self_settle()
    return proxy


async def settle(value: Any) -> None:
    """For an async raw response whose body the SDK read already: record it now (never raises)."""
    if isinstance(value, AsyncRawResponseProxy):
        await value._self_settle()


class RawBody:
    """The watcher of a raw response's body: silent while the SDK parses it, a reader otherwise."""

    __slots__ = ("http", "parsing", "reader", "recording", "runtime")

    def __init__(self, runtime: Runtime, recording: Recording, http: Any) -> None:
        self.runtime = runtime
        self.recording = recording
        self.http = http
        #: True once ``parse()`` was called: the SDK (and a stream proxy) reads the body.
        self.parsing = False
        self.reader: BodyReader | None = None

    def body_chunk(self, chunk: bytes) -> None:
        if self.parsing:
            return
        reader = self.reader
        if reader is None:
            try:
                headers = self.http.headers
                sse = "text/event-stream" in headers.get("content-type", "")
                encoding = headers.get("content-encoding", "").lower().strip()
            except Exception:
                sse, encoding = False, "unknown"
            reader = self.reader = BodyReader(self.runtime, self.recording.call, sse, encoding)
        reader.body_chunk(chunk)

    def body_ended(self) -> None:
        if self.reader is not None:
            self.reader.body_ended()

    def body_failed(self, error: BaseException) -> None:
        if self.reader is not None:
            self.reader.body_failed(error)

    def body_closed(self) -> None:
        if self.reader is not None:
            self.reader.body_closed()
        else:
            self.recording.body_closed()


class _RawProxy(wrapt.ObjectProxy[Any]):
    """What the sync and async proxies share: the bookkeeping of ``parse()``."""

    def __init__(self, wrapped: Any, recording: Recording, body: RawBody | None) -> None:
        super().__init__(wrapped)
        self._self_recording = recording
        self._self_body = body
        self._self_token = recording.hold()
        #: (what the SDK's parse returned, what the application got) for the last parse.
        self._self_parsed: tuple[Any, Any] | None = None

    def _self_before_parse(self) -> None:
        if self._self_body is not None:
            self._self_body.parsing = True
        self._self_recording.reading += 1

    def _self_parse_failed(self, error: BaseException) -> None:
        recording = self._self_recording
        recording.reading -= 1
        if isinstance(error, Exception) and not recording.call.done:
            recording.runtime.fail(recording.call, error)

    def _self_after_parse(self, result: Any) -> Any:
        recording = self._self_recording
        recording.reading -= 1
        last = self._self_parsed
        if last is not None and last[0] is result:
            return last[1]
        call = recording.call
        if call.done:
            return result
        runtime = recording.runtime
        value = result
        try:
            api = call.api
            if api.is_stream(result):
                value = proxy_stream(result, runtime, call, api.accumulator(), recording)
            else:
                response = api.response(result, call)
                runtime.finish(call, response, error_type=None if response is not None else UNREADABLE)
        except Exception:
            logger.warning("could not record a parsed LLM response", exc_info=True)
            runtime.end_quietly(call)
            return result
        self._self_parsed = (result, value)
        return value

    def __del__(self) -> None:
        try:
            recording = self._self_recording
            token = self._self_token
        except Exception:  # a proxy whose __init__ failed
            return
        recording.dropped(token)


class RawResponseProxy(_RawProxy):
    """A raw response of a sync client (or the legacy one, whose ``parse()`` is sync)."""

    def parse(self, *args: Any, **kwargs: Any) -> Any:
        self._self_before_parse()
        try:
            result = self.__wrapped__.parse(*args, **kwargs)
        except BaseException as error:
            self._self_parse_failed(error)
            raise
        return self._self_after_parse(result)

    def _self_settle(self) -> None:
        """Parse a body the SDK read already, as the application will; a failure is its to see."""
        try:
            self.parse()
        except Exception:
            return


class AsyncRawResponseProxy(_RawProxy):
    """A raw response of an async client, whose ``parse()`` is a coroutine."""

    def __init__(self, wrapped: Any, recording: Recording, body: RawBody | None, in_memory: bool) -> None:
        super().__init__(wrapped, recording, body)
        self._self_in_memory = in_memory

    async def parse(self, *args: Any, **kwargs: Any) -> Any:
        self._self_before_parse()
        try:
            result = await self.__wrapped__.parse(*args, **kwargs)
        except BaseException as error:
            self._self_parse_failed(error)
            raise
        return self._self_after_parse(result)

    async def _self_settle(self) -> None:
        """Parse a body the SDK read already (see :meth:`RawResponseProxy._self_settle`)."""
        if not self._self_in_memory or self._self_recording.call.done:
            return
        try:
            await self.parse()
        except Exception:
            return
