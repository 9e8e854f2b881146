"""Patches of the ``anthropic`` SDK: ``messages.create`` and ``messages.stream``, sync and async.

The SDK makes its own ``anthropic.messages.create`` span for every call when OpenTelemetry tracing
is on (anthropic 2.x, with a real tracer provider): then this project makes no span of its own and
writes the prompt attributes and check results on the SDK's span, from inside the SDK's response
processing (``_process_response``) and at the stream's ``message_stop``, before the SDK ends it.

``messages.stream()`` returns a manager that sends the request when entered; the manager is proxied
so that the call is recorded from its ``__enter__``/``__aenter__`` (the span, when ours, starts when
``stream()`` is called).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal

import wrapt
from opentelemetry import context as otel_context
from opentelemetry.trace import NoOpTracer, ProxyTracer

from otel_prompt_canary.instrumentation._anthropic import MessagesApi
from otel_prompt_canary.instrumentation._call import CallState
from otel_prompt_canary.instrumentation._streams import CLOSED_EARLY
from otel_prompt_canary.instrumentation._wrappers import (
    Patcher,
    Wrapper,
    async_call_wrapper,
    async_response_wrapper,
    skip,
    sync_call_wrapper,
    sync_response_wrapper,
)

# The runtime is injected into the wrappers, never looked up: it is needed here as a type only.
if TYPE_CHECKING:
    from otel_prompt_canary.instrumentation._runtime import Runtime

__all__ = ["PEER_INSTRUMENTORS", "patch", "peer_active", "sdk_traces"]

logger = logging.getLogger("otel_prompt_canary.instrumentation")

#: Modules of other Anthropic instrumentations that make their own GenAI span per call.
PEER_INSTRUMENTORS: Final = (
    "opentelemetry.instrumentation.genai.anthropic",
    "opentelemetry.instrumentation.anthropic",
)

_MESSAGES: Final = "anthropic.resources.messages.messages"
_BASE: Final = "anthropic._base_client"


def sdk_traces(instance: object) -> bool:
    """True when the SDK client behind ``instance`` makes its own span per call."""
    client = getattr(instance, "_client", None)
    try:
        tracer = getattr(client, "_tracer", None)
    except Exception:
        return False
    if isinstance(tracer, ProxyTracer):
        tracer = tracer._tracer
    return tracer is not None and not isinstance(tracer, NoOpTracer)


def peer_active(instance: object) -> bool:
    """True when the SDK itself or another Anthropic instrumentation owns the LLM span."""
    if sdk_traces(instance):
        return True
    modules = sys.modules
    for name in PEER_INSTRUMENTORS:
        module = modules.get(name)
        if module is None:
            continue
        instrumentor = getattr(getattr(module, "AnthropicInstrumentor", None), "_instance", None)
        if instrumentor is not None and getattr(instrumentor, "_is_instrumented_by_opentelemetry", False):
            return True
    return False


def patch(runtime: Runtime, patcher: Patcher) -> None:
    """Wrap the Anthropic methods this instrumentation records."""
    import anthropic

    api = MessagesApi((anthropic.Stream, anthropic.AsyncStream))
    patcher.patch(_MESSAGES, "Messages.create", sync_call_wrapper(runtime, api, peer_active))
    patcher.patch(_MESSAGES, "AsyncMessages.create", async_call_wrapper(runtime, api, peer_active))
    patcher.patch(_MESSAGES, "Messages.stream", stream_wrapper(runtime, api))
    patcher.patch(_MESSAGES, "AsyncMessages.stream", stream_wrapper(runtime, api))
    patcher.patch(_BASE, "SyncAPIClient._process_response", sync_response_wrapper(runtime))
    patcher.patch(_BASE, "AsyncAPIClient._process_response", async_response_wrapper(runtime))


def stream_wrapper(runtime: Runtime, api: MessagesApi) -> Wrapper:
    """The wrapper of ``messages.stream()``: the manager it returns is proxied."""

    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        if skip(runtime):
            return wrapped(*args, **kwargs)
        started = runtime.begin(api, instance, {**kwargs, "stream": True}, peer_active)
        if started is None:
            return wrapped(*args, **kwargs)
        call, ctx, call_kwargs = started
        call_kwargs = {k: v for k, v in call_kwargs.items() if k != "stream"}
        try:
            manager = wrapped(*args, **call_kwargs)
        except BaseException as error:
            runtime.fail(call, error)
            raise
        return StreamManagerProxy(manager, runtime, call, ctx)

    return wrapper


class StreamManagerProxy(wrapt.ObjectProxy[Any]):
    """A ``MessageStreamManager`` whose ``__enter__`` runs the request inside the call's context."""

    def __init__(self, wrapped: Any, runtime: Runtime, call: CallState, ctx: otel_context.Context) -> None:
        super().__init__(wrapped)
        self._self_runtime = runtime
        self._self_call = call
        self._self_ctx = ctx

    def __enter__(self) -> Any:
        token = otel_context.attach(self._self_ctx)
        try:
            stream = self.__wrapped__.__enter__()
        except BaseException as error:
            otel_context.detach(token)
            self._self_runtime.fail(self._self_call, error)
            raise
        otel_context.detach(token)
        return stream

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        try:
            self.__wrapped__.__exit__(exc_type, exc, tb)
        finally:
            self._self_closed()
        return False

    async def __aenter__(self) -> Any:
        token = otel_context.attach(self._self_ctx)
        try:
            stream = await self.__wrapped__.__aenter__()
        except BaseException as error:
            otel_context.detach(token)
            self._self_runtime.fail(self._self_call, error)
            raise
        otel_context.detach(token)
        return stream

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        try:
            await self.__wrapped__.__aexit__(exc_type, exc, tb)
        finally:
            self._self_closed()
        return False

    def _self_closed(self) -> None:
        call = self._self_call
        if not call.done and not call.streaming:
            # Left before any stream was made (or the request never went out).
            self._self_runtime.finish_quietly(call, None, error_type=CLOSED_EARLY, what="a stream manager")

    def __del__(self) -> None:
        try:
            self._self_closed()
        except Exception:  # a proxy whose __init__ failed has no call
            return
