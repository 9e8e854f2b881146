"""Ramp steps with minimums of their own: the document, its schema, the judge's readiness, the rules.

The policy documents and durations here are shared with the Go processor: they live in its
``internal/policy/testdata`` (contrib style, one ``invalid_*.yaml`` per rule, the expected message on
the first line), and both engines must read them alike.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from otel_prompt_canary.analysis import (
    Judge,
    MeanStats,
    ProportionStats,
    Ramp,
    RampStep,
    Snapshot,
    load_policy,
    policy_json_schema,
    prometheus_rules,
)
from otel_prompt_canary.errors import InvalidInputError
from otel_prompt_canary.loop.start import policy_document, resolve_rollout_policy, with_steps

ROOT = Path(__file__).resolve().parents[2]
TESTDATA = ROOT / "collector/processor/promptcanaryprocessor/internal/policy/testdata"
INVALID = sorted(TESTDATA.glob("invalid_*.yaml"))
#: A real ramp (issue 11's "seed"): 1% for 4 h, 5% for 12 h, 20% and 50% for 24 h each, then 100%.
SEED_RAMP = TESTDATA / "ramp_per_step.yaml"

HOUR = 3600.0
BODY = {
    "signals": [{"name": "json_valid", "kind": "proportion", "harmful": "decrease"}],
    "rules": [
        {"signal": "json_valid", "type": "relative", "margin": 0.01, "action": "rollback", "critical": True}
    ],
}


def _minimums(ramp: Ramp) -> list[tuple[float, int]]:
    return [(ramp.min_duration_at(i), ramp.min_samples_at(i)) for i in range(len(ramp.steps))]


def _with_ramp(ramp: dict[str, Any], **body: Any) -> dict[str, Any]:
    return {**BODY, **body, "ramp": ramp}


# -- the document ----------------------------------------------------------------------------


def test_the_seeds_ramp_is_accepted_with_each_steps_minimums() -> None:
    policy = load_policy(SEED_RAMP)
    assert policy.ramp.percents == (1, 5, 20, 50, 100)
    assert _minimums(policy.ramp) == [
        (4 * HOUR, 500),
        (12 * HOUR, 500),
        (24 * HOUR, 500),
        (24 * HOUR, 2000),
        (600, 500),
    ]
    assert policy.ramp.steps[0] == RampStep(percent=1, min_duration=4 * HOUR)
    assert policy.ramp.steps[-1] == 100


def test_step_objects_round_trip_through_json_and_the_stored_document() -> None:
    policy = load_policy(SEED_RAMP)
    stored = policy_document(policy)
    assert stored["ramp"] == {
        "steps": [
            {"percent": 1.0, "min_duration": 14400.0},
            {"percent": 5.0, "min_duration": 43200.0},
            {"percent": 20.0, "min_duration": 86400.0},
            {"percent": 50.0, "min_duration": 86400.0, "min_samples": 2000},
            100.0,
        ],
        "min_duration_seconds": 600.0,
        "min_samples": 500,
    }
    assert load_policy(stored) == policy
    assert load_policy(json.dumps(stored)) == policy
    assert load_policy(policy.model_dump(mode="json")) == policy  # nulls are "not set"
    assert type(policy).model_validate_json(policy.model_dump_json()) == policy


def test_a_ramp_without_step_objects_is_unchanged() -> None:
    policy = load_policy(_with_ramp({"steps": [10, 50, 100], "min_duration_seconds": 60, "min_samples": 30}))
    assert policy.ramp.steps == policy.ramp.percents == (10, 50, 100)
    assert _minimums(policy.ramp) == [(60, 30)] * 3
    assert policy_document(policy)["ramp"] == {
        "steps": [10.0, 50.0, 100.0],
        "min_duration_seconds": 60.0,
        "min_samples": 30,
    }


def test_a_step_object_may_set_nothing_of_its_own() -> None:
    policy = load_policy(_with_ramp({"steps": [{"percent": 10}, {"percent": 100, "min_duration": None}]}))
    assert policy.ramp.percents == (10, 100)
    assert _minimums(policy.ramp) == [(600, 100)] * 2


def _duration_cases() -> list[tuple[str, float | None]]:
    cases = yaml.safe_load((TESTDATA / "durations.yaml").read_text(encoding="utf-8"))
    return [(case["text"], case["seconds"]) for case in cases]


@pytest.mark.parametrize(("text", "seconds"), _duration_cases())
def test_durations_read_as_in_go(text: str, seconds: float | None) -> None:
    document = _with_ramp({"steps": [{"percent": 10, "min_duration": text}, 100]})
    if seconds is None:
        with pytest.raises(InvalidInputError, match=re.escape(f"invalid duration {text!r}: give seconds")):
            load_policy(document)
    elif seconds == 0:
        with pytest.raises(InvalidInputError, match="minimum duration must be longer than 0"):
            load_policy(document)
    else:
        assert load_policy(document).ramp.min_duration_at(0) == seconds  # the same float as Go's


@pytest.mark.parametrize("path", INVALID, ids=[p.stem for p in INVALID])
def test_invalid_steps_are_refused_with_the_messages_go_gives(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    want = text.splitlines()[0].removeprefix("# want: ")
    with pytest.raises(InvalidInputError) as info:
        load_policy(text)
    assert str(info.value) == want


def test_every_rule_on_steps_has_a_shared_file() -> None:
    assert {p.stem for p in INVALID} >= {
        "invalid_step_duration_zero",
        "invalid_step_duration_negative",
        "invalid_step_duration_unparsable",
        "invalid_step_min_samples",
        "invalid_step_without_percent",
        "invalid_steps_not_increasing",
    }


def test_every_problem_of_a_step_is_named_at_once() -> None:
    document = _with_ramp(
        {"steps": [{"min_duration": "x", "min_samples": 1.5, "min_durations": 1}, 100], "min_samples": 0}
    )
    with pytest.raises(InvalidInputError) as info:
        load_policy(document)
    assert str(info.value) == (
        "invalid policy: ramp.steps.0.percent: Field required; ramp.steps.0.min_duration: invalid "
        "duration 'x': give seconds (14400) or a duration such as 30m, 4h or 1h30m; "
        "ramp.steps.0.min_samples: Input should be a valid integer, got a number with a fractional "
        "part; ramp.steps.0.min_durations: unknown field; ramp.min_samples: Input should be greater "
        "than or equal to 1"
    )


# -- the schema ------------------------------------------------------------------------------


def test_the_schema_takes_numbers_and_step_objects() -> None:
    validator = jsonschema.Draft202012Validator(policy_json_schema())
    seed = yaml.safe_load(SEED_RAMP.read_text(encoding="utf-8"))
    validator.validate(seed)
    validator.validate(policy_document(load_policy(seed)))
    for vector in sorted((ROOT / "tests" / "vectors").glob("*.json")):
        validator.validate(json.loads(vector.read_text(encoding="utf-8"))["policy"])
    for bad in ({"min_duration": "1.5h"}, {"min_duration": 0}, {"min_samples": 0}, {"min_duratio": 60}):
        document = _with_ramp({"steps": [{"percent": 10, **bad}, 100]})
        assert not validator.is_valid(document), bad
    assert not validator.is_valid(_with_ramp({"steps": [{"min_duration": "4h"}, 100]}))


# -- the judge -------------------------------------------------------------------------------

PER_STEP = _with_ramp(
    {
        "min_duration_seconds": 600,
        "min_samples": 100,
        "steps": [
            {"percent": 10, "min_duration": "4h"},
            {"percent": 50, "min_duration": 60, "min_samples": 400},
            100,
        ],
    },
    signals=[
        {"name": "json_valid", "kind": "proportion", "harmful": "decrease"},
        {"name": "judge", "kind": "mean", "harmful": "decrease", "must_have_data": True},
    ],
)


def _healthy(stable: int, canary: int) -> Snapshot:
    """``n`` valid and judged responses per cohort (none for 0); the Go test's evidence."""

    def cohort(n: int) -> dict[str, Any]:
        if n == 0:
            return {}
        scores = MeanStats.of([0.5 + 0.2 * (i % 2) for i in range(n)])
        return {
            "prompt_canary.check.json_valid": ProportionStats(n=n, successes=n),
            "prompt_canary.score.judge": scores,
        }

    return Snapshot(stable=cohort(stable), canary=cohort(canary))


