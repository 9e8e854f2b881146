"""OpenAI legacy Completions on the wire: ``POST /v1/completions``, as JSON or as a chunk stream."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from otel_prompt_canary.demo._wire import Answer, ApiError, JsonBody, new_id, sse, text_pieces
from otel_prompt_canary.demo.behaviour import ModelRequest

__all__ = ["parse_completions_request", "text_completion_body", "text_completion_events"]


def parse_completions_request(body: JsonBody) -> ModelRequest:
    """The neutral view of a Completions request (one string prompt), or :class:`ApiError` 400."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ApiError(400, "you must provide a model parameter", param="model")
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise ApiError(400, "the simulated model takes one string 'prompt'", param="prompt")
    max_tokens = body.get("max_tokens")
    return ModelRequest(
        api="completions",
        model=model,
        user=prompt,
        messages=(("user", prompt),),
        max_tokens=max_tokens if isinstance(max_tokens, int) else None,
        stream=body.get("stream") is True,
        body=body,
    )


def _usage(answer: Answer) -> dict[str, Any]:
    return {
        "prompt_tokens": answer.input_tokens,
        "completion_tokens": answer.output_tokens,
        "total_tokens": answer.total_tokens,
    }


def text_completion_body(answer: Answer, request: ModelRequest) -> dict[str, Any]:
    """A ``text_completion`` object."""
    reply = answer.reply
    return {
        "id": new_id("cmpl-"),
        "object": "text_completion",
        "created": int(time.time()),
        "model": request.model,
        "choices": [{"index": 0, "text": reply.text, "logprobs": None, "finish_reason": reply.finish_reason}],
        "usage": _usage(answer),
        "system_fingerprint": None,
    }


def text_completion_events(answer: Answer, request: ModelRequest) -> list[bytes]:
    """``text_completion`` chunks (text deltas, then one with the finish reason), ending with
    ``data: [DONE]``; with ``stream_options.include_usage``, a last chunk with no choices and the usage."""
    options = request.body.get("stream_options")
    with_usage = isinstance(options, Mapping) and options.get("include_usage") is True
    head = {"id": new_id("cmpl-"), "object": "text_completion", "created": int(time.time())}
    head["model"] = request.model

    def chunk(text: str, finish: str | None = None) -> bytes:
        choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish}
        return sse({**head, "choices": [choice]})

    reply = answer.reply
    events = [chunk(piece) for piece in text_pieces(reply.text, reply.chunk_chars) if piece]
    events.append(chunk("", reply.finish_reason))
    if with_usage:
        events.append(sse({**head, "choices": [], "usage": _usage(answer)}))
    events.append(sse("[DONE]"))
    return events
