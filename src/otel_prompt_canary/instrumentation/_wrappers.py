"""The wrapper factories every patch module uses, and the bookkeeping that makes unpatching exact.

Two kinds of wrappers:

- a *call* wrapper around a public client method (``chat.completions.create``...): it tags the call,
  owns or adopts the span, puts the call in the context for the SDK's duration and records errors;
- a *response* wrapper around the SDK's internal response processing: it runs inside whatever span
  another instrumentation or the SDK opened around the request, so results written there land on
  that span before it ends. It also proxies streams there, beneath any other instrumentation's proxy.

The call wrapper records what the response wrapper could not (a middleware path). A call that went
by with no span at all (a peer instrumenting that made none while it ran) is left in the context for
a peer that makes its span only afterwards (:data:`~otel_prompt_canary.instrumentation._call.UNCLAIMED`).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from wrapt import wrap_function_wrapper

from otel_prompt_canary.instrumentation._call import UNCLAIMED, Api, CallState, active_call
from otel_prompt_canary.instrumentation._raw import settle

# The runtime is injected into the wrappers, never looked up: it is needed here as a type only.
if TYPE_CHECKING:
    from otel_prompt_canary.instrumentation._runtime import PeerCheck, Runtime

__all__ = [
    "Patcher",
    "Wrapper",
    "async_call_wrapper",
    "async_response_wrapper",
    "skip",
    "sync_call_wrapper",
    "sync_response_wrapper",
]

logger = logging.getLogger("otel_prompt_canary.instrumentation")

Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]


def skip(runtime: Runtime) -> bool:
    """True when this call is not to be recorded: uninstrumented, suppressed, or inside a recorded call."""
    # A call in flight first: on the HTTP path, under an SDK call, that settles it at once.
    return active_call() is not None or not runtime.enabled or not is_instrumentation_enabled()


def sync_call_wrapper(runtime: Runtime, api: Api, peer_check: PeerCheck | None = None) -> Wrapper:
    """The wrapper of a synchronous client method."""

    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        if skip(runtime):
            return wrapped(*args, **kwargs)
        started = runtime.begin(api, instance, kwargs, peer_check)
        if started is None:
            return wrapped(*args, **kwargs)
        call, ctx, call_kwargs = started
        token = otel_context.attach(ctx)
        try:
            result = wrapped(*args, **call_kwargs)
        except BaseException as error:
            otel_context.detach(token)
            runtime.fail(call, error)
            _leave(call)
            raise
        otel_context.detach(token)
        value = runtime.result(call, result)
        _leave(call)
        return value

    return wrapper


def async_call_wrapper(runtime: Runtime, api: Api, peer_check: PeerCheck | None = None) -> Wrapper:
    """The wrapper of an asynchronous client method (a coroutine function)."""

    async def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        if skip(runtime):
            return await wrapped(*args, **kwargs)
        started = runtime.begin(api, instance, kwargs, peer_check)
        if started is None:
            return await wrapped(*args, **kwargs)
        call, ctx, call_kwargs = started
        token = otel_context.attach(ctx)
        try:
            result = await wrapped(*args, **call_kwargs)
        except BaseException as error:
            otel_context.detach(token)
            runtime.fail(call, error)
            _leave(call)
            raise
        otel_context.detach(token)
        value = runtime.result(call, result)
        await settle(value)
        _leave(call)
        return value

    return wrapper


def _leave(call: CallState) -> None:
    """A call that no span carried yet stays findable in this context, for a peer's late span."""
    if call.span is None and call.peer_span is None:
        UNCLAIMED.set(call)


def sync_response_wrapper(runtime: Runtime) -> Wrapper:
    """The wrapper of the SDK's synchronous response processing."""

    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        result = wrapped(*args, **kwargs)
        call = active_call()
        if call is None or call.done or call.deferred:
            return result
        runtime.adopt_current_span(call)
        return runtime.result(call, result, final=False)

    return wrapper


def async_response_wrapper(runtime: Runtime) -> Wrapper:
    """The wrapper of the SDK's asynchronous response processing."""

    async def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        result = await wrapped(*args, **kwargs)
        call = active_call()
        if call is None or call.done or call.deferred:
            return result
        runtime.adopt_current_span(call)
        value = runtime.result(call, result, final=False)
        await settle(value)
        return value

    return wrapper


class Patcher:
    """Wraps methods and remembers exactly what it wrapped, so that :meth:`unpatch_all` undoes it.

    Unpatching removes this project's wrapper wherever it sits in a chain of wrappers: another
    instrumentation that wrapped the same method later keeps its wrapper.
    """

    def __init__(self) -> None:
        self._patched: list[tuple[str, str, str, Wrapper]] = []

    def patch(self, module: str, qualname: str, wrapper: Wrapper) -> bool:
        """Wrap ``module.qualname`` (``Class.method``); False, logged, when it does not exist."""
        owner_name, _, method = qualname.rpartition(".")
        try:
            owner = _resolve(module, owner_name)
            if not hasattr(owner, method):
                raise AttributeError(method)
            wrap_function_wrapper(module, qualname, wrapper)
        except Exception as exc:
            logger.info("not patching %s.%s: %s", module, qualname, exc)
            return False
        self._patched.append((module, owner_name, method, wrapper))
        return True

    @property
    def patched(self) -> tuple[str, ...]:
        """What is currently patched, as ``module:Class.method``."""
        return tuple(f"{m}:{o}.{n}" if o else f"{m}:{n}" for m, o, n, _ in self._patched)

    def unpatch_all(self) -> None:
        """Remove every wrapper this patcher added, newest first."""
        while self._patched:
            module, owner_name, method, wrapper = self._patched.pop()
            try:
                if not _splice(_resolve(module, owner_name), method, wrapper):
                    logger.warning("%s.%s.%s was no longer patched", module, owner_name, method)
            except Exception:
                logger.warning("could not unpatch %s.%s.%s", module, owner_name, method, exc_info=True)


def _resolve(module: str, owner_name: str) -> Any:
    owner: Any = importlib.import_module(module)
    for part in owner_name.split(".") if owner_name else ():
        owner = getattr(owner, part)
    return owner


def _splice(owner: Any, method: str, wrapper: Wrapper) -> bool:
    """Remove the function wrapper whose wrapper function is ``wrapper`` from ``owner.method``."""
    node = vars(owner).get(method) if isinstance(owner, type) else getattr(owner, method, None)
    outer: Any = None
    for _ in range(64):  # a chain of wrappers is short; never loop forever on a cycle
        if node is None:
            return False
        if getattr(node, "_self_wrapper", None) is wrapper:
            inner = node.__wrapped__
            if outer is None:
                setattr(owner, method, inner)
            else:
                outer.__wrapped__ = inner
            return True
        outer = node
        node = getattr(node, "__wrapped__", None)
    return False
