"""Behaviour detectors: did the model refuse, did it hand the conversation to a human?

Both are checks whose pass means "not detected": ``refusal`` passes when the model answered,
``escalation`` passes when it kept the conversation. A canary that refuses or escalates more often
shows up as a lower pass rate, like any other regression.
"""

from __future__ import annotations

from collections.abc import Iterable

from otel_prompt_canary.errors import InvalidInputError
from otel_prompt_canary.scoring._outcomes import validate_evaluation_name
from otel_prompt_canary.scoring._phrases import (
    REFUSAL_LANGUAGES,
    phrase_matcher,
    refusal_matcher,
)
from otel_prompt_canary.scoring._response import CONTENT_FILTER_FINISH_REASONS, LLMResponse

__all__ = [
    "DEFAULT_ESCALATION_PHRASES",
    "DEFAULT_ESCALATION_TOOLS",
    "EscalationCheck",
    "RefusalCheck",
]

#: Tool names that hand the conversation over to a person.
DEFAULT_ESCALATION_TOOLS: tuple[str, ...] = (
    "transfer_to_human",
    "transfer_to_agent",
    "escalate_to_human",
    "escalate_to_agent",
    "handoff_to_human",
    "hand_off_to_human",
    "connect_to_human",
)

#: Phrases by which an assistant announces a hand-over to a person.
DEFAULT_ESCALATION_PHRASES: tuple[str, ...] = (
    "connect you with a human",
    "connect you to a human",
    "connect you with a live agent",
    "connect you to a live agent",
    "connect you with an agent",
    "connect you to an agent",
    "connect you with a member of our",
    "transfer you to a human",
    "transfer you to a live agent",
    "transfer you to an agent",
    "transfer you to a specialist",
    "transferring you to a human",
    "transferring you to an agent",
    "hand you over to a human",
    "escalate this to a human",
    "escalating this to a human",
    "a human agent will",
)


class RefusalCheck:
    """Passes when the model answered; fails when it refused.

    A response counts as a refusal when any of these holds:

    - a finish reason says the provider or model declined (``content_filter``, Anthropic's ``refusal``,
      Gemini's ``safety``...);
    - OpenAI reported a ``refusal`` message (structured outputs);
    - a refusal phrase opens a sentence or clause within the first ``scan_chars`` characters of the
      output, in any of ``languages`` (default: every built-in language: en, es, fr, de, pt, it, nl,
      ru, zh, ja, ko), or one of ``extra_phrases`` does (CJK phrases anywhere in that window).

    Only the start of the output is read because refusals come first ("I'm sorry, but I can't...");
    an answer that says "I can't stress enough..." in its fifth paragraph is not a refusal, and
    reading a prefix keeps the cost flat however long the answer.
    """

    __slots__ = ("_matcher", "_name", "_scan_chars")

    def __init__(
        self,
        *,
        name: str = "refusal",
        languages: Iterable[str] | None = None,
        extra_phrases: Iterable[str] = (),
        scan_chars: int = 300,
    ) -> None:
        self._name = validate_evaluation_name(name)
        langs = REFUSAL_LANGUAGES if languages is None else tuple(languages)
        unknown = sorted(set(langs) - set(REFUSAL_LANGUAGES))
        if unknown:
            raise InvalidInputError(
                f"refusal: unknown language(s) {unknown}; built-in: {', '.join(REFUSAL_LANGUAGES)} "
                "(add your own wording with extra_phrases)"
            )
        if scan_chars < 1:
            raise InvalidInputError(f"refusal: scan_chars must be at least 1, got {scan_chars}")
        self._matcher = refusal_matcher(langs, extra_phrases)
        self._scan_chars = scan_chars

    @property
    def name(self) -> str:
        """The check's name."""
        return self._name

    def check(self, response: LLMResponse) -> bool:
        """True: the model answered; False: it refused."""
        for reason in response.finish_reasons:
            if reason in CONTENT_FILTER_FINISH_REASONS or (
                not reason.islower() and reason.lower() in CONTENT_FILTER_FINISH_REASONS
            ):
                return False
        if response.refusal:
            return False
        text = response.output_text
        if not text or self._matcher.empty:
            return True
        return not self._matcher.search(text[: self._scan_chars].lower())

    def __repr__(self) -> str:
        return f"RefusalCheck(name={self._name!r}, scan_chars={self._scan_chars})"


class EscalationCheck:
    """Passes when the model kept the conversation; fails when it handed it to a person.

    An escalation is a tool call named in ``tool_names`` (compared case-insensitively) or one of
    ``phrases`` anywhere in the output (case-insensitive, any whitespace, either apostrophe).
    """

    __slots__ = ("_matcher", "_name", "_tools")

    def __init__(
        self,
        *,
        name: str = "escalation",
        tool_names: Iterable[str] = DEFAULT_ESCALATION_TOOLS,
        phrases: Iterable[str] = DEFAULT_ESCALATION_PHRASES,
    ) -> None:
        self._name = validate_evaluation_name(name)
        self._tools = frozenset(t.strip().lower() for t in tool_names if t.strip())
        self._matcher = phrase_matcher(phrases)
        if not self._tools and self._matcher.empty:
            raise InvalidInputError("escalation: give at least one tool name or phrase")

    @property
    def name(self) -> str:
        """The check's name."""
        return self._name

    def check(self, response: LLMResponse) -> bool:
        """True: no escalation; False: an escalation tool call or phrase."""
        tools = self._tools
        if tools:
            for call in response.tool_calls:
                if call.name.lower() in tools:
                    return False
        text = response.output_text
        if not text or self._matcher.empty:
            return True
        return not self._matcher.search(text.lower())

    def __repr__(self) -> str:
        return f"EscalationCheck(name={self._name!r}, tool_names={sorted(self._tools)!r})"
