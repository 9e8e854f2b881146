"""What the simulated LLM answers: programmable, deterministic replies chosen by rule.

A :class:`Behaviour` is handed to the simulated LLM's app factory and may be changed while the server
runs (it is thread-safe). For every call the server builds a :class:`ModelRequest`, a provider-neutral
view of the request (system prompt or instructions, last user message, requested JSON format, tools,
token limit), and asks the behaviour for a :class:`Reply`: the most recently added matching
:class:`Rule` answers, else the default responder.

A reply is text and/or tool calls, with a finish reason, and can also force an HTTP error, add latency,
override token counts or drop the connection mid-way. Finish reasons use one vocabulary for every API
and are translated on the wire:

=================  =====================  ==================  ============================================
``Reply.finish``   Chat Completions       Anthropic Messages  Responses
=================  =====================  ==================  ============================================
``stop``           ``stop``               ``end_turn``        ``completed``
``length``         ``length``             ``max_tokens``      ``incomplete`` (``max_output_tokens``)
``tool_calls``     ``tool_calls``         ``tool_use``        ``completed`` with ``function_call`` items
``content_filter`` ``content_filter``     ``refusal``         ``incomplete`` (``content_filter``)
=================  =====================  ==================  ============================================

The legacy Completions API (``completions``) uses the Chat Completions finish reasons.

Token counts are approximations (:func:`count_tokens`, about four characters a token), computed once per
reply, so a streamed answer reports the same usage as the same answer in one JSON body.
"""

from __future__ import annotations

import json
import math
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from otel_prompt_canary.demo.schema_example import example_for_schema

__all__ = [
    "API",
    "DEFAULT_MODELS",
    "Behaviour",
    "Finish",
    "ModelRequest",
    "Reply",
    "Responder",
    "Rule",
    "ToolCall",
    "count_tokens",
    "default_responder",
]

#: The APIs the simulated LLM speaks.
API = Literal["chat.completions", "responses", "messages", "completions"]

#: Why the model stopped, in one vocabulary for every API (see the module docstring for the mapping).
Finish = Literal["stop", "length", "tool_calls", "content_filter"]

#: The models ``GET /v1/models`` lists by default (any model name is accepted for generation).
DEFAULT_MODELS: tuple[str, ...] = ("sim-gpt-small", "sim-gpt-large", "sim-claude-small")

#: Characters per token of the approximate tokenizer.
CHARS_PER_TOKEN = 4


def count_tokens(text: str) -> int:
    """Approximate token count of ``text``: one token per four characters, rounded up."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


@dataclass(frozen=True, kw_only=True)
class ToolCall:
    """One call of a function tool, with its arguments as a JSON object."""

    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict)
    #: The call id; the server makes one up when it is None.
    id: str | None = None

    @property
    def arguments_json(self) -> str:
        """The arguments as compact JSON, as they travel on the wire."""
        return json.dumps(self.arguments, separators=(",", ":"))


@dataclass(frozen=True, kw_only=True)
class Reply:
    """What the simulated model answers to one call.

    ``finish`` defaults to ``tool_calls`` when there are tool calls, else ``stop``. When the request
    sets a token limit below the reply's output tokens, the text is cut to the limit and the finish
    reason becomes ``length``.
    """

    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    finish: Finish | None = None
    #: Answer with this HTTP status and the provider's error body instead of a completion.
    error_status: int | None = None
    error_message: str | None = None
    #: Sets the ``x-should-retry`` header on an error (None: let the SDK decide by status).
    retryable: bool | None = None
    #: Seconds the SDK should wait before retrying an error (the ``retry-after-ms`` header).
    retry_after: float | None = None
    #: Seconds to wait before the first byte.
    latency: float = 0.0
    #: Seconds to wait between two stream events.
    chunk_delay: float = 0.0
    #: Characters of text per stream delta.
    chunk_chars: int = 12
    #: Token counts to report instead of the approximations.
    input_tokens: int | None = None
    output_tokens: int | None = None
    #: Drop the connection: after this many events of a stream, or halfway through a JSON body.
    drop_connection_after: int | None = None

    @classmethod
    def json(cls, value: Any, **settings: Any) -> Reply:
        """A reply whose text is ``value`` as compact JSON."""
        return cls(text=json.dumps(value, separators=(",", ":")), **settings)

    @classmethod
    def failure(
        cls,
        status: int,
        message: str | None = None,
        *,
        retryable: bool | None = None,
        retry_after: float | None = None,
    ) -> Reply:
        """A reply that answers with HTTP ``status`` and the provider's error body."""
        return cls(error_status=status, error_message=message, retryable=retryable, retry_after=retry_after)

    @property
    def finish_reason(self) -> Finish:
        """The finish reason, with the default filled in."""
        if self.finish is not None:
            return self.finish
        return "tool_calls" if self.tool_calls else "stop"

    def output_token_count(self) -> int:
        """Output tokens: the override, or the approximate count of text and tool calls."""
        if self.output_tokens is not None:
            return self.output_tokens
        calls = sum(count_tokens(c.name + c.arguments_json) for c in self.tool_calls)
        return count_tokens(self.text) + calls

    def limited_to(self, max_tokens: int | None) -> Reply:
        """This reply cut to ``max_tokens`` output tokens (finish ``length``) when it is longer."""
        if max_tokens is None or self.output_token_count() <= max_tokens:
            return self
        return replace(
            self,
            text=self.text[: max(0, max_tokens) * CHARS_PER_TOKEN],
            tool_calls=(),
            finish="length",
            output_tokens=None if self.output_tokens is None else max_tokens,
        )


