"""OpenAI Responses on the wire: ``POST /v1/responses``, as JSON or as a typed event stream."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from otel_prompt_canary.demo._wire import Answer, ApiError, JsonBody, new_id, sse, text_of, text_pieces
from otel_prompt_canary.demo.behaviour import ModelRequest

__all__ = ["parse_responses_request", "response_body", "response_events"]

_SYSTEM_ROLES = ("system", "developer")
_INCOMPLETE_REASONS = {"length": "max_output_tokens", "content_filter": "content_filter"}


def parse_responses_request(body: JsonBody) -> ModelRequest:
    """The neutral view of a Responses request, or :class:`ApiError` 400."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ApiError(400, "Missing required parameter: 'model'.", param="model")
    raw_input = body.get("input")
    if raw_input is None:
        raise ApiError(400, "Missing required parameter: 'input'.", param="input")
    instructions = body.get("instructions")
    pairs = _input_messages(raw_input)
    if isinstance(instructions, str) and instructions:
        pairs = (("system", instructions), *pairs)
    text_config = body.get("text")
    fmt = text_config.get("format") if isinstance(text_config, Mapping) else None
    format_type = fmt.get("type") if isinstance(fmt, Mapping) else None
    schema = None
    if isinstance(fmt, Mapping) and format_type == "json_schema":
        schema = fmt.get("schema") or {}
    tools = body.get("tools")
    max_tokens = body.get("max_output_tokens")
    return ModelRequest(
        api="responses",
        model=model,
        system="\n".join(text for role, text in pairs if role in _SYSTEM_ROLES),
        user=next((text for role, text in reversed(pairs) if role == "user"), ""),
        messages=pairs,
        wants_json=format_type in ("json_object", "json_schema"),
        json_schema=schema,
        tools=tuple(
            str(t.get("name", ""))
            for t in (tools if isinstance(tools, list) else [])
            if isinstance(t, Mapping) and t.get("type") == "function"
        ),
        max_tokens=max_tokens if isinstance(max_tokens, int) else None,
        stream=body.get("stream") is True,
        body=body,
    )


def _input_messages(raw_input: Any) -> tuple[tuple[str, str], ...]:
    if isinstance(raw_input, str):
        return (("user", raw_input),)
    pairs: list[tuple[str, str]] = []
    for item in raw_input if isinstance(raw_input, list) else []:
        if not isinstance(item, Mapping):
            continue
        kind = item.get("type", "message")
        if kind == "message" and "role" in item:
            pairs.append((str(item["role"]), text_of(item.get("content"))))
        elif kind == "function_call_output":
            pairs.append(("tool", text_of(item.get("output"))))
        elif kind == "function_call":
            pairs.append(("assistant", f"{item.get('name', '')}({item.get('arguments', '')})"))
    return tuple(pairs)


class _Output:
    """The output items of one answer, with stable ids for the JSON body and the stream alike."""

    def __init__(self, answer: Answer) -> None:
        reply = answer.reply
        self.status = "completed" if reply.finish_reason in ("stop", "tool_calls") else "incomplete"
        self.message_id = new_id("msg_") if reply.text or not reply.tool_calls else None
        self.text = reply.text
        self.calls = [(new_id("fc_"), call.id or new_id("call_"), call) for call in reply.tool_calls]

    def message(self, *, done: bool) -> dict[str, Any]:
        return {
            "id": self.message_id,
            "type": "message",
            "status": self.status if done else "in_progress",
            "role": "assistant",
            "content": [self.text_part()] if done else [],
        }

    def text_part(self, text: str | None = None) -> dict[str, Any]:
        return {
            "type": "output_text",
            "text": self.text if text is None else text,
            "annotations": [],
            "logprobs": [],
        }

    def function_call(self, index: int, *, done: bool) -> dict[str, Any]:
        item_id, call_id, call = self.calls[index]
        return {
            "id": item_id,
            "type": "function_call",
            "status": self.status if done else "in_progress",
            "call_id": call_id,
            "name": call.name,
            "arguments": call.arguments_json if done else "",
        }

    def items(self) -> list[dict[str, Any]]:
        items = [self.message(done=True)] if self.message_id else []
        return items + [self.function_call(i, done=True) for i in range(len(self.calls))]


