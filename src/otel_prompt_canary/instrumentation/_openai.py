"""Pure extraction for the OpenAI APIs: request attributes, response views, stream accumulators.

Everything reads defensively, with the helpers of :mod:`~otel_prompt_canary.instrumentation.utils`:
a field the installed SDK version lacks, or a value of an unexpected type, yields nothing rather
than an exception. The same readers serve the SDK patches (pydantic objects) and the HTTP path
(decoded JSON), since :func:`~otel_prompt_canary.instrumentation.utils.field` reads attributes and
mapping keys alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from opentelemetry.util.types import AttributeValue

from otel_prompt_canary import names
from otel_prompt_canary.instrumentation._call import ApiBase, CallState, RequestView
from otel_prompt_canary.instrumentation.utils import as_float, as_int, as_str, field, server_attributes
from otel_prompt_canary.scoring import LLMResponse, ToolCall

__all__ = ["ChatCompletionsApi", "CompletionsApi", "ResponsesApi"]

_SYSTEM_ROLES: Final = ("system", "developer")
_JSON_FORMATS: Final = ("json_object", "json_schema")


def text_of(content: object) -> str | None:
    """The text of a message content: a string, or the text parts of a list joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence) and not isinstance(content, bytes | bytearray):
        parts = [as_str(field(part, "text")) for part in content]
        texts = [p for p in parts if p is not None]
        return "\n".join(texts) if texts else None
    return None


def _request_format(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, type):  # parse(response_format=SomeModel)
        return "json_schema"
    return as_str(field(value, "type"))


#: Request parameters read by :func:`_common_request` beyond the model (the usual call has none).
_COMMON_PARAMETERS: Final = frozenset({"temperature", "top_p", "stream"})


def _common_request(kwargs: Mapping[str, Any], instance: object) -> dict[str, AttributeValue]:
    attributes = server_attributes(instance)
    model = as_str(kwargs.get("model"))
    if model is not None:
        attributes[names.REQUEST_MODEL] = model
    if _COMMON_PARAMETERS.isdisjoint(kwargs):  # the usual call: no sampling parameter at all
        return attributes
    temperature = as_float(kwargs.get("temperature"))
    if temperature is not None:
        attributes[names.REQUEST_TEMPERATURE] = temperature
    top_p = as_float(kwargs.get("top_p"))
    if top_p is not None:
        attributes[names.REQUEST_TOP_P] = top_p
    if kwargs.get("stream") is True:
        attributes[names.REQUEST_STREAM] = True
    return attributes


def _system_texts_of_messages(messages: object) -> tuple[str, ...]:
    if not isinstance(messages, Sequence) or isinstance(messages, str | bytes):
        return ()
    texts: list[str] = []
    for message in messages:
        if field(message, "role") in _SYSTEM_ROLES:
            text = text_of(field(message, "content"))
            if text:
                texts.append(text)
    return tuple(texts)


def _rewrite_messages(messages: object, old: str, new: str) -> list[Any] | None:
    """A copy of ``messages`` with the system/developer text ``old`` replaced by ``new``."""
    if not isinstance(messages, Sequence) or isinstance(messages, str | bytes):
        return None
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping) or message.get("role") not in _SYSTEM_ROLES:
            continue
        content = message.get("content")
        replaced: object = None
        if content == old:
            replaced = new
        elif isinstance(content, list):
            for part_index, part in enumerate(content):
                if isinstance(part, Mapping) and part.get("text") == old:
                    parts = list(content)
                    parts[part_index] = {**part, "text": new}
                    replaced = parts
                    break
        if replaced is not None:
            copy = list(messages)
            copy[index] = {**message, "content": replaced}
            return copy
    return None


#: Chat Completions parameters read by :func:`_chat_parameters`.
_CHAT_PARAMETERS: Final = frozenset(
    {
        "max_completion_tokens",
        "max_tokens",
        "frequency_penalty",
        "presence_penalty",
        "seed",
        "n",
        "stop",
        "response_format",
    }
)


