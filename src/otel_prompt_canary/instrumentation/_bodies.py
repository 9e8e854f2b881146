"""Response bodies as they go by: the byte-stream wrapper of ``httpx``/``httpx2`` and the body reader.

Two pieces, used by every path that has an HTTP response in hand:

- :func:`watch_body` replaces a response's ``stream`` (its body) by a wrapper that tells a
  :class:`BodyWatcher` about each chunk, the end of the body, a failure, and the body's close. The
  wrapper is a ``SyncByteStream``/``AsyncByteStream`` of the response's own library, forwards every
  other attribute (``elapsed``, what other instrumentations put there) and never changes a byte.
  A stream proxy uses it to learn that the application (or an SDK helper) closed the response; a
  raw response uses it to read a body the application reads as bytes.
- :class:`BodyReader` is the watcher that reads an OpenAI-compatible body, a JSON object or
  server-sent events (``[DONE]`` ends a stream), and records the call at the body's end.
"""

from __future__ import annotations

import codecs
import json
import logging
import sys
import zlib
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any, Final, Protocol

from otel_prompt_canary.instrumentation._call import CLOSED_EARLY, UNREADABLE, Accumulator, CallState

if TYPE_CHECKING:
    from otel_prompt_canary.instrumentation._runtime import Runtime

__all__ = ["MAX_BODY", "BodyReader", "BodyWatcher", "json_view", "watch_body", "watched"]

logger = logging.getLogger("otel_prompt_canary.instrumentation")

#: A JSON response body larger than this is passed through without checks.
MAX_BODY: Final = 8 * 1024 * 1024
#: The attribute that marks a body wrapper of this module (and holds its watcher).
_WATCHER: Final = "_prompt_canary_watcher"


class BodyWatcher(Protocol):
    """Learns how a body is read. No method raises."""

    def body_chunk(self, chunk: bytes) -> None:
        """A chunk of the body, as it arrived (still compressed, if it was)."""
        ...

    def body_ended(self) -> None:
        """The body was read to its end."""
        ...

    def body_failed(self, error: BaseException) -> None:
        """Reading the body raised ``error``."""
        ...

    def body_closed(self) -> None:
        """The body was closed (after its end, or before)."""
        ...


def watched(response: Any) -> BodyWatcher | None:
    """The watcher already on ``response``'s body, or None."""
    return getattr(getattr(response, "stream", None), _WATCHER, None)


def watch_body(response: Any, watcher: BodyWatcher) -> bool:
    """Wrap the body of ``response`` (an ``httpx`` or ``httpx2`` response) for ``watcher``.

    False, and nothing changed, for a response of another library or a body of an unknown kind.
    """
    try:
        module = sys.modules.get(type(response).__module__.partition(".")[0])
        if module is None:
            return False
        sync_class, async_class = _classes(module)
        body = response.stream
        if isinstance(body, module.SyncByteStream):
            response.stream = sync_class(body, watcher)
        elif isinstance(body, module.AsyncByteStream):
            response.stream = async_class(body, watcher)
        else:
            return False
        return True
    except Exception:
        logger.debug("could not watch a response body", exc_info=True)
        return False


_CLASSES: dict[str, tuple[type, type]] = {}


def _classes(module: Any) -> tuple[type, type]:
    found = _CLASSES.get(module.__name__)
    if found is None:
        found = _CLASSES[module.__name__] = _body_classes(module)
    return found


def _body_classes(module: Any) -> tuple[type, type]:
    """Body wrappers that are a ``SyncByteStream``/``AsyncByteStream`` of ``module``."""

    class WatchedBody(module.SyncByteStream):  # type: ignore[misc]
        def __init__(self, inner: Any, watcher: BodyWatcher) -> None:
            self._inner = inner
            self._prompt_canary_watcher = watcher

        def __iter__(self) -> Iterator[bytes]:
            watcher = self._prompt_canary_watcher
            try:
                for chunk in self._inner:
                    watcher.body_chunk(chunk)
                    yield chunk
            except Exception as error:
                watcher.body_failed(error)
                raise
            watcher.body_ended()

        def close(self) -> None:
            try:
                self._inner.close()
            finally:
                self._prompt_canary_watcher.body_closed()

        def __getattr__(self, name: str) -> Any:
            if name.startswith("__") or name in ("_inner", _WATCHER):
                raise AttributeError(name)
            return getattr(self._inner, name)

    class AsyncWatchedBody(module.AsyncByteStream):  # type: ignore[misc]
        def __init__(self, inner: Any, watcher: BodyWatcher) -> None:
            self._inner = inner
            self._prompt_canary_watcher = watcher

        async def __aiter__(self) -> AsyncIterator[bytes]:
            watcher = self._prompt_canary_watcher
            try:
                async for chunk in self._inner:
                    watcher.body_chunk(chunk)
                    yield chunk
            except Exception as error:
                watcher.body_failed(error)
                raise
            watcher.body_ended()

        async def aclose(self) -> None:
            try:
                await self._inner.aclose()
            finally:
                self._prompt_canary_watcher.body_closed()

        def __getattr__(self, name: str) -> Any:
            if name.startswith("__") or name in ("_inner", _WATCHER):
                raise AttributeError(name)
            return getattr(self._inner, name)

    return WatchedBody, AsyncWatchedBody


