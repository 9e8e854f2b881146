"""Running checks and scorers without ever raising.

:func:`run_checks` is what the instrumentation calls on every LLM response. A check that raises, or
returns something other than a bool or None, becomes an error outcome (``passed=None``, ``error`` set
to the exception's class name) and the other checks still run. The same goes for scorers, whose value
must be a finite real number.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable

from otel_prompt_canary.scoring._outcomes import (
    EVALUATION_NAME_PATTERN,
    Check,
    CheckOutcome,
    ScoreOutcome,
    Scorer,
    ScoringResults,
)
from otel_prompt_canary.scoring._response import LLMResponse

__all__ = ["PreparedChecks", "evaluate_check", "evaluate_score", "run_checks"]

_logger = logging.getLogger("otel_prompt_canary.scoring")

# Per valid check name, its three possible outcomes (pass, fail, not applicable), built once: a
# check's usual outcome then costs a dict lookup and no allocation, and the name is validated once.
# Bounded, so that a caller inventing names per call cannot grow it without limit.
_CHECK_OUTCOMES: dict[str, tuple[CheckOutcome, CheckOutcome, CheckOutcome]] = {}
_VALID_SCORE_NAMES: set[str] = set()
_CACHE_LIMIT = 4096


def _name_of(evaluator: Check | Scorer) -> tuple[str, str | None]:
    """The evaluator's name, and an error kind when it is unusable."""
    try:
        name = evaluator.name
    except Exception as exc:
        return type(evaluator).__name__, type(exc).__name__
    if not isinstance(name, str) or not EVALUATION_NAME_PATTERN.fullmatch(name):
        return repr(name)[:80], "InvalidNameError"
    return name, None


def _check_outcomes(check: Check) -> tuple[CheckOutcome, CheckOutcome, CheckOutcome] | CheckOutcome:
    """The three outcomes of ``check``'s name, or an error outcome when the name is unusable."""
    try:
        cached = _CHECK_OUTCOMES.get(check.name)
    except Exception:  # an unhashable or failing name: let _name_of say what is wrong
        cached = None
    if cached is not None:
        return cached
    name, error = _name_of(check)
    if error is not None:
        return CheckOutcome(name, None, error)
    outcomes = (CheckOutcome(name, True), CheckOutcome(name, False), CheckOutcome(name, None))
    if len(_CHECK_OUTCOMES) < _CACHE_LIMIT:
        _CHECK_OUTCOMES[name] = outcomes
    return outcomes


def evaluate_check(response: LLMResponse, check: Check) -> CheckOutcome:
    """Run one check; never raises."""
    return _run_check(response, check, _check_outcomes(check))


def _run_check(
    response: LLMResponse,
    check: Check,
    outcomes: tuple[CheckOutcome, CheckOutcome, CheckOutcome] | CheckOutcome,
) -> CheckOutcome:
    if isinstance(outcomes, CheckOutcome):
        return outcomes
    try:
        passed = check.check(response)
    except Exception as exc:
        _logger.debug("check %s raised", outcomes[0].name, exc_info=True)
        return CheckOutcome(outcomes[0].name, None, type(exc).__name__)
    if passed is True:
        return outcomes[0]
    if passed is False:
        return outcomes[1]
    if passed is None:
        return outcomes[2]
    _logger.debug("check %s returned %s, not a bool or None", outcomes[0].name, type(passed).__name__)
    return CheckOutcome(outcomes[0].name, None, "TypeError")


def evaluate_score(response: LLMResponse, scorer: Scorer) -> ScoreOutcome:
    """Run one scorer; never raises. A value that is not a finite real number is an error."""
    try:
        name = scorer.name
        known = name in _VALID_SCORE_NAMES
    except Exception:
        known = False
    if not known:
        name, error = _name_of(scorer)
        if error is not None:
            return ScoreOutcome(name, None, error)
        if len(_VALID_SCORE_NAMES) < _CACHE_LIMIT:
            _VALID_SCORE_NAMES.add(name)
    return _run_score(response, scorer, name)


def _run_score(response: LLMResponse, scorer: Scorer, name: str) -> ScoreOutcome:
    try:
        value = scorer.score(response)
        if value is None:
            return ScoreOutcome(name, None)
        if isinstance(value, (str, bytes)):
            raise TypeError("a score must be a number")
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"score {number} is not finite")
    except Exception as exc:
        _logger.debug("scorer %s failed", name, exc_info=True)
        return ScoreOutcome(name, None, type(exc).__name__)
    return ScoreOutcome(name, number)


def run_checks(
    response: LLMResponse, checks: Iterable[Check], scorers: Iterable[Scorer] = ()
) -> ScoringResults:
    """Run every check and scorer on ``response`` and collect their outcomes; never raises.

    Outcomes keep the order of ``checks`` and ``scorers``. Errors are outcomes too (see
    :attr:`ScoringResults.errors`), so one broken check costs only its own signal.
    """
    try:
        return ScoringResults(
            tuple([evaluate_check(response, c) for c in checks]),
            tuple([evaluate_score(response, s) for s in scorers]),
        )
    except Exception:  # only a broken iterable gets here
        _logger.debug("run_checks could not iterate its checks", exc_info=True)
        return ScoringResults()


class PreparedChecks:
    """Checks and scorers whose names are read and validated once, then run like :func:`run_checks`.

    A :class:`~otel_prompt_canary.scoring.ScoringPlan` holds one, so that each response costs the
    checks themselves and no name lookup per check.
    """

    __slots__ = ("_checks", "_scorers")

    def __init__(self, checks: Iterable[Check], scorers: Iterable[Scorer]) -> None:
        self._checks = tuple((check, _check_outcomes(check)) for check in checks)
        self._scorers = tuple((scorer, *_name_of(scorer)) for scorer in scorers)

    def run(self, response: LLMResponse) -> ScoringResults:
        """Every check's and scorer's outcome on ``response``, in order; never raises."""
        scores = [
            _run_score(response, scorer, name) if error is None else ScoreOutcome(name, None, error)
            for scorer, name, error in self._scorers
        ]
        return ScoringResults(
            tuple([_run_check(response, check, outcomes) for check, outcomes in self._checks]),
            tuple(scores),
        )