@dataclass(frozen=True, kw_only=True)
class ModelRequest:
    """A provider-neutral view of one generation request, as rules and responders see it."""

    api: API
    model: str
    #: System and developer messages, Responses ``instructions`` or Anthropic ``system``, joined.
    system: str = ""
    #: Text of the last user message.
    user: str = ""
    #: Every input message as ``(role, text)``; a system prompt sent apart from the messages
    #: (Responses ``instructions``, Anthropic ``system``) comes first, as role ``system``.
    messages: tuple[tuple[str, str], ...] = ()
    #: True when the caller asked for JSON output (a JSON object or a JSON schema).
    wants_json: bool = False
    #: The JSON schema the caller asked the output to follow, if any.
    json_schema: Mapping[str, Any] | None = None
    #: Names of the function tools offered.
    tools: tuple[str, ...] = ()
    max_tokens: int | None = None
    stream: bool = False
    #: The decoded request body.
    body: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def input_token_count(self) -> int:
        """Approximate input tokens: messages (system prompt included) and tool names."""
        texts = [*(text for _, text in self.messages), *self.tools]
        return sum(count_tokens(t) for t in texts)


#: Anything that turns a request into a reply.
Responder = Callable[[ModelRequest], Reply]


def default_responder(request: ModelRequest) -> Reply:
    """The answer when no rule matches: JSON following the requested schema, or a short text."""
    if request.json_schema is not None:
        return Reply.json(example_for_schema(request.json_schema, text="simulated"))
    if request.wants_json:
        return Reply.json({"answer": f"Simulated answer to: {request.user[:200]}"})
    return Reply(text=f"Simulated answer to: {request.user[:200]}")


@dataclass(frozen=True, kw_only=True)
class Rule:
    """When a request matches every given condition, ``reply`` answers it.

    Text conditions are case-insensitive substrings. ``reply`` is a fixed :class:`Reply` or a
    responder called with the request. ``times`` limits how often the rule applies (e.g. fail once,
    then let the next rule or the default answer).
    """

    reply: Reply | Responder
    system_contains: str | None = None
    user_contains: str | None = None
    api: API | None = None
    model: str | None = None
    when: Callable[[ModelRequest], bool] | None = None
    times: int | None = None

    def matches(self, request: ModelRequest) -> bool:
        """True when ``request`` meets every condition of this rule."""
        if self.api is not None and request.api != self.api:
            return False
        if self.model is not None and request.model != self.model:
            return False
        if not _contains(request.system, self.system_contains):
            return False
        if not _contains(request.user, self.user_contains):
            return False
        return self.when is None or self.when(request)

    def answer(self, request: ModelRequest) -> Reply:
        """The reply of this rule to ``request``."""
        return self.reply if isinstance(self.reply, Reply) else self.reply(request)