def _chat_parameters(kwargs: Mapping[str, Any], attributes: dict[str, AttributeValue]) -> str | None:
    """Add the Chat Completions parameters' attributes; returns the requested response format."""
    max_tokens = as_int(kwargs.get("max_completion_tokens"))
    if max_tokens is None:
        max_tokens = as_int(kwargs.get("max_tokens"))
    if max_tokens is not None:
        attributes[names.REQUEST_MAX_TOKENS] = max_tokens
    for key, name in (
        ("frequency_penalty", names.REQUEST_FREQUENCY_PENALTY),
        ("presence_penalty", names.REQUEST_PRESENCE_PENALTY),
    ):
        value = as_float(kwargs.get(key))
        if value is not None:
            attributes[name] = value
    seed = as_int(kwargs.get("seed"))
    if seed is not None:
        attributes[names.REQUEST_SEED] = seed
    n = as_int(kwargs.get("n"))
    if n is not None and n != 1:
        attributes[names.REQUEST_CHOICE_COUNT] = n
    stop = kwargs.get("stop")
    if isinstance(stop, str):
        attributes[names.REQUEST_STOP_SEQUENCES] = [stop]
    elif isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        attributes[names.REQUEST_STOP_SEQUENCES] = stop
    response_format = _request_format(kwargs.get("response_format"))
    if response_format is not None:
        attributes[names.OUTPUT_TYPE] = "json" if response_format in _JSON_FORMATS else "text"
    return response_format


class ChatCompletionsApi(ApiBase):
    """``chat.completions.create`` / ``parse`` (and the ``stream`` helper, which calls ``create``)."""

    provider = "openai"
    operation = "chat"

    def request(self, kwargs: Mapping[str, Any], instance: object) -> RequestView:
        attributes = _common_request(kwargs, instance)
        response_format = None
        if not _CHAT_PARAMETERS.isdisjoint(kwargs):
            response_format = _chat_parameters(kwargs, attributes)
        messages = kwargs.get("messages")
        return RequestView(
            model=as_str(kwargs.get("model")),
            attributes=attributes,
            stream=kwargs.get("stream") is True,
            request_messages=messages if isinstance(messages, list | tuple) else (),
            response_format=response_format,
        )

    def system_texts(self, kwargs: Mapping[str, Any]) -> tuple[str, ...]:
        return _system_texts_of_messages(kwargs.get("messages"))

    def rewrite(self, kwargs: Mapping[str, Any], old: str, new: str) -> dict[str, Any] | None:
        messages = _rewrite_messages(kwargs.get("messages"), old, new)
        return None if messages is None else {**kwargs, "messages": messages}

    def response(self, result: object, call: CallState) -> LLMResponse | None:
        choices = field(result, "choices")
        if not isinstance(choices, Sequence) or field(result, "object") not in (None, "chat.completion"):
            return None
        text = ""
        refusal = None
        tool_calls: tuple[ToolCall, ...] = ()
        finish: list[str] = []
        for index, choice in enumerate(choices):
            reason = as_str(field(choice, "finish_reason"))
            if reason is not None:
                finish.append(reason)
            if index == 0:
                message = field(choice, "message")
                text = as_str(field(message, "content")) or ""
                refusal = as_str(field(message, "refusal"))
                tool_calls = _tool_calls(field(message, "tool_calls"))
        usage = field(result, "usage")
        return call.llm_response(
            output_text=text,
            tool_calls=tool_calls,
            finish_reasons=tuple(finish),
            input_tokens=as_int(field(usage, "prompt_tokens")),
            output_tokens=as_int(field(usage, "completion_tokens")),
            model=as_str(field(result, "model")),
            response_id=as_str(field(result, "id")),
            refusal=refusal,
        )

    def accumulator(self) -> ChatStreamAccumulator:
        return ChatStreamAccumulator()


def _tool_calls(calls: object) -> tuple[ToolCall, ...]:
    if not isinstance(calls, Sequence):
        return ()
    found: list[ToolCall] = []
    for call in calls:
        function = field(call, "function")
        name = as_str(field(function, "name"))
        if name is not None:
            arguments = field(function, "arguments")
            found.append(
                ToolCall(name, arguments if isinstance(arguments, str) else "", as_str(field(call, "id")))
            )
    return tuple(found)


