"""Length signals: the output-token budget, truncation at the token limit, the output-token count."""

from __future__ import annotations

from otel_prompt_canary.errors import InvalidInputError
from otel_prompt_canary.scoring._outcomes import validate_evaluation_name
from otel_prompt_canary.scoring._response import LENGTH_FINISH_REASONS, LLMResponse

__all__ = ["MaxOutputTokensCheck", "OutputTokensScorer", "TruncationCheck"]


class MaxOutputTokensCheck:
    """Passes when the response used at most ``budget`` output tokens.

    A prompt edit that makes answers longer costs money and latency before anyone reads them; this
    check turns that into a pass rate. It does not apply when the provider reported no token usage.
    """

    __slots__ = ("_budget", "_name")

    def __init__(self, budget: int = 4096, *, name: str = "max_output_tokens") -> None:
        if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
            raise InvalidInputError(f"max_output_tokens: budget must be a positive integer, got {budget!r}")
        self._budget = budget
        self._name = validate_evaluation_name(name)

    @property
    def name(self) -> str:
        """The check's name."""
        return self._name

    @property
    def budget(self) -> int:
        """The most output tokens a passing response may use."""
        return self._budget

    def check(self, response: LLMResponse) -> bool | None:
        """True: within budget; False: over it; None: no token count."""
        tokens = response.output_tokens
        return None if tokens is None else tokens <= self._budget

    def __repr__(self) -> str:
        return f"MaxOutputTokensCheck({self._budget}, name={self._name!r})"


class TruncationCheck:
    """Passes when no choice stopped at the token limit (finish reason ``length``/``max_tokens``).

    A truncated answer is usually a broken one (half a JSON document, a cut sentence). It does not
    apply when the provider reported no finish reason.
    """

    __slots__ = ("_name",)

    def __init__(self, *, name: str = "truncation") -> None:
        self._name = validate_evaluation_name(name)

    @property
    def name(self) -> str:
        """The check's name."""
        return self._name

    def check(self, response: LLMResponse) -> bool | None:
        """True: not truncated; False: cut at the token limit; None: no finish reason."""
        reasons = response.finish_reasons
        if not reasons:
            return None
        for reason in reasons:
            if reason in LENGTH_FINISH_REASONS or (
                not reason.islower() and reason.lower() in LENGTH_FINISH_REASONS
            ):
                return False
        return True

    def __repr__(self) -> str:
        return f"TruncationCheck(name={self._name!r})"


class OutputTokensScorer:
    """The number of output tokens, as a score (a histogram per cohort shows a length shift)."""

    __slots__ = ("_name",)

    def __init__(self, *, name: str = "output_tokens") -> None:
        self._name = validate_evaluation_name(name)

    @property
    def name(self) -> str:
        """The scorer's name."""
        return self._name

    def score(self, response: LLMResponse) -> float | None:
        """The output-token count, or None when the provider reported none."""
        tokens = response.output_tokens
        return None if tokens is None else float(tokens)

    def __repr__(self) -> str:
        return f"OutputTokensScorer(name={self._name!r})"
