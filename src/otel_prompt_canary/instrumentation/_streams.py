"""Proxies of the SDKs' stream objects: they watch the events go by and record the call at its end.

A proxy behaves like the stream it wraps (``wrapt.ObjectProxy``: every attribute, ``isinstance``,
the response, helper objects built on it). It records the call exactly once:

- when the stream's last meaningful event goes by (Anthropic ``message_stop``, Responses
  ``response.completed``...), before the event reaches the application, so that the results land on
  a span the SDK itself would end right after;
- else when iteration stops (OpenAI Chat Completions has no end event before ``[DONE]``); a stream
  that ends with no event at all is not the API's: ``error.type=response_unreadable``, no checks;
- when iteration raises (the error's type is recorded, the exception passes through unchanged; a
  cancelled task or an interrupt is a stream closed early);
- when the application closes the stream, leaves its ``with`` block, or closes the HTTP response
  under it (the SDK helpers ``chat.completions.stream()``/``responses.stream()`` close the response,
  not the stream) before the end: recorded as ``error.type=stream_closed_early``, without checks (a
  partial answer is not judged);
- as a last resort when the stream is dropped (garbage-collected) before any of these.

``__exit__`` returns False: exceptions are never swallowed.
"""

from __future__ import annotations

import logging
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

import wrapt

from otel_prompt_canary.instrumentation._bodies import watch_body, watched
from otel_prompt_canary.instrumentation._call import CLOSED_EARLY, UNREADABLE, Accumulator, CallState

if TYPE_CHECKING:
    from otel_prompt_canary.instrumentation._runtime import Runtime

__all__ = ["CLOSED_EARLY", "AsyncStreamProxy", "Recording", "StreamProxy", "proxy_stream"]

logger = logging.getLogger("otel_prompt_canary.instrumentation")


def proxy_stream(
    stream: Any,
    runtime: Runtime,
    call: CallState,
    accumulator: Accumulator,
    recording: Recording | None = None,
) -> Any:
    """The proxy of the right kind for ``stream`` (sync or async).

    ``recording`` is the call's recording when one exists already (a raw response parsed into a
    stream, whose body is watched already); else one is made, and the stream's HTTP response is
    watched so that closing it ends the call.
    """
    if recording is None:
        recording = Recording(runtime, call)
        response = getattr(stream, "response", None)
        if response is not None and watched(response) is None:
            watch_body(response, recording)
    recording.accumulator = accumulator
    if hasattr(type(stream), "__anext__") or hasattr(type(stream), "__aiter__"):
        return AsyncStreamProxy(stream, recording)
    return StreamProxy(stream, recording)


class Recording:
    """The bookkeeping of one call whose response is read later; every method is safe to call twice.

    Shared by every proxy of the call's response. It is also the watcher of the response's body
    (:func:`~otel_prompt_canary.instrumentation._bodies.watch_body`): the body closing while no proxy
    is reading means the application or a helper closed it before the end. The body also closes
    inside the last read of a stream that ends normally; the end of iteration records that one.
    """

    __slots__ = ("accumulator", "call", "events", "holder", "reading", "runtime")

    def __init__(self, runtime: Runtime, call: CallState, accumulator: Accumulator | None = None) -> None:
        self.runtime = runtime
        self.call = call
        self.accumulator = accumulator
        #: Reads in progress (a stream proxy's ``__next__``/``__anext__``).
        self.reading = 0
        #: The token of the newest proxy: only its being dropped ends the call.
        self.holder = 0
        #: Events seen: a stream that ends with none is not the API's (its outcome is unknown).
        self.events = 0

    def hold(self) -> int:
        """A token for a new proxy of the response; the older ones no longer hold it."""
        self.holder += 1
        return self.holder

    def observe(self, item: object) -> None:
        if self.call.done or self.accumulator is None:
            return
        self.events += 1
        try:
            if self.accumulator.add(item):
                self.complete()
        except Exception:
            logger.debug("could not read a stream event", exc_info=True)

    def complete(self) -> None:
        call = self.call
        if call.done:
            return
        response = None
        if self.accumulator is not None and self.events:
            try:
                response = self.accumulator.response(call)
            except Exception:
                logger.debug("could not build the response of a stream", exc_info=True)
        self._finish(response, None, None if response is not None else UNREADABLE)

    def failed(self, error: BaseException) -> None:
        if not self.call.done:
            self._finish(None, error, None)

    def closed_early(self) -> None:
        if not self.call.done:
            self._finish(None, None, CLOSED_EARLY)

    def dropped(self, token: int) -> None:
        """A proxy was garbage-collected: the call ends if it was the newest one."""
        if token == self.holder:
            self.closed_early()

    # The watcher of the response body: only its close says something a proxy did not see.
    def body_chunk(self, chunk: bytes) -> None:
        return None

    def body_ended(self) -> None:
        return None

    def body_failed(self, error: BaseException) -> None:
        return None  # the stream raises the SDK's own error through its proxy

    def body_closed(self) -> None:
        if not self.reading:
            self.closed_early()

    def _finish(self, response: Any, error: BaseException | None, error_type: str | None) -> None:
        self.runtime.finish_quietly(
            self.call, response, error=error, error_type=error_type, what="the end of a stream"
        )


