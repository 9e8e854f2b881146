"""Anthropic Messages on the wire: ``POST /v1/messages``, as JSON or as a server-sent event stream."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from otel_prompt_canary.demo._wire import Answer, ApiError, JsonBody, new_id, sse, text_of, text_pieces
from otel_prompt_canary.demo.behaviour import ModelRequest

__all__ = ["message_body", "message_events", "parse_messages_request"]

_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}


def parse_messages_request(body: JsonBody) -> ModelRequest:
    """The neutral view of a Messages request, or :class:`ApiError` 400."""
    for name in ("model", "max_tokens", "messages"):
        if name not in body:
            raise ApiError(400, f"{name}: Field required")
    model, max_tokens, messages = body["model"], body["max_tokens"], body["messages"]
    if not isinstance(model, str) or not model:
        raise ApiError(400, "model: Input should be a valid string")
    if not isinstance(max_tokens, int) or max_tokens < 1:
        raise ApiError(400, "max_tokens: Input should be greater than or equal to 1")
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "messages: at least one message is required")
    system = text_of(body.get("system"))
    pairs = tuple(
        (str(m.get("role", "")), text_of(m.get("content"))) for m in messages if isinstance(m, Mapping)
    )
    if system:
        pairs = (("system", system), *pairs)
    output_config = body.get("output_config")
    fmt = output_config.get("format") if isinstance(output_config, Mapping) else None
    schema = None
    if isinstance(fmt, Mapping) and fmt.get("type") == "json_schema":
        schema = fmt.get("schema") or {}
    tools = body.get("tools")
    return ModelRequest(
        api="messages",
        model=model,
        system=system,
        user=next((text for role, text in reversed(pairs) if role == "user"), ""),
        messages=pairs,
        wants_json=schema is not None,
        json_schema=schema,
        tools=tuple(
            str(t["name"])
            for t in (tools if isinstance(tools, list) else [])
            if isinstance(t, Mapping) and "name" in t
        ),
        max_tokens=max_tokens,
        stream=body.get("stream") is True,
        body=body,
    )


def _content(answer: Answer) -> list[tuple[dict[str, Any], str]]:
    """Each content block with the text a stream delivers for it (its text or its input as JSON)."""
    reply = answer.reply
    content: list[tuple[dict[str, Any], str]] = []
    if reply.text or not reply.tool_calls:
        content.append(({"type": "text", "text": reply.text, "citations": None}, reply.text))
    for call in reply.tool_calls:
        block = {
            "type": "tool_use",
            "id": call.id or new_id("toolu_"),
            "name": call.name,
            "input": dict(call.arguments),
        }
        content.append((block, call.arguments_json))
    return content


def _message(answer: Answer, request: ModelRequest, message_id: str, *, done: bool) -> dict[str, Any]:
    reason = _STOP_REASONS[answer.reply.finish_reason]
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": request.model,
        "content": [block for block, _ in _content(answer)] if done else [],
        "stop_reason": reason if done else None,
        "stop_sequence": None,
        "stop_details": _stop_details(reason) if done else None,
        "usage": {
            "input_tokens": answer.input_tokens,
            "output_tokens": answer.output_tokens if done else 1,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "service_tier": "standard",
        },
    }


def _stop_details(reason: str) -> dict[str, Any] | None:
    if reason != "refusal":
        return None
    return {"type": "refusal", "category": None, "explanation": None}


def message_body(answer: Answer, request: ModelRequest) -> dict[str, Any]:
    """A ``message`` object."""
    return _message(answer, request, new_id("msg_"), done=True)


def message_events(answer: Answer, request: ModelRequest) -> list[bytes]:
    """``message_start``, a ``ping``, per content block ``content_block_start``, its deltas
    (``text_delta`` or ``input_json_delta``) and ``content_block_stop``, then ``message_delta``
    (stop reason, cumulative output tokens) and ``message_stop``.
    """
    size = answer.reply.chunk_chars
    events: list[bytes] = []

    def emit(kind: str, **fields: Any) -> None:
        events.append(sse({"type": kind, **fields}, event=kind))

    emit("message_start", message=_message(answer, request, new_id("msg_"), done=False))
    for index, (block, streamed) in enumerate(_content(answer)):
        if block["type"] == "text":
            emit("content_block_start", index=index, content_block={**block, "text": ""})
            deltas = [{"type": "text_delta", "text": piece} for piece in text_pieces(streamed, size)]
        else:
            emit("content_block_start", index=index, content_block={**block, "input": {}})
            deltas = [
                {"type": "input_json_delta", "partial_json": piece} for piece in text_pieces(streamed, size)
            ]
        if index == 0:
            emit("ping")
        for delta in deltas:
            emit("content_block_delta", index=index, delta=delta)
        emit("content_block_stop", index=index)
    reason = _STOP_REASONS[answer.reply.finish_reason]
    emit(
        "message_delta",
        delta={"stop_reason": reason, "stop_sequence": None, "stop_details": _stop_details(reason)},
        usage={"output_tokens": answer.output_tokens},
    )
    emit("message_stop")
    return events