def _contains(text: str, needle: str | None) -> bool:
    return needle is None or needle.casefold() in text.casefold()


class _Entry:
    """A rule and how often it has applied."""

    __slots__ = ("rule", "uses")

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.uses = 0

    @property
    def spent(self) -> bool:
        return self.rule.times is not None and self.uses >= self.rule.times


class Behaviour:
    """The simulated LLM's programmable behaviour; safe to change from any thread while it serves.

    ``default`` answers when no rule matches (a fixed reply or a responder). ``api_key``, when set,
    is required on every request (``Authorization: Bearer`` or ``x-api-key``), else the answer is
    401. ``moderation_terms`` maps a moderation category to words that flag an input. The last
    ``history`` requests are kept in :attr:`requests` for tests to inspect.

    Rules and responders run on the server's event loop: keep them quick, and simulate a slow model
    with :attr:`Reply.latency` instead of sleeping.
    """

    def __init__(
        self,
        rules: Iterable[Rule] = (),
        *,
        default: Reply | Responder = default_responder,
        api_key: str | None = None,
        models: Iterable[str] = DEFAULT_MODELS,
        moderation_terms: Mapping[str, Iterable[str]] | None = None,
        history: int = 1000,
    ) -> None:
        self._lock = threading.RLock()
        self._entries = [_Entry(rule) for rule in rules]
        self._default = default
        self._requests: deque[ModelRequest] = deque(maxlen=history)
        self.api_key = api_key
        self.models = tuple(models)
        terms = {"violence": ("kill",), "harassment": ("idiot",)}
        self.moderation_terms = {
            category: tuple(words)
            for category, words in (terms if moderation_terms is None else moderation_terms).items()
        }

    def __repr__(self) -> str:
        with self._lock:
            return f"Behaviour(rules={len(self._entries)}, default={self._default!r})"

    def add(self, rule: Rule) -> Rule:
        """Add ``rule``; it takes precedence over every rule added before it. Returns it."""
        with self._lock:
            self._entries.append(_Entry(rule))
        return rule

    def when(
        self,
        *,
        reply: Reply | Responder,
        system_contains: str | None = None,
        user_contains: str | None = None,
        api: API | None = None,
        model: str | None = None,
        times: int | None = None,
    ) -> Rule:
        """Shorthand for :meth:`add` of a :class:`Rule` built from these arguments."""
        return self.add(
            Rule(
                reply=reply,
                system_contains=system_contains,
                user_contains=user_contains,
                api=api,
                model=model,
                times=times,
            )
        )

    def remove(self, rule: Rule) -> None:
        """Remove ``rule`` (no error when it is not there)."""
        with self._lock:
            self._entries = [e for e in self._entries if e.rule is not rule]

    def clear(self) -> None:
        """Remove every rule and forget recorded requests; the default responder stays."""
        with self._lock:
            self._entries.clear()
            self._requests.clear()

    @property
    def default(self) -> Reply | Responder:
        """The answer given when no rule matches."""
        with self._lock:
            return self._default

    def set_default(self, default: Reply | Responder) -> None:
        """Replace the answer given when no rule matches."""
        with self._lock:
            self._default = default

    @property
    def requests(self) -> list[ModelRequest]:
        """The most recent requests, oldest first."""
        with self._lock:
            return list(self._requests)

    def respond(self, request: ModelRequest) -> Reply:
        """Record ``request`` and choose its reply: the newest matching rule, else the default."""
        with self._lock:
            self._requests.append(request)
            entry = next(
                (e for e in reversed(self._entries) if not e.spent and e.rule.matches(request)),
                None,
            )
            if entry is not None:
                entry.uses += 1
            default = self._default
        # Responders run outside the lock: they may be slow or consult the behaviour themselves.
        if entry is not None:
            return entry.rule.answer(request)
        return default if isinstance(default, Reply) else default(request)

    def moderate(self, text: str) -> dict[str, bool]:
        """Moderation categories flagged for ``text`` (True when one of its words appears)."""
        folded = text.casefold()
        return {
            category: any(word.casefold() in folded for word in words)
            for category, words in self.moderation_terms.items()
        }
