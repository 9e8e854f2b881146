"""What a check and a scorer are, and what running them produces.

A :class:`Check` answers a yes/no question about one response; a :class:`Scorer` measures it. Both
have a ``name`` that becomes part of a span attribute (``prompt_canary.check.<name>``,
``prompt_canary.score.<name>``), so names are restricted to ``[a-z0-9_]``, 1 to 64 characters.

Outcomes are named tuples: immutable, and cheap to create on every call.

**The boolean of a check is always "passed".** ``True`` means the response passed (the good outcome),
``False`` that it failed, ``None`` that the check does not apply to this response. The span attribute
carries that boolean and the ``prompt_canary.checks`` metric counts it as ``pass``/``fail``, so every
check reads the same way on a dashboard: a drop in its pass rate is harm. For a detector that means
the check passes when the thing is *not* detected: ``refusal`` passes when the model did not refuse.
"""

from __future__ import annotations

import re
from typing import Literal, NamedTuple, Protocol, runtime_checkable

from otel_prompt_canary.errors import InvalidInputError

# The span attribute of a check (a score) is this prefix plus its name. names.py defines both; the
# scoring package re-exports them under these public names.
from otel_prompt_canary.names import CHECK_PREFIX as CHECK_ATTRIBUTE_PREFIX
from otel_prompt_canary.names import SCORE_PREFIX as SCORE_ATTRIBUTE_PREFIX
from otel_prompt_canary.names import SIGNAL_NAME_PATTERN
from otel_prompt_canary.scoring._response import LLMResponse

__all__ = [
    "CHECK_ATTRIBUTE_PREFIX",
    "EVALUATION_NAME_PATTERN",
    "SCORE_ATTRIBUTE_PREFIX",
    "Check",
    "CheckOutcome",
    "ScoreOutcome",
    "Scorer",
    "ScoringResults",
    "validate_evaluation_name",
]

EVALUATION_NAME_PATTERN = re.compile(SIGNAL_NAME_PATTERN)


def validate_evaluation_name(name: str) -> str:
    """Return ``name`` if it is a valid check or scorer name, else raise :class:`InvalidInputError`."""
    if not isinstance(name, str) or not EVALUATION_NAME_PATTERN.fullmatch(name):
        raise InvalidInputError(
            f"invalid check or scorer name {name!r}: use 1-64 characters from a-z, 0-9 and '_' "
            "(it becomes part of a span attribute name)"
        )
    return name


@runtime_checkable
class Check(Protocol):
    """A binary quality check of one response.

    ``check`` returns ``True`` when the response passes, ``False`` when it fails and ``None`` when the
    check does not apply (a JSON check on a pure tool call, a token budget without token counts). It
    may raise: :func:`~otel_prompt_canary.scoring.run_checks` records that as an error outcome.
    Checks run on every LLM call, in the application's thread: keep them cheap and thread-safe.
    """

    @property
    def name(self) -> str:
        """The check's name, ``[a-z0-9_]{1,64}``."""
        ...

    def check(self, response: LLMResponse) -> bool | None:
        """True: passed; False: failed; None: not applicable."""
        ...


@runtime_checkable
class Scorer(Protocol):
    """A numeric measurement of one response (a judge score, a token count...).

    ``score`` returns a finite float, or ``None`` when the scorer does not apply. It may raise:
    :func:`~otel_prompt_canary.scoring.run_checks` records that as an error outcome.
    """

    @property
    def name(self) -> str:
        """The scorer's name, ``[a-z0-9_]{1,64}``."""
        ...

    def score(self, response: LLMResponse) -> float | None:
        """The score, or None when the scorer does not apply."""
        ...


class CheckOutcome(NamedTuple):
    """The result of one check on one response.

    ``passed`` is None when the check did not apply or raised; ``error`` then names the exception
    class (a low-cardinality value for the ``error.type`` attribute).
    """

    name: str
    passed: bool | None
    error: str | None = None

    @property
    def outcome(self) -> Literal["pass", "fail"] | None:
        """``pass``/``fail`` for the ``prompt_canary.check.outcome`` metric attribute, else None."""
        if self.passed is None:
            return None
        return "pass" if self.passed else "fail"

    @property
    def attribute(self) -> str:
        """The span attribute name, ``prompt_canary.check.<name>``."""
        return CHECK_ATTRIBUTE_PREFIX + self.name


class ScoreOutcome(NamedTuple):
    """The result of one scorer on one response; ``value`` is None when not applicable or on error."""

    name: str
    value: float | None
    error: str | None = None

    @property
    def attribute(self) -> str:
        """The span attribute name, ``prompt_canary.score.<name>``."""
        return SCORE_ATTRIBUTE_PREFIX + self.name


class ScoringResults(NamedTuple):
    """Every outcome of the inline checks and scorers for one response, in configuration order."""

    checks: tuple[CheckOutcome, ...] = ()
    scores: tuple[ScoreOutcome, ...] = ()

    @property
    def errors(self) -> int:
        """How many checks and scorers raised (or returned something invalid)."""
        return sum(1 for c in self.checks if c.error is not None) + sum(
            1 for s in self.scores if s.error is not None
        )

    def span_attributes(self) -> dict[str, bool | float]:
        """``prompt_canary.check.*`` and ``prompt_canary.score.*`` for every outcome that has a value."""
        attributes: dict[str, bool | float] = {}
        for c in self.checks:
            if c.passed is not None:
                attributes[CHECK_ATTRIBUTE_PREFIX + c.name] = c.passed
        for s in self.scores:
            if s.value is not None:
                attributes[SCORE_ATTRIBUTE_PREFIX + s.name] = s.value
        return attributes
