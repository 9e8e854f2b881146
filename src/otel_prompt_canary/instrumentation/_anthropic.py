"""Pure extraction for the Anthropic Messages API: request attributes, responses, stream events."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from otel_prompt_canary import names
from otel_prompt_canary.instrumentation._call import ApiBase, CallState, RequestView
from otel_prompt_canary.instrumentation.utils import as_float, as_int, as_str, field, server_attributes
from otel_prompt_canary.scoring import LLMResponse, ToolCall

__all__ = ["MessagesApi", "MessagesStreamAccumulator"]

_END_EVENT: Final = "message_stop"


def _system_blocks(system: object) -> list[str]:
    if isinstance(system, str):
        return [system] if system else []
    if isinstance(system, Sequence) and not isinstance(system, bytes | bytearray):
        texts = [as_str(field(block, "text")) for block in system]
        return [t for t in texts if t]
    return []


def _output_format(kwargs: Mapping[str, Any]) -> str | None:
    """``json_schema`` when the request asks for structured output (``output_config`` or ``parse``)."""
    if isinstance(kwargs.get("output_format"), type):
        return "json_schema"
    config = kwargs.get("output_config")
    kind = field(field(config, "format"), "type") if config is not None else None
    return "json_schema" if kind == "json_schema" else None


class MessagesApi(ApiBase):
    """``messages.create``, ``stream`` and ``parse``, and their ``beta.messages`` twins (sync and async)."""

    provider = "anthropic"
    operation = "chat"

    def request(self, kwargs: Mapping[str, Any], instance: object) -> RequestView:
        attributes = server_attributes(instance)
        model = as_str(kwargs.get("model"))
        if model is not None:
            attributes[names.REQUEST_MODEL] = model
        max_tokens = as_int(kwargs.get("max_tokens"))
        if max_tokens is not None:
            attributes[names.REQUEST_MAX_TOKENS] = max_tokens
        for key, name in (("temperature", names.REQUEST_TEMPERATURE), ("top_p", names.REQUEST_TOP_P)):
            value = as_float(kwargs.get(key))
            if value is not None:
                attributes[name] = value
        top_k = as_int(kwargs.get("top_k"))
        if top_k is not None:
            attributes[names.REQUEST_TOP_K] = top_k
        stop = kwargs.get("stop_sequences")
        if isinstance(stop, list) and all(isinstance(s, str) for s in stop):
            attributes[names.REQUEST_STOP_SEQUENCES] = stop
        stream = kwargs.get("stream") is True
        if stream:
            attributes[names.REQUEST_STREAM] = True
        messages = kwargs.get("messages")
        system = _system_blocks(kwargs.get("system"))
        response_format = _output_format(kwargs)
        if response_format is not None:
            attributes[names.OUTPUT_TYPE] = "json"
        return RequestView(
            model=model,
            attributes=attributes,
            stream=stream,
            request_messages=messages if isinstance(messages, list | tuple) else (),
            instructions="\n".join(system) if system else None,
            response_format=response_format,
        )

    def system_texts(self, kwargs: Mapping[str, Any]) -> tuple[str, ...]:
        blocks = _system_blocks(kwargs.get("system"))
        if len(blocks) > 1:
            return ("\n".join(blocks), *blocks)
        return tuple(blocks)

    def rewrite(self, kwargs: Mapping[str, Any], old: str, new: str) -> dict[str, Any] | None:
        system = kwargs.get("system")
        if system == old:
            return {**kwargs, "system": new}
        if isinstance(system, list):
            for index, block in enumerate(system):
                if isinstance(block, Mapping) and block.get("text") == old:
                    blocks = list(system)
                    blocks[index] = {**block, "text": new}
                    return {**kwargs, "system": blocks}
        return None

    def response(self, result: object, call: CallState) -> LLMResponse | None:
        if field(result, "type") != "message" or field(result, "role") != "assistant":
            return None
        texts: list[str] = []
        tools: list[ToolCall] = []
        content = field(result, "content")
        if isinstance(content, Sequence):
            for block in content:
                kind = field(block, "type")
                if kind == "text":
                    texts.append(as_str(field(block, "text")) or "")
                elif kind == "tool_use":
                    name = as_str(field(block, "name"))
                    if name is not None:
                        arguments = field(block, "input")
                        tools.append(
                            ToolCall(
                                name,
                                arguments if isinstance(arguments, Mapping) else {},
                                as_str(field(block, "id")),
                            )
                        )
        reason = as_str(field(result, "stop_reason"))
        usage = field(result, "usage")
        return call.llm_response(
            output_text="".join(texts),
            tool_calls=tuple(tools),
            finish_reasons=(reason,) if reason else (),
            input_tokens=as_int(field(usage, "input_tokens")),
            output_tokens=as_int(field(usage, "output_tokens")),
            model=as_str(field(result, "model")),
            response_id=as_str(field(result, "id")),
        )

    def accumulator(self) -> MessagesStreamAccumulator:
        return MessagesStreamAccumulator()


class MessagesStreamAccumulator:
    """Raw message stream events -> one response; ``message_stop`` is the end event."""

    __slots__ = ("_blocks", "_id", "_input", "_model", "_output", "_reason")

    def __init__(self) -> None:
        self._id: str | None = None
        self._model: str | None = None
        self._input: int | None = None
        self._output: int | None = None
        self._reason: str | None = None
        self._blocks: dict[int, list[Any]] = {}

    def add(self, item: object) -> bool:
        kind = field(item, "type")
        if kind == "content_block_delta":
            delta = field(item, "delta")
            block = self._blocks.get(as_int(field(item, "index")) or 0)
            if block is not None:
                piece = as_str(field(delta, "text")) or as_str(field(delta, "partial_json"))
                if piece:
                    block[3].append(piece)
            return False
        if kind == _END_EVENT:
            return True
        if kind == "message_start":
            message = field(item, "message")
            self._id = as_str(field(message, "id"))
            self._model = as_str(field(message, "model"))
            self._input = as_int(field(field(message, "usage"), "input_tokens"))
        elif kind == "content_block_start":
            block = field(item, "content_block")
            self._blocks[as_int(field(item, "index")) or 0] = [
                field(block, "type"),
                as_str(field(block, "name")),
                as_str(field(block, "id")),
                [as_str(field(block, "text")) or ""],
            ]
        elif kind == "message_delta":
            self._reason = as_str(field(field(item, "delta"), "stop_reason")) or self._reason
            output = as_int(field(field(item, "usage"), "output_tokens"))
            if output is not None:
                self._output = output
        return False

    def response(self, call: CallState) -> LLMResponse:
        texts: list[str] = []
        tools: list[ToolCall] = []
        for _, (kind, name, block_id, pieces) in sorted(self._blocks.items()):
            if kind == "text":
                texts.append("".join(pieces))
            elif kind == "tool_use" and name is not None:
                tools.append(ToolCall(name, "".join(pieces) or "{}", block_id))
        return call.llm_response(
            output_text="".join(texts),
            tool_calls=tuple(tools),
            finish_reasons=(self._reason,) if self._reason else (),
            input_tokens=self._input,
            output_tokens=self._output,
            model=self._model,
            response_id=self._id,
        )
