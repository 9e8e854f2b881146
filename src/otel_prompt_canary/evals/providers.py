"""Calling a prompt version's model through the real SDK: an OpenAI-compatible or Anthropic endpoint.

The provider follows the version's model (``claude-*``: Anthropic, anything else: the OpenAI
API, which OpenAI-compatible servers speak), unless the caller names one. The SDK reads its usual
environment variables (``OPENAI_API_KEY`` and ``OPENAI_BASE_URL``, ``ANTHROPIC_API_KEY`` and
``ANTHROPIC_BASE_URL``) unless ``base_url`` and ``api_key`` are given. The SDK's own retries are
off: the evaluation retries a call itself (:meth:`ModelClient.retryable` says which failures are
worth it), so that it counts every attempt.

From the version's ``config`` the generation settings each API knows are sent (OpenAI:
``temperature``, ``top_p``, ``max_tokens``, ``max_completion_tokens``, ``seed``, ``stop``,
``response_format``, ``presence_penalty``, ``frequency_penalty``; Anthropic: ``temperature``,
``top_p``, ``top_k``, ``max_tokens`` (default 1024, which the API requires), ``stop_sequences``),
when the installed SDK takes them; other keys are the application's business and are not sent.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal

from pydantic import JsonValue

from otel_prompt_canary.errors import InvalidInputError
from otel_prompt_canary.evals.datasets import Case
from otel_prompt_canary.registry.models import PromptVersion
from otel_prompt_canary.scoring import EvaluationError, LLMResponse, ToolCall

__all__ = ["ANTHROPIC_ROLES", "PROVIDERS", "ModelClient", "Provider", "case_messages", "provider_for"]

Provider = Literal["openai", "anthropic"]
PROVIDERS: Final[tuple[Provider, ...]] = ("openai", "anthropic")
#: The roles a chat sent to the Anthropic API may hold (system and developer become its system text).
ANTHROPIC_ROLES: Final = frozenset({"system", "developer", "user", "assistant"})

_OPENAI_PARAMETERS: Final = (
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "seed",
    "stop",
    "response_format",
    "presence_penalty",
    "frequency_penalty",
)
_ANTHROPIC_PARAMETERS: Final = ("temperature", "top_p", "top_k", "max_tokens", "stop_sequences")
_ANTHROPIC_MAX_TOKENS: Final = 1024
_RETRY_STATUSES: Final = frozenset({408, 409, 429})
_SDK_EXTRA: Final = {"openai": "openai", "anthropic": "anthropic"}


def provider_for(model: str, given: str | None = None) -> Provider:
    """The API to speak for ``model``: ``given`` when set, else Anthropic for ``claude-*`` models."""
    if given is not None:
        if given not in PROVIDERS:
            raise InvalidInputError(f"unknown provider {given!r}: give openai or anthropic")
        return "anthropic" if given == "anthropic" else "openai"
    return "anthropic" if model.lower().startswith("claude") else "openai"


def case_messages(version: PromptVersion, case: Case) -> list[dict[str, str]]:
    """The chat messages of ``case``: the version rendered with its variables, then its messages.

    A text template becomes one message whose role is its ``template_role``.
    """
    rendered = version.render(**case.variables)
    if isinstance(rendered, str):
        messages = [{"role": version.template_role, "content": rendered}]
    else:
        messages = list(rendered)
    messages.extend({"role": m.role, "content": m.content} for m in case.messages)
    return messages


def _field(obj: object, name: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


class ModelClient:
    """One SDK client for the model of a prompt version; safe to share between threads.

    Raises :class:`InvalidInputError` when the SDK is not installed or cannot be configured (no API
    key, say): before any case is run.
    """

    def __init__(
        self,
        provider: Provider,
        model: str,
        config: Mapping[str, JsonValue],
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.provider = provider
        self.model = model
        try:
            self._sdk = importlib.import_module(provider)
        except ImportError:
            raise InvalidInputError(
                f"evaluating with the {provider} API needs its SDK: pip install "
                f"'otel-prompt-canary[{_SDK_EXTRA[provider]}]'"
            ) from None
        factory = self._sdk.OpenAI if provider == "openai" else self._sdk.Anthropic
        settings: dict[str, Any] = {"max_retries": 0, "timeout": timeout}
        if base_url is not None:
            settings["base_url"] = base_url
        if api_key is not None:
            settings["api_key"] = api_key
        failure = self._sdk.OpenAIError if provider == "openai" else self._sdk.AnthropicError
        try:
            self._client = factory(**settings)
        except failure as exc:
            raise InvalidInputError(f"cannot set up the {provider} client: {exc}") from None
        names = _OPENAI_PARAMETERS if provider == "openai" else _ANTHROPIC_PARAMETERS
        create = (
            self._client.chat.completions.create if provider == "openai" else self._client.messages.create
        )
        # A setting the installed SDK no longer takes (Anthropic's 2.x has no temperature) stays unsent.
        accepted = set(inspect.signature(create).parameters)
        self._parameters = {name: config[name] for name in names if name in config and name in accepted}
        if provider == "anthropic":
            self._parameters.setdefault("max_tokens", _ANTHROPIC_MAX_TOKENS)

    def __repr__(self) -> str:
        return f"ModelClient({self.provider!r}, {self.model!r})"

    def close(self) -> None:
        """Close the SDK client's connections."""
        self._client.close()

    def retryable(self, exc: BaseException) -> bool:
        """Whether a failed call is worth another attempt: no connection, a timeout, 408, 409, 429,
        a 5xx, or a judge that could not answer."""
        if isinstance(exc, EvaluationError):
            return True
        if isinstance(exc, self._sdk.APIConnectionError):  # timeouts included
            return True
        status = getattr(exc, "status_code", None)
        return isinstance(status, int) and (status in _RETRY_STATUSES or status >= 500)

    def call(self, messages: Sequence[Mapping[str, str]]) -> LLMResponse:
        """One call of the model with ``messages``; the answer as the checks read it. Raises what
        the SDK raises."""
        if self.provider == "openai":
            return self._openai(messages)
        return self._anthropic(messages)

    def _openai(self, messages: Sequence[Mapping[str, str]]) -> LLMResponse:
        result = self._client.chat.completions.create(
            model=self.model, messages=list(messages), **self._parameters
        )
        choice = result.choices[0]
        message = choice.message
        calls = tuple(
            ToolCall(name=call.function.name, arguments=call.function.arguments or "", id=call.id)
            for call in message.tool_calls or ()
            if getattr(call, "function", None) is not None
        )
        usage = result.usage
        response_format = self._parameters.get("response_format")
        return LLMResponse(
            output_text=message.content or "",
            tool_calls=calls,
            finish_reasons=(choice.finish_reason,) if choice.finish_reason else (),
            input_tokens=None if usage is None else usage.prompt_tokens,
            output_tokens=None if usage is None else usage.completion_tokens,
            model=result.model,
            response_id=result.id,
            refusal=getattr(message, "refusal", None),
            request_messages=tuple(messages),
            response_format=_field(response_format, "type") if response_format is not None else None,
            provider="openai",
        )

    def _anthropic(self, messages: Sequence[Mapping[str, str]]) -> LLMResponse:
        system = "\n\n".join(m["content"] for m in messages if m["role"] in ("system", "developer"))
        turns = [dict(m) for m in messages if m["role"] not in ("system", "developer")]
        for turn in turns:
            if turn["role"] not in ANTHROPIC_ROLES:
                raise InvalidInputError(f"the Anthropic API takes no {turn['role']!r} messages")
        arguments: dict[str, Any] = {"model": self.model, "messages": turns, **self._parameters}
        if system:
            arguments["system"] = system
        result = self._client.messages.create(**arguments)
        text = "".join(block.text for block in result.content if block.type == "text")
        calls = tuple(
            ToolCall(name=block.name, arguments=dict(block.input or {}), id=block.id)
            for block in result.content
            if block.type == "tool_use"
        )
        return LLMResponse(
            output_text=text,
            tool_calls=calls,
            finish_reasons=(result.stop_reason,) if result.stop_reason else (),
            input_tokens=result.usage.input_tokens,
            output_tokens=result.usage.output_tokens,
            model=result.model,
            response_id=result.id,
            request_messages=tuple(turns),
            instructions=system or None,
            provider="anthropic",
        )
