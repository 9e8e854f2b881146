from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pytest

from otel_prompt_canary.errors import InvalidInputError
from otel_prompt_canary.scoring import (
    Check,
    CheckOutcome,
    LLMResponse,
    MaxOutputTokensCheck,
    OutputTokensScorer,
    RefusalCheck,
    ScoreOutcome,
    Scorer,
    ScoringResults,
    run_checks,
    validate_evaluation_name,
)

RESPONSE = LLMResponse(output_text="Fine answer.", output_tokens=10, finish_reasons=("stop",))


@dataclass
class Fixed:
    name: str
    result: Any

    def check(self, response: LLMResponse) -> Any:
        return self.result

    def score(self, response: LLMResponse) -> Any:
        return self.result


class Raising:
    name = "boom"

    def check(self, response: LLMResponse) -> bool:
        raise RuntimeError("bug in a check")

    def score(self, response: LLMResponse) -> float:
        raise ZeroDivisionError


class BadName:
    @property
    def name(self) -> str:
        raise AttributeError("no name")

    def check(self, response: LLMResponse) -> bool:
        return True


def test_outcomes_keep_order_and_become_span_attributes() -> None:
    results = run_checks(
        RESPONSE,
        [MaxOutputTokensCheck(5), RefusalCheck(), Fixed("na", None)],
        [OutputTokensScorer(), Fixed("nothing", None)],
    )
    assert results.checks == (
        CheckOutcome("max_output_tokens", False),
        CheckOutcome("refusal", True),
        CheckOutcome("na", None),
    )
    assert results.checks[0].outcome == "fail"
    assert results.checks[1].outcome == "pass"
    assert results.checks[2].outcome is None
    assert results.scores == (ScoreOutcome("output_tokens", 10.0), ScoreOutcome("nothing", None))
    assert results.errors == 0
    assert results.span_attributes() == {
        "prompt_canary.check.max_output_tokens": False,
        "prompt_canary.check.refusal": True,
        "prompt_canary.score.output_tokens": 10.0,
    }
    assert results.checks[0].attribute == "prompt_canary.check.max_output_tokens"
    assert results.scores[0].attribute == "prompt_canary.score.output_tokens"


def test_a_raising_check_is_an_error_outcome_and_the_others_still_run() -> None:
    results = run_checks(RESPONSE, [Raising(), RefusalCheck()], [Raising(), OutputTokensScorer()])
    assert results.checks == (CheckOutcome("boom", None, "RuntimeError"), CheckOutcome("refusal", True))
    assert results.scores == (
        ScoreOutcome("boom", None, "ZeroDivisionError"),
        ScoreOutcome("output_tokens", 10.0),
    )
    assert results.errors == 2
    assert "prompt_canary.check.boom" not in results.span_attributes()


@pytest.mark.parametrize("bad", ["yes", 1, 0.5, [True]])
def test_a_check_must_return_a_bool_or_none(bad: object) -> None:
    (outcome,) = run_checks(RESPONSE, [Fixed("odd", bad)]).checks
    assert outcome == CheckOutcome("odd", None, "TypeError")


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1, ScoreOutcome("s", 1.0)), (0.25, ScoreOutcome("s", 0.25)), (True, ScoreOutcome("s", 1.0))],
)
def test_scores_are_floats(value: object, expected: ScoreOutcome) -> None:
    assert run_checks(RESPONSE, [], [Fixed("s", value)]).scores == (expected,)


@pytest.mark.parametrize(
    ("value", "error"),
    [(math.nan, "ValueError"), (math.inf, "ValueError"), ("0.5", "TypeError"), ([1], "TypeError")],
)
def test_a_score_must_be_a_finite_number(value: object, error: str) -> None:
    assert run_checks(RESPONSE, [], [Fixed("s", value)]).scores == (ScoreOutcome("s", None, error),)


@pytest.mark.parametrize("name", ["Has Caps", "dots.not.allowed", "", "x" * 65, 7])
def test_invalid_names_are_error_outcomes_never_attributes(name: Any) -> None:
    results = run_checks(RESPONSE, [Fixed(name, True)], [Fixed(name, 1.0)])
    assert results.checks[0].error == "InvalidNameError"
    assert results.scores[0].error == "InvalidNameError"
    assert results.span_attributes() == {}


def test_a_failing_name_property_is_an_error_outcome() -> None:
    (outcome,) = run_checks(RESPONSE, [BadName()]).checks
    assert outcome == CheckOutcome("BadName", None, "AttributeError")


def test_a_broken_iterable_yields_empty_results() -> None:
    def broken() -> Any:
        yield RefusalCheck()
        raise RuntimeError("iterator failed")

    assert run_checks(RESPONSE, broken()) == ScoringResults()


def test_builtins_satisfy_the_protocols() -> None:
    assert isinstance(RefusalCheck(), Check)
    assert isinstance(OutputTokensScorer(), Scorer)


@pytest.mark.parametrize("name", ["json_valid", "a", "judge_v2", "x" * 64, "0_9"])
def test_valid_names(name: str) -> None:
    assert validate_evaluation_name(name) == name


@pytest.mark.parametrize("name", ["JSON", "a-b", "a.b", "", "x" * 65, "é"])
def test_invalid_names(name: str) -> None:
    with pytest.raises(InvalidInputError, match="invalid check or scorer name"):
        validate_evaluation_name(name)