def test_each_step_is_ready_by_its_own_minimums() -> None:
    judge = Judge(load_policy(PER_STEP))

    def waiting(step: int, elapsed: float, evidence: Snapshot) -> list[str]:
        return list(judge.evaluate(evidence, step=step, elapsed_seconds=elapsed).waiting_for)

    # Step 0: the ramp's 100 samples, but 4 hours of its own.
    assert waiting(0, 3600, _healthy(900, 100)) == ["the step has run 3600 s of its 14400 s minimum"]
    assert waiting(0, 14400, _healthy(900, 100)) == []
    # Step 1: a minute and 400 samples of its own, must_have_data signals included.
    assert waiting(1, 120, _healthy(300, 300)) == [
        "the canary cohort has 300 of the 400 samples the step needs",
        "the stable cohort has 300 of the 400 samples the step needs",
        "signal 'judge' has 300 of the 400 canary samples it must have (must_have_data)",
        "signal 'judge' has 300 of the 400 stable samples it must have (must_have_data)",
    ]
    assert waiting(1, 60, _healthy(400, 400)) == []  # after its own minute, not the ramp's 600 s
    # Step 2 (100%): the ramp's minimums, the stable cohort exempt.
    assert waiting(2, 599, _healthy(0, 100)) == ["the step has run 599 s of its 600 s minimum"]
    assert waiting(2, 600, _healthy(0, 100)) == []


