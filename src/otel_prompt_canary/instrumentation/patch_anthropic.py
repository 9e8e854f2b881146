"""Patches of the ``anthropic`` SDK: ``messages`` and ``beta.messages``, sync and async.

Patched: ``create``, ``stream`` and ``parse`` of ``messages`` and of ``beta.messages`` (LangChain
switches to the latter whenever ``betas=`` is set). Raw responses (``with_raw_response``, which
``ChatAnthropic`` uses for every call) are recorded when their body is read
(:mod:`~otel_prompt_canary.instrumentation._raw`).

The SDK makes its own ``anthropic.messages.create`` span for every call when OpenTelemetry tracing
is on (anthropic 2.x, with a real tracer provider): then this project makes no span of its own and
writes the prompt attributes and check results on the SDK's span, from inside the SDK's response
processing (``_process_response``) and at the stream's ``message_stop``, before the SDK ends it.

``stream()`` returns a manager that sends the request when entered; the manager is proxied so that
the call is recorded from its ``__enter__``/``__aenter__`` (the span, when ours, starts when
``stream()`` is called).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal

import wrapt
from opentelemetry import context as otel_context
from opentelemetry.trace import NoOpTracer, ProxyTracer

from otel_prompt_canary.instrumentation._anthropic import MessagesApi
from otel_prompt_canary.instrumentation._call import CLOSED_EARLY, CallState
from otel_prompt_canary.instrumentation._peers import ANTHROPIC_PEERS, instrumenting
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

__all__ = ["patch", "peer_active", "sdk_traces"]

logger = logging.getLogger("otel_prompt_canary.instrumentation")

_MESSAGES: Final = "anthropic.resources.messages.messages"
_BETA_MESSAGES: Final = "anthropic.resources.beta.messages.messages"
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
    return sdk_traces(instance) or instrumenting(ANTHROPIC_PEERS, "AnthropicInstrumentor")


def _raw_types() -> tuple[type, ...]:
    """The SDK's raw response classes (0.x also has the legacy one, which 2.x dropped)."""
    from anthropic._response import BaseAPIResponse

    try:
        legacy = importlib.import_module("anthropic._legacy_response").LegacyAPIResponse
    except (ImportError, AttributeError):
        return (BaseAPIResponse,)
    return (BaseAPIResponse, legacy)


def patch(runtime: Runtime, patcher: Patcher) -> None:
    """Wrap the Anthropic methods this instrumentation records."""
    import anthropic

    api = MessagesApi((anthropic.Stream, anthropic.AsyncStream), _raw_types())
    for module in (_MESSAGES, _BETA_MESSAGES):
        for method in ("create", "parse"):
            patcher.patch(module, f"Messages.{method}", sync_call_wrapper(runtime, api, peer_active))
            patcher.patch(module, f"AsyncMessages.{method}", async_call_wrapper(runtime, api, peer_active))
        patcher.patch(module, "Messages.stream", stream_wrapper(runtime, api))
        patcher.patch(module, "AsyncMessages.stream", stream_wrapper(runtime, api))
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
        if not call.done and not call.deferred:
            # Left before any stream was made (or the request never went out).
            self._self_runtime.finish_quietly(call, None, error_type=CLOSED_EARLY, what="a stream manager")

    def __del__(self) -> None:
        try:
            self._self_closed()
        except Exception:  # a proxy whose __init__ failed has no call
            return
