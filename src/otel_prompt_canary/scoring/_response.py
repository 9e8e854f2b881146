"""The library-neutral view of one LLM response that every check and scorer reads.

The instrumentation builds one :class:`LLMResponse` per LLM call from the client library's own
objects (OpenAI, Anthropic...). It is a frozen, slotted dataclass so that building it on every call
costs little: fields hold what the provider returned, unconverted. Finish reasons in particular are
kept as the provider spelled them (OpenAI ``length``, Anthropic ``max_tokens``); the checks understand
both vocabularies through the sets below, and :func:`normalize_finish_reason` maps them to OpenAI's
words for whoever wants one vocabulary.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

__all__ = [
    "CONTENT_FILTER_FINISH_REASONS",
    "JSON_RESPONSE_FORMATS",
    "LENGTH_FINISH_REASONS",
    "LLMResponse",
    "ToolCall",
    "normalize_finish_reason",
]

#: Finish reasons meaning "the output was cut at the token limit" (OpenAI, Anthropic, Gemini, Responses API).
LENGTH_FINISH_REASONS: frozenset[str] = frozenset(
    {"length", "max_tokens", "max_output_tokens", "model_length_context_exceeded"}
)

#: Finish reasons meaning "the provider or the model declined to answer" (OpenAI ``content_filter``,
#: Anthropic ``refusal``, Gemini ``safety``/``blocklist``/``prohibited_content``).
CONTENT_FILTER_FINISH_REASONS: frozenset[str] = frozenset(
    {"content_filter", "refusal", "safety", "blocklist", "prohibited_content", "spii", "recitation"}
)

#: Values of :attr:`LLMResponse.response_format` that ask the model for JSON.
JSON_RESPONSE_FORMATS: frozenset[str] = frozenset({"json_object", "json_schema", "json"})

_FINISH_REASON_ALIASES: Mapping[str, str] = MappingProxyType(
    {
        # Anthropic stop reasons
        "end_turn": "stop",
        "stop_sequence": "stop",
        "pause_turn": "stop",
        "max_tokens": "length",
        "tool_use": "tool_calls",
        "refusal": "content_filter",
        # Gemini and the OpenAI Responses API
        "max_output_tokens": "length",
        "safety": "content_filter",
        "blocklist": "content_filter",
        "prohibited_content": "content_filter",
        "spii": "content_filter",
        "recitation": "content_filter",
        "function_call": "tool_calls",
        "model_length_context_exceeded": "length",
    }
)


def normalize_finish_reason(reason: str) -> str:
    """Map a provider's finish/stop reason to OpenAI's vocabulary.

    ``stop``, ``length``, ``tool_calls`` and ``content_filter`` come out; unknown reasons come out
    lower-cased and otherwise unchanged. Example: Anthropic's ``end_turn`` becomes ``stop`` and its
    ``refusal`` becomes ``content_filter``.
    """
    lowered = reason.lower()
    return _FINISH_REASON_ALIASES.get(lowered, lowered)


@dataclass(slots=True, frozen=True)
class ToolCall:
    """One tool (function) call the model asked for.

    ``arguments`` is what the provider returned: a JSON string (OpenAI) or a mapping (Anthropic).
    :meth:`arguments_dict` parses it on demand, so building a ``ToolCall`` never parses anything.
    """

    name: str
    arguments: str | Mapping[str, object] = ""
    id: str | None = None

    def arguments_dict(self) -> dict[str, Any] | None:
        """The arguments as a dict, or None when they are not a JSON object."""
        args = self.arguments
        if isinstance(args, Mapping):
            return dict(args)
        if not args:
            return {}
        try:
            parsed = json.loads(args)
        except (ValueError, RecursionError):
            return None
        return parsed if isinstance(parsed, dict) else None


@dataclass(slots=True, frozen=True, kw_only=True)
class LLMResponse:
    """One LLM response as the checks see it; every field is optional, keyword-only.

    Attributes:
        output_text: The text the model produced (all text parts joined); ``""`` for a pure tool call.
        tool_calls: The tool calls the model asked for, in order.
        finish_reasons: One reason per choice, as the provider spelled it (``stop``, ``length``,
            ``content_filter``, ``tool_calls``, Anthropic's ``end_turn``, ``max_tokens``, ``refusal``...).
        input_tokens: Prompt tokens billed, when the provider reported them.
        output_tokens: Completion tokens billed, when the provider reported them.
        model: The model that answered (``gen_ai.response.model``).
        response_id: The provider's response id; it keys sampling and user feedback.
        refusal: OpenAI's ``message.refusal`` text (structured outputs), when present.
        request_messages: The request's chat messages as the application passed them (mappings with
            ``role`` and ``content``); only the LLM judge reads them, and only when it runs.
        instructions: The request's system prompt when it is not a message (Anthropic ``system``,
            Responses API ``instructions``).
        response_format: The type the request asked for: ``text``, ``json_object``, ``json_schema``.
        prompt_name: The registry prompt this call used, when known.
        prompt_version: Its version, when known.
        cohort: ``stable`` or ``canary``, when the call was routed by a rollout.
        provider: ``openai``, ``anthropic``... (``gen_ai.provider.name``).
        metadata: Anything else the instrumentation wants to pass to custom checks.
    """

    output_text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reasons: tuple[str, ...] = ()
    input_tokens: int | None = None
    output_tokens: int | None = None
    model: str | None = None
    response_id: str | None = None
    refusal: str | None = None
    request_messages: Sequence[Mapping[str, Any]] = ()
    instructions: str | None = None
    response_format: str | None = None
    prompt_name: str | None = None
    prompt_version: str | int | None = None
    cohort: str | None = None
    provider: str | None = None
    metadata: Mapping[str, object] | None = None

    @property
    def requested_json(self) -> bool:
        """True when the request asked for JSON output (``response_format`` json_object/json_schema)."""
        fmt = self.response_format
        return fmt is not None and fmt in JSON_RESPONSE_FORMATS
