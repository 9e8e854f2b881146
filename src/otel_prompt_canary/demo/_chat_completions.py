"""OpenAI Chat Completions on the wire: ``POST /v1/chat/completions``, as JSON or as a chunk stream."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from otel_prompt_canary.demo._wire import (
    Answer,
    ApiError,
    JsonBody,
    new_id,
    sse,
    text_of,
    text_pieces,
)
from otel_prompt_canary.demo.behaviour import ModelRequest

__all__ = ["completion_body", "completion_events", "parse_chat_request"]

_SYSTEM_ROLES = ("system", "developer")
_FINGERPRINT = "fp_simulated"


def parse_chat_request(body: JsonBody) -> ModelRequest:
    """The neutral view of a Chat Completions request, or :class:`ApiError` 400."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ApiError(400, "you must provide a model parameter", param="model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "'messages' must be a non-empty array", param="messages")
    pairs = tuple(
        (str(m.get("role", "")), text_of(m.get("content"))) for m in messages if isinstance(m, Mapping)
    )
    response_format = body.get("response_format") or {}
    format_type = response_format.get("type") if isinstance(response_format, Mapping) else None
    schema = None
    if format_type == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema") or {}
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    return ModelRequest(
        api="chat.completions",
        model=model,
        system="\n".join(text for role, text in pairs if role in _SYSTEM_ROLES),
        user=next((text for role, text in reversed(pairs) if role == "user"), ""),
        messages=pairs,
        wants_json=format_type in ("json_object", "json_schema"),
        json_schema=schema,
        tools=_tool_names(body.get("tools")),
        max_tokens=max_tokens if isinstance(max_tokens, int) else None,
        stream=body.get("stream") is True,
        body=body,
    )


def _tool_names(tools: Any) -> tuple[str, ...]:
    if not isinstance(tools, list):
        return ()
    return tuple(
        str(t["function"].get("name", ""))
        for t in tools
        if isinstance(t, Mapping) and isinstance(t.get("function"), Mapping)
    )


def _usage(answer: Answer) -> dict[str, Any]:
    return {
        "prompt_tokens": answer.input_tokens,
        "completion_tokens": answer.output_tokens,
        "total_tokens": answer.total_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _tool_calls(answer: Answer) -> list[dict[str, Any]]:
    return [
        {
            "id": call.id or new_id("call_"),
            "type": "function",
            "function": {"name": call.name, "arguments": call.arguments_json},
        }
        for call in answer.reply.tool_calls
    ]


def completion_body(answer: Answer, request: ModelRequest) -> dict[str, Any]:
    """A ``chat.completion`` object."""
    reply = answer.reply
    tool_calls = _tool_calls(answer)
    message: dict[str, Any] = {
        "role": "assistant",
        "content": reply.text if reply.text or not tool_calls else None,
        "refusal": None,
        "annotations": [],
    }
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": new_id("chatcmpl-"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": reply.finish_reason}],
        "usage": _usage(answer),
        "service_tier": "default",
        "system_fingerprint": _FINGERPRINT,
    }


def completion_events(answer: Answer, request: ModelRequest) -> list[bytes]:
    """``chat.completion.chunk`` events ending with ``data: [DONE]``.

    The first chunk carries the role, then text deltas, then one chunk opening each tool call
    (id, name) followed by its argument deltas, a chunk with the finish reason and, when the request
    sets ``stream_options.include_usage``, a last chunk with no choices and the usage.
    """
    options = request.body.get("stream_options")
    with_usage = isinstance(options, Mapping) and options.get("include_usage") is True
    head = {
        "id": new_id("chatcmpl-"),
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": request.model,
        "service_tier": "default",
        "system_fingerprint": _FINGERPRINT,
    }
    if with_usage:
        head["usage"] = None

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return sse({**head, "choices": [choice]})

    reply = answer.reply
    size = reply.chunk_chars
    # Like the real API: the opening delta's content is "" before text, null before tool calls alone.
    opening_content = "" if reply.text or not reply.tool_calls else None
    events = [chunk({"role": "assistant", "content": opening_content, "refusal": None})]
    if reply.text:
        events += [chunk({"content": piece}) for piece in text_pieces(reply.text, size)]
    for index, call in enumerate(_tool_calls(answer)):
        function = call["function"]
        opening = {"index": index, "id": call["id"], "type": "function"}
        opening["function"] = {"name": function["name"], "arguments": ""}
        events.append(chunk({"tool_calls": [opening]}))
        events += [
            chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
            for piece in text_pieces(function["arguments"], size)
        ]
    events.append(chunk({}, reply.finish_reason))
    if with_usage:
        events.append(sse({**head, "choices": [], "usage": _usage(answer)}))
    events.append(sse("[DONE]"))
    return events