def _response(
    answer: Answer, request: ModelRequest, response_id: str, created: int, output: _Output, *, done: bool
) -> dict[str, Any]:
    reply = answer.reply
    body = request.body
    reason = _INCOMPLETE_REASONS.get(reply.finish_reason)
    usage = {
        "input_tokens": answer.input_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": answer.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": answer.total_tokens,
    }
    return {
        "id": response_id,
        "object": "response",
        "created_at": created,
        "completed_at": int(time.time()) if done and output.status == "completed" else None,
        "status": output.status if done else "in_progress",
        "error": None,
        "incomplete_details": {"reason": reason} if done and reason else None,
        "instructions": body.get("instructions"),
        "max_output_tokens": request.max_tokens,
        "model": request.model,
        "output": output.items() if done else [],
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation", "disabled"),
        "metadata": body.get("metadata") or {},
        "usage": usage if done else None,
    }


def response_body(answer: Answer, request: ModelRequest) -> dict[str, Any]:
    """A ``response`` object."""
    return _response(answer, request, new_id("resp_"), int(time.time()), _Output(answer), done=True)


def response_events(answer: Answer, request: ModelRequest) -> list[bytes]:
    """The typed events of ``responses.create(stream=True)``, numbered by ``sequence_number``.

    ``response.created`` and ``response.in_progress``; per output item ``response.output_item.added``,
    its content (``response.content_part.added``, ``response.output_text.delta``..., ``.done``, or
    ``response.function_call_arguments.delta``..., ``.done``) and ``response.output_item.done``; then
    ``response.completed``, or ``response.incomplete`` when the answer was cut or filtered.
    """
    output = _Output(answer)
    response_id, created = new_id("resp_"), int(time.time())
    size = answer.reply.chunk_chars
    events: list[tuple[str, dict[str, Any]]] = []

    def add(kind: str, **fields: Any) -> None:
        events.append((kind, fields))

    pending = _response(answer, request, response_id, created, output, done=False)
    add("response.created", response=pending)
    add("response.in_progress", response=pending)
    index = 0
    if output.message_id is not None:
        ids = {"item_id": output.message_id, "output_index": index}
        add("response.output_item.added", output_index=index, item=output.message(done=False))
        add("response.content_part.added", **ids, content_index=0, part=output.text_part(""))
        for piece in text_pieces(output.text, size) if output.text else []:
            add("response.output_text.delta", **ids, content_index=0, delta=piece, logprobs=[])
        add("response.output_text.done", **ids, content_index=0, text=output.text, logprobs=[])
        add("response.content_part.done", **ids, content_index=0, part=output.text_part())
        add("response.output_item.done", output_index=index, item=output.message(done=True))
        index += 1
    for call_index in range(len(output.calls)):
        item = output.function_call(call_index, done=True)
        ids = {"item_id": item["id"], "output_index": index}
        add(
            "response.output_item.added",
            output_index=index,
            item=output.function_call(call_index, done=False),
        )
        for piece in text_pieces(item["arguments"], size):
            add("response.function_call_arguments.delta", **ids, delta=piece)
        add("response.function_call_arguments.done", **ids, arguments=item["arguments"])
        add("response.output_item.done", output_index=index, item=item)
        index += 1
    final = _response(answer, request, response_id, created, output, done=True)
    add(f"response.{'completed' if output.status == 'completed' else 'incomplete'}", response=final)
    return [
        sse({"type": kind, "sequence_number": number, **fields}, event=kind)
        for number, (kind, fields) in enumerate(events)
    ]
