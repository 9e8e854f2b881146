"""Proxies of the SDKs' stream objects: they watch the events go by and record the call at its end.

A proxy behaves like the stream it wraps (``wrapt.ObjectProxy``: every attribute, ``isinstance``,
the response, helper objects built on it). It records the call exactly once:

- when the stream's last meaningful event goes by (Anthropic ``message_stop``, Responses
  ``response.completed``...), before the event reaches the application, so that the results land on
  a span the SDK itself would end right after;
- else when iteration stops (OpenAI Chat Completions has no end event before ``[DONE]``);
- when iteration raises (the error's type is recorded, the exception passes through unchanged);
- when the application closes the stream, leaves its ``with`` block, or drops it before the end
  (recorded as ``error.type=stream_closed_early``, without checks: a partial answer is not judged).

``__exit__`` returns False: exceptions are never swallowed.
"""

from __future__ import annotations

import logging
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal

import wrapt

from otel_prompt_canary.instrumentation._call import Accumulator, CallState

#: ``error.type`` of a stream the application closed (or dropped) before its end.
CLOSED_EARLY: Final = "stream_closed_early"

if TYPE_CHECKING:
    from otel_prompt_canary.instrumentation._runtime import Runtime

__all__ = ["CLOSED_EARLY", "AsyncStreamProxy", "StreamProxy", "proxy_stream"]

logger = logging.getLogger("otel_prompt_canary.instrumentation")


def proxy_stream(stream: Any, runtime: Runtime, call: CallState, accumulator: Accumulator) -> Any:
    """The proxy of the right kind for ``stream`` (sync or async)."""
    if hasattr(type(stream), "__anext__") or hasattr(type(stream), "__aiter__"):
        return AsyncStreamProxy(stream, runtime, call, accumulator)
    return StreamProxy(stream, runtime, call, accumulator)


class _Recording:
    """The bookkeeping both proxies share; every method is safe to call more than once."""

    def __init__(self, runtime: Runtime, call: CallState, accumulator: Accumulator) -> None:
        self.runtime = runtime
        self.call = call
        self.accumulator = accumulator

    def observe(self, item: object) -> None:
        if self.call.done:
            return
        try:
            if self.accumulator.add(item):
                self.complete()
        except Exception:
            logger.debug("could not read a stream event", exc_info=True)

    def complete(self) -> None:
        call = self.call
        if call.done:
            return
        try:
            response = self.accumulator.response(call)
        except Exception:
            logger.debug("could not build the response of a stream", exc_info=True)
            response = None
        self._finish(response, None, None)

    def failed(self, error: BaseException) -> None:
        if not self.call.done:
            self._finish(None, error, None)

    def closed_early(self) -> None:
        if not self.call.done:
            self._finish(None, None, CLOSED_EARLY)

    def _finish(self, response: Any, error: BaseException | None, error_type: str | None) -> None:
        self.runtime.finish_quietly(
            self.call, response, error=error, error_type=error_type, what="the end of a stream"
        )


class StreamProxy(wrapt.ObjectProxy[Any]):
    """A synchronous SDK stream, recorded when it ends."""

    def __init__(self, wrapped: Any, runtime: Runtime, call: CallState, accumulator: Accumulator) -> None:
        super().__init__(wrapped)
        self._self_recording = _Recording(runtime, call, accumulator)

    def __iter__(self) -> StreamProxy:
        return self

    def __next__(self) -> Any:
        recording = self._self_recording
        try:
            item = self.__wrapped__.__next__()
        except StopIteration:
            recording.complete()
            raise
        except Exception as exc:
            recording.failed(exc)
            raise
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

    def __init__(self, wrapped: Any, runtime: Runtime, call: CallState, accumulator: Accumulator) -> None:
        super().__init__(wrapped)
        self._self_recording = _Recording(runtime, call, accumulator)

    def __aiter__(self) -> AsyncStreamProxy:
        return self

    async def __anext__(self) -> Any:
        recording = self._self_recording
        try:
            item = await self.__wrapped__.__anext__()
        except StopAsyncIteration:
            recording.complete()
            raise
        except Exception as exc:
            recording.failed(exc)
            raise
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


def _drop(proxy: Any) -> None:
    """A proxy garbage-collected before its stream ended: record it closed early."""
    try:
        recording = proxy._self_recording
    except Exception:  # a proxy whose __init__ failed
        return
    recording.closed_early()