class ChatStreamAccumulator:
    """Chat completion chunks -> one response (first choice's text and tool calls, every finish)."""

    __slots__ = ("_finish", "_id", "_input", "_model", "_output", "_refusal", "_text", "_tools")

    def __init__(self) -> None:
        self._id: str | None = None
        self._model: str | None = None
        self._text: list[str] = []
        self._refusal: list[str] = []
        self._tools: dict[int, list[Any]] = {}
        self._finish: dict[int, str] = {}
        self._input: int | None = None
        self._output: int | None = None

    def add(self, item: object) -> bool:
        if self._id is None:
            self._id = as_str(field(item, "id"))
            self._model = as_str(field(item, "model"))
        choices = field(item, "choices")
        if isinstance(choices, Sequence):
            for choice in choices:
                index = as_int(field(choice, "index")) or 0
                reason = as_str(field(choice, "finish_reason"))
                if reason is not None:
                    self._finish[index] = reason
                if index != 0:
                    continue
                delta = field(choice, "delta")
                content = as_str(field(delta, "content"))
                if content:
                    self._text.append(content)
                refusal = as_str(field(delta, "refusal"))
                if refusal:
                    self._refusal.append(refusal)
                calls = field(delta, "tool_calls")
                if isinstance(calls, Sequence):
                    for call in calls:
                        self._tool_delta(call)
        usage = field(item, "usage")
        if usage is not None:
            self._input = as_int(field(usage, "prompt_tokens"))
            self._output = as_int(field(usage, "completion_tokens"))
        return False

    def _tool_delta(self, call: object) -> None:
        index = as_int(field(call, "index")) or 0
        slot = self._tools.setdefault(index, [None, None, []])
        call_id = as_str(field(call, "id"))
        if call_id:
            slot[0] = call_id
        function = field(call, "function")
        name = as_str(field(function, "name"))
        if name:
            slot[1] = name
        arguments = as_str(field(function, "arguments"))
        if arguments:
            slot[2].append(arguments)

    def response(self, call: CallState) -> LLMResponse:
        tools = tuple(
            ToolCall(slot[1], "".join(slot[2]), slot[0])
            for _, slot in sorted(self._tools.items())
            if slot[1] is not None
        )
        return call.llm_response(
            output_text="".join(self._text),
            tool_calls=tools,
            finish_reasons=tuple(reason for _, reason in sorted(self._finish.items())),
            input_tokens=self._input,
            output_tokens=self._output,
            model=self._model,
            response_id=self._id,
            refusal="".join(self._refusal) or None,
        )


# -- Responses API --------------------------------------------------------------------------------

_END_EVENTS: Final = frozenset({"response.completed", "response.incomplete", "response.failed"})


def _responses_format(kwargs: Mapping[str, Any]) -> str | None:
    if kwargs.get("text_format") is not None and isinstance(kwargs.get("text_format"), type):
        return "json_schema"
    text = kwargs.get("text")
    return as_str(field(field(text, "format"), "type")) if text is not None else None


class ResponsesApi(ApiBase):
    """``responses.create`` / ``parse`` (and the ``stream`` helper, which calls ``create``)."""

    provider = "openai"
    operation = "chat"

    def request(self, kwargs: Mapping[str, Any], instance: object) -> RequestView:
        attributes = _common_request(kwargs, instance)
        max_tokens = as_int(kwargs.get("max_output_tokens"))
        if max_tokens is not None:
            attributes[names.REQUEST_MAX_TOKENS] = max_tokens
        response_format = _responses_format(kwargs)
        if response_format is not None:
            attributes[names.OUTPUT_TYPE] = "json" if response_format in _JSON_FORMATS else "text"
        items = kwargs.get("input")
        messages: Sequence[Mapping[str, Any]] = ()
        if isinstance(items, str):
            messages = ({"role": "user", "content": items},)
        elif isinstance(items, list | tuple):
            messages = items
        return RequestView(
            model=as_str(kwargs.get("model")),
            attributes=attributes,
            stream=kwargs.get("stream") is True,
            request_messages=messages,
            instructions=as_str(kwargs.get("instructions")),
            response_format=response_format,
        )

    def system_texts(self, kwargs: Mapping[str, Any]) -> tuple[str, ...]:
        instructions = as_str(kwargs.get("instructions"))
        texts = _system_texts_of_messages(kwargs.get("input"))
        return (instructions, *texts) if instructions else texts

    def rewrite(self, kwargs: Mapping[str, Any], old: str, new: str) -> dict[str, Any] | None:
        if kwargs.get("instructions") == old:
            return {**kwargs, "instructions": new}
        items = _rewrite_messages(kwargs.get("input"), old, new)
        return None if items is None else {**kwargs, "input": items}

    def response(self, result: object, call: CallState) -> LLMResponse | None:
        if field(result, "object") != "response":
            return None
        return responses_view(result, call)

    def accumulator(self) -> ResponsesStreamAccumulator:
        return ResponsesStreamAccumulator()


def responses_view(result: object, call: CallState) -> LLMResponse:
    """The view of a Responses API ``response`` object (SDK model or decoded JSON)."""
    texts: list[str] = []
    tools: list[ToolCall] = []
    refusal = None
    output = field(result, "output")
    if isinstance(output, Sequence):
        for item in output:
            kind = field(item, "type")
            if kind == "message":
                content = field(item, "content")
                if isinstance(content, Sequence):
                    for part in content:
                        part_type = field(part, "type")
                        if part_type == "output_text":
                            texts.append(as_str(field(part, "text")) or "")
                        elif part_type == "refusal":
                            refusal = as_str(field(part, "refusal"))
            elif kind == "function_call":
                name = as_str(field(item, "name"))
                if name is not None:
                    arguments = field(item, "arguments")
                    tools.append(
                        ToolCall(
                            name,
                            arguments if isinstance(arguments, str) else "",
                            as_str(field(item, "call_id")),
                        )
                    )
    status = field(result, "status")
    if status == "incomplete":
        reason = as_str(field(field(result, "incomplete_details"), "reason")) or "incomplete"
    elif status == "failed":
        reason = "error"
    elif tools:
        reason = "tool_calls"
    else:
        reason = "stop" if status == "completed" else (as_str(status) or "")
    usage = field(result, "usage")
    return call.llm_response(
        output_text="".join(texts),
        tool_calls=tuple(tools),
        finish_reasons=(reason,) if reason else (),
        input_tokens=as_int(field(usage, "input_tokens")),
        output_tokens=as_int(field(usage, "output_tokens")),
        model=as_str(field(result, "model")),
        response_id=as_str(field(result, "id")),
        refusal=refusal,
    )