class StreamProxy(wrapt.ObjectProxy[Any]):
    """A synchronous SDK stream, recorded when it ends."""

    def __init__(self, wrapped: Any, recording: Recording) -> None:
        super().__init__(wrapped)
        self._self_recording = recording
        self._self_token = recording.hold()

    def __iter__(self) -> StreamProxy:
        return self

    def __next__(self) -> Any:
        recording = self._self_recording
        recording.reading += 1
        try:
            item = self.__wrapped__.__next__()
        except StopIteration:
            recording.reading -= 1
            recording.complete()
            raise
        except BaseException as exc:
            recording.reading -= 1
            _stopped(recording, exc)
            raise
        recording.reading -= 1
        recording.observe(item)
        return item

    def close(self) -> Any:
        try:
            return self.__wrapped__.close()
        finally:
            self._self_recording.closed_early()

    def __enter__(self) -> StreamProxy:
        self.__wrapped__.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        try:
            self.__wrapped__.__exit__(exc_type, exc, tb)
        finally:
            self._self_recording.closed_early()
        return False

    def __del__(self) -> None:
        _drop(self)


class AsyncStreamProxy(wrapt.ObjectProxy[Any]):
    """An asynchronous SDK stream, recorded when it ends."""

    def __init__(self, wrapped: Any, recording: Recording) -> None:
        super().__init__(wrapped)
        self._self_recording = recording
        self._self_token = recording.hold()

    def __aiter__(self) -> AsyncStreamProxy:
        return self

    async def __anext__(self) -> Any:
        recording = self._self_recording
        recording.reading += 1
        try:
            item = await self.__wrapped__.__anext__()
        except StopAsyncIteration:
            recording.reading -= 1
            recording.complete()
            raise
        except BaseException as exc:
            recording.reading -= 1
            _stopped(recording, exc)
            raise
        recording.reading -= 1
        recording.observe(item)
        return item

    async def close(self) -> Any:
        try:
            return await self.__wrapped__.close()
        finally:
            self._self_recording.closed_early()

    async def __aenter__(self) -> AsyncStreamProxy:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        try:
            await self.__wrapped__.__aexit__(exc_type, exc, tb)
        finally:
            self._self_recording.closed_early()
        return False

    def __del__(self) -> None:
        _drop(self)


def _stopped(recording: Recording, error: BaseException) -> None:
    """Reading the stream raised ``error``: the SDK's error fails the call; a cancelled task or an
    interrupt (not an ``Exception``) stopped reading it, which is a stream closed early."""
    if isinstance(error, Exception):
        recording.failed(error)
    else:
        recording.closed_early()


def _drop(proxy: Any) -> None:
    """A proxy garbage-collected before its stream ended: record it closed early."""
    try:
        recording = proxy._self_recording
        token = proxy._self_token
    except Exception:  # a proxy whose __init__ failed
        return
    recording.dropped(token)
