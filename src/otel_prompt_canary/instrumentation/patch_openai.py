"""Patches of the ``openai`` SDK: Chat Completions and Responses, sync and async, JSON and streams.

Patched: ``chat.completions.create`` and ``parse``, ``responses.create`` and ``parse`` on the sync
and async resources (the ``stream()`` helpers of both APIs call ``create`` and are covered through
it), and the base clients' ``_process_response``, where results are recorded inside any span another
instrumentation opened around the call.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Final

from otel_prompt_canary.instrumentation._openai import ChatCompletionsApi, ResponsesApi
from otel_prompt_canary.instrumentation._wrappers import (
    Patcher,
    async_call_wrapper,
    async_response_wrapper,
    sync_call_wrapper,
    sync_response_wrapper,
)

# The runtime is injected into the wrappers, never looked up: it is needed here as a type only.
if TYPE_CHECKING:
    from otel_prompt_canary.instrumentation._runtime import Runtime

__all__ = ["PEER_INSTRUMENTORS", "patch", "peer_active"]

#: Modules of other OpenAI instrumentations that make their own GenAI span per call.
PEER_INSTRUMENTORS: Final = (
    "opentelemetry.instrumentation.genai.openai",
    "opentelemetry.instrumentation.openai_v2",
    "opentelemetry.instrumentation.openai",
)

_CHAT: Final = "openai.resources.chat.completions"
_RESPONSES: Final = "openai.resources.responses.responses"
_BASE: Final = "openai._base_client"


def peer_active(instance: object = None) -> bool:
    """True when another OpenAI instrumentation is instrumenting (it then owns the LLM span)."""
    modules = sys.modules
    for name in PEER_INSTRUMENTORS:
        module = modules.get(name)
        if module is None:
            continue
        instrumentor = getattr(getattr(module, "OpenAIInstrumentor", None), "_instance", None)
        if instrumentor is not None and getattr(instrumentor, "_is_instrumented_by_opentelemetry", False):
            return True
    return False


def patch(runtime: Runtime, patcher: Patcher) -> None:
    """Wrap the OpenAI methods this instrumentation records."""
    import openai

    streams = (openai.Stream, openai.AsyncStream)
    chat = ChatCompletionsApi(streams)
    responses = ResponsesApi(streams)
    for method in ("create", "parse"):
        patcher.patch(_CHAT, f"Completions.{method}", sync_call_wrapper(runtime, chat, peer_active))
        patcher.patch(_CHAT, f"AsyncCompletions.{method}", async_call_wrapper(runtime, chat, peer_active))
        patcher.patch(_RESPONSES, f"Responses.{method}", sync_call_wrapper(runtime, responses, peer_active))
        patcher.patch(
            _RESPONSES, f"AsyncResponses.{method}", async_call_wrapper(runtime, responses, peer_active)
        )
    patcher.patch(_BASE, "SyncAPIClient._process_response", sync_response_wrapper(runtime))
    patcher.patch(_BASE, "AsyncAPIClient._process_response", async_response_wrapper(runtime))