class ResponsesStreamAccumulator:
    """Responses API events: the final ``response`` object of the end event carries everything."""

    __slots__ = ("_final", "_partial")

    def __init__(self) -> None:
        self._final: object = None
        self._partial: object = None

    def add(self, item: object) -> bool:
        kind = field(item, "type")
        if kind in _END_EVENTS:
            self._final = field(item, "response")
            return True
        if kind == "response.created":
            self._partial = field(item, "response")
        return False

    def response(self, call: CallState) -> LLMResponse:
        final = self._final if self._final is not None else self._partial
        if final is None:
            return call.llm_response()
        return responses_view(final, call)


# -- legacy Completions ---------------------------------------------------------------------------

#: Completions parameters read beyond those of :func:`_common_request`.
_COMPLETION_PARAMETERS: Final = frozenset(
    {"max_tokens", "frequency_penalty", "presence_penalty", "seed", "n", "stop"}
)


class CompletionsApi(ApiBase):
    """The legacy ``completions.create`` (``POST /v1/completions``): a prompt in, text out.

    A prompt has no system text: such calls are tagged under a Selection, never identified (nor
    rewritten) by fingerprint.
    """

    provider = "openai"
    operation = "text_completion"

    def request(self, kwargs: Mapping[str, Any], instance: object) -> RequestView:
        attributes = _common_request(kwargs, instance)
        if not _COMPLETION_PARAMETERS.isdisjoint(kwargs):
            _chat_parameters(kwargs, attributes)
        prompt = kwargs.get("prompt")
        messages: Sequence[Mapping[str, Any]] = ()
        if isinstance(prompt, str):
            messages = ({"role": "user", "content": prompt},)
        return RequestView(
            model=as_str(kwargs.get("model")),
            attributes=attributes,
            stream=kwargs.get("stream") is True,
            request_messages=messages,
        )

    def system_texts(self, kwargs: Mapping[str, Any]) -> tuple[str, ...]:
        return ()

    def rewrite(self, kwargs: Mapping[str, Any], old: str, new: str) -> dict[str, Any] | None:
        return None

    def response(self, result: object, call: CallState) -> LLMResponse | None:
        choices = field(result, "choices")
        if not isinstance(choices, Sequence) or field(result, "object") != "text_completion":
            return None
        accumulator = CompletionStreamAccumulator()
        accumulator.add(result)
        return accumulator.response(call)

    def accumulator(self) -> CompletionStreamAccumulator:
        return CompletionStreamAccumulator()


class CompletionStreamAccumulator:
    """Completion chunks (or one whole completion) -> one response: the first choice's text."""

    __slots__ = ("_finish", "_id", "_input", "_model", "_output", "_text")

    def __init__(self) -> None:
        self._id: str | None = None
        self._model: str | None = None
        self._text: list[str] = []
        self._finish: dict[int, str] = {}
        self._input: int | None = None
        self._output: int | None = None

    def add(self, item: object) -> bool:
        if self._id is None:
            self._id = as_str(field(item, "id"))
            self._model = as_str(field(item, "model"))
        choices = field(item, "choices")
        if isinstance(choices, Sequence):
            for choice in choices:
                index = as_int(field(choice, "index")) or 0
                reason = as_str(field(choice, "finish_reason"))
                if reason is not None:
                    self._finish[index] = reason
                if index == 0:
                    text = as_str(field(choice, "text"))
                    if text:
                        self._text.append(text)
        usage = field(item, "usage")
        if usage is not None:
            self._input = as_int(field(usage, "prompt_tokens"))
            self._output = as_int(field(usage, "completion_tokens"))
        return False

    def response(self, call: CallState) -> LLMResponse:
        return call.llm_response(
            output_text="".join(self._text),
            finish_reasons=tuple(reason for _, reason in sorted(self._finish.items())),
            input_tokens=self._input,
            output_tokens=self._output,
            model=self._model,
            response_id=self._id,
        )
