"""Patches of the ``openai`` SDK: Chat Completions, Responses and the legacy Completions, sync and async.

Patched: ``chat.completions.create`` and ``parse``, ``responses.create`` and ``parse``, and
``completions.create``, on the sync and async resources. The ``stream()`` helpers of both APIs call
``create`` and are covered through it (their span ends when the helper's context exits or its
stream is closed: closing the HTTP response under a stream ends it), and so are
``with_raw_response``/``with_streaming_response`` (the raw response is recorded when its body is
read, see :mod:`~otel_prompt_canary.instrumentation._raw`). The base clients' ``_process_response``
is patched too: results are recorded there, inside any span another instrumentation opened around
the call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from otel_prompt_canary.instrumentation._openai import ChatCompletionsApi, CompletionsApi, ResponsesApi
from otel_prompt_canary.instrumentation._peers import OPENAI_PEERS, instrumenting
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

__all__ = ["patch", "peer_active"]

_CHAT: Final = "openai.resources.chat.completions"
_RESPONSES: Final = "openai.resources.responses.responses"
_COMPLETIONS: Final = "openai.resources.completions"
_BASE: Final = "openai._base_client"


def peer_active(instance: object = None) -> bool:
    """True when another OpenAI instrumentation is instrumenting (it then owns the LLM span)."""
    return instrumenting(OPENAI_PEERS, "OpenAIInstrumentor")


def patch(runtime: Runtime, patcher: Patcher) -> None:
    """Wrap the OpenAI methods this instrumentation records."""
    import openai
    from openai._legacy_response import LegacyAPIResponse
    from openai._response import BaseAPIResponse

    streams = (openai.Stream, openai.AsyncStream)
    raws = (LegacyAPIResponse, BaseAPIResponse)
    chat = ChatCompletionsApi(streams, raws)
    responses = ResponsesApi(streams, raws)
    completions = CompletionsApi(streams, raws)
    for method in ("create", "parse"):
        patcher.patch(_CHAT, f"Completions.{method}", sync_call_wrapper(runtime, chat, peer_active))
        patcher.patch(_CHAT, f"AsyncCompletions.{method}", async_call_wrapper(runtime, chat, peer_active))
        patcher.patch(_RESPONSES, f"Responses.{method}", sync_call_wrapper(runtime, responses, peer_active))
        patcher.patch(
            _RESPONSES, f"AsyncResponses.{method}", async_call_wrapper(runtime, responses, peer_active)
        )
    patcher.patch(_COMPLETIONS, "Completions.create", sync_call_wrapper(runtime, completions, peer_active))
    patcher.patch(
        _COMPLETIONS, "AsyncCompletions.create", async_call_wrapper(runtime, completions, peer_active)
    )
    patcher.patch(_BASE, "SyncAPIClient._process_response", sync_response_wrapper(runtime))
    patcher.patch(_BASE, "AsyncAPIClient._process_response", async_response_wrapper(runtime))