# -- starting a rollout, and the rules -------------------------------------------------------


def test_a_rollout_keeps_its_steps_minimums() -> None:
    seed = yaml.safe_load(SEED_RAMP.read_text(encoding="utf-8"))
    resolved = resolve_rollout_policy(seed)
    assert resolved.ramp == (1, 5, 20, 50, 100)
    assert _minimums(resolved.policy.ramp) == _minimums(load_policy(seed).ramp)
    # The controller re-reads the stored policy with the routing flag's ramp: nothing is lost.
    stored = load_policy(resolved.document)
    assert with_steps(stored, resolved.ramp) is stored
    # --ramp with the same percentages agrees; other percentages do not.
    assert resolve_rollout_policy(seed, "1,5,20,50,100").policy == resolved.policy
    with pytest.raises(
        InvalidInputError, match=re.escape("disagrees with the policy's ramp.steps 1,5,20,50,100")
    ):
        resolve_rollout_policy(seed, "1,100")


def test_the_rules_wait_the_shortest_steps_minimum() -> None:
    def waits(ramp: dict[str, Any]) -> dict[str, str]:
        rules = [
            {
                "signal": "json_valid",
                "type": "relative",
                "margin": 0.01,
                "action": "rollback",
                "critical": True,
            },
            {"id": "slow", "signal": "json_valid", "type": "absolute", "threshold": 0.9, "action": "pause"},
        ]
        text = prometheus_rules(load_policy(_with_ramp(ramp, rules=rules)), "support-bot")
        group = yaml.safe_load(text)["groups"][0]
        return {r["labels"]["prompt_canary_rule"]: r["for"] for r in group["rules"] if "alert" in r}

    assert waits({"min_duration_seconds": 900}) == {"json_valid.relative": "60s", "slow": "900s"}
    seed = yaml.safe_load(SEED_RAMP.read_text(encoding="utf-8"))["ramp"]
    assert waits(seed) == {"json_valid.relative": "60s", "slow": "600s"}  # the last step's 10 minutes
    seed["steps"][-1] = {"percent": 100, "min_duration": "2h"}
    assert waits(seed) == {"json_valid.relative": "60s", "slow": "7200s"}


# -- docs/judge.md ---------------------------------------------------------------------------

DOC = ROOT / "docs" / "judge.md"


def test_the_documented_ramp_is_the_seeds() -> None:
    text = DOC.read_text(encoding="utf-8")
    (block,) = [b for b in re.findall(r"```yaml\n(.*?)```", text, flags=re.S) if "percent:" in b]
    documented = load_policy({**BODY, **yaml.safe_load(block)})
    assert documented.ramp.percents == load_policy(SEED_RAMP).ramp.percents
    assert _minimums(documented.ramp) == _minimums(load_policy(SEED_RAMP).ramp)


def test_the_documented_step_messages_are_real() -> None:
    wanted = {
        p.read_text(encoding="utf-8").splitlines()[0].removeprefix("# want: invalid policy: ")
        for p in INVALID
    }
    (block,) = re.findall(r"```text\n(ramp\.steps.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    lines = block.splitlines()
    assert len(lines) == 5
    assert set(lines) <= wanted