def json_view(call: CallState, content: bytes | str) -> Any:
    """The response view of a JSON body; None when it is not JSON or not a response of the call's API."""
    try:
        data = json.loads(content)
    except Exception:
        return None
    try:
        return call.api.response(data, call)
    except Exception:
        logger.debug("could not read a JSON response body", exc_info=True)
        return None


class BodyReader:
    """Reads an OpenAI-compatible body as it goes by and records the call at the body's end.

    A JSON body is buffered (up to :data:`MAX_BODY`) and read at its end; server-sent events are
    read one by one, and the stream ends at its last event, at ``data: [DONE]`` or at the end of the
    body. A body that cannot be read (not JSON, not the API's shape, an encoding other than
    identity, gzip or deflate, too large) is recorded with ``error.type=response_unreadable``.
    """

    def __init__(self, runtime: Runtime, call: CallState, sse: bool, encoding: str = "") -> None:
        self.runtime = runtime
        self.call = call
        self.sse = sse
        self.accumulator: Accumulator | None = call.api.accumulator() if sse else None
        self.buffer = bytearray()
        self.text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.pending = ""
        #: Events read as JSON: a stream with none is not the API's (its outcome is unknown).
        self.events = 0
        self.broken = False
        self.decompress: Any = None
        if encoding in ("gzip", "x-gzip"):
            self.decompress = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self.decompress = zlib.decompressobj()
        elif encoding not in ("", "identity"):
            self.broken = True  # an encoding we do not decode: record the call without checks

    def body_chunk(self, chunk: bytes) -> None:
        if self.call.done or self.broken:
            return
        try:
            if self.decompress is not None:
                chunk = self.decompress.decompress(chunk)
            if self.sse:
                self._events(self.text.decode(chunk))
            else:
                self.buffer += chunk
                if len(self.buffer) > MAX_BODY:
                    self.broken = True
                    self.buffer = bytearray()
        except Exception:
            logger.debug("could not read an HTTP response body", exc_info=True)
            self.broken = True

    def _events(self, text: str) -> None:
        assert self.accumulator is not None
        # Normalised with what is pending: a CRLF may be split between two chunks.
        self.pending = (self.pending + text).replace("\r\n", "\n")
        while "\n\n" in self.pending:
            event, self.pending = self.pending.split("\n\n", 1)
            data = "\n".join(line[5:].lstrip() for line in event.split("\n") if line.startswith("data:"))
            if not data:
                continue
            if data == "[DONE]":  # Chat Completions and Completions end their streams so
                self.body_ended()
                return
            try:
                item = json.loads(data)
            except ValueError:
                continue
            self.events += 1
            if self.accumulator.add(item):
                self.body_ended()
                return

    def body_ended(self) -> None:
        call = self.call
        if call.done:
            return
        response = None
        if not self.broken:
            try:
                if self.sse:
                    assert self.accumulator is not None
                    if self.events:
                        response = self.accumulator.response(call)
                else:
                    response = json_view(call, bytes(self.buffer))
            except Exception:
                logger.debug("could not build an HTTP response view", exc_info=True)
        self._finish(response, None, None if response is not None else UNREADABLE)

    def body_failed(self, error: BaseException) -> None:
        if not self.call.done:
            self._finish(None, error, None)

    def body_closed(self) -> None:
        if not self.call.done:
            self._finish(None, None, CLOSED_EARLY)

    def _finish(self, response: Any, error: BaseException | None, error_type: str | None) -> None:
        self.runtime.finish_quietly(
            self.call, response, error=error, error_type=error_type, what="an HTTP LLM response"
        )
