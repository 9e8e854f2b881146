"""The judge: verdicts per rule with their evidence, the overall decision and step readiness."""

from __future__ import annotations

import json
import math
import re

import pytest

from otel_prompt_canary.analysis import (
    DEFAULT_POLICY,
    Decision,
    Judge,
    MeanStats,
    Policy,
    ProportionStats,
    RuleAction,
    RuleStatus,
    Snapshot,
    Verdict,
    load_policy,
)
from otel_prompt_canary.errors import InvalidInputError

JSON_VALID = "prompt_canary.check.json_valid"
REFUSAL = "prompt_canary.check.refusal"
JUDGE = "prompt_canary.score.judge"

POLICY = load_policy(
    """
alpha: 0.05
ramp: {steps: [10, 50, 100], min_duration_seconds: 600, min_samples: 100}
signals:
  - {name: json_valid, kind: proportion, harmful: decrease}
  - {name: refusal, kind: proportion, harmful: decrease}
  - {name: judge, kind: mean, harmful: decrease, must_have_data: true}
rules:
  - {signal: json_valid, type: relative, margin: 0.01, action: rollback, critical: true}
  - {signal: refusal, type: absolute, threshold: 0.9, action: alert}
  - {signal: judge, type: relative, margin: 0.05, action: pause}
"""
)


def _p(n: int, successes: int) -> ProportionStats:
    return ProportionStats(n=n, successes=successes)


def _scores(n: int, mean: float) -> MeanStats:
    # Deterministic spread around ``mean``: -0.1, 0, +0.1 repeated.
    return MeanStats.of([mean + (i % 3 - 1) * 0.1 for i in range(n)])


def healthy(n_stable: int = 2000, n_canary: int = 400) -> Snapshot:
    return Snapshot(
        stable={
            JSON_VALID: _p(n_stable, round(n_stable * 0.99)),
            REFUSAL: _p(n_stable, round(n_stable * 0.98)),
            JUDGE: _scores(n_stable // 4, 0.8),
        },
        canary={
            JSON_VALID: _p(n_canary, round(n_canary * 0.99)),
            REFUSAL: _p(n_canary, round(n_canary * 0.98)),
            JUDGE: _scores(n_canary // 4, 0.8),
        },
    )


def test_healthy_mature_step_is_ready() -> None:
    verdict = Judge(POLICY).evaluate(healthy(), step=0, elapsed_seconds=900)
    assert verdict.decision is Decision.CONTINUE
    assert verdict.action is None and verdict.rule_id is None
    assert verdict.ready
    assert verdict.waiting_for == ()
    assert (verdict.stable_samples, verdict.canary_samples) == (2000, 400)
    assert verdict.canary_percent == 10
    assert [r.status for r in verdict.rules] == [RuleStatus.CONTINUE] * 3


def test_breach_verdict_carries_its_evidence() -> None:
    evidence = healthy().add("canary", JSON_VALID, _p(600, 520))  # canary now 916/1000 valid
    verdict = Judge(POLICY).evaluate(evidence, step=0, elapsed_seconds=30)
    assert verdict.decision is Decision.BREACH
    assert verdict.action is RuleAction.ROLLBACK
    assert verdict.rule_id == "json_valid.relative"
    assert verdict.breached == ("json_valid.relative",)
    assert not verdict.ready
    assert "rule 'json_valid.relative' is in breach" in verdict.waiting_for

    rule = verdict.rules[0]
    assert rule.status is RuleStatus.BREACH
    assert rule.rule == POLICY.rules[0]
    assert (rule.signal, rule.attribute, rule.kind, rule.harmful) == (
        "json_valid",
        JSON_VALID,
        "proportion",
        "decrease",
    )
    assert rule.critical and rule.action is RuleAction.ROLLBACK
    assert (rule.canary.n, rule.stable.n if rule.stable else None) == (1000, 2000)
    assert rule.canary.estimate == pytest.approx(0.916)
    assert rule.stable is not None and rule.stable.estimate == pytest.approx(0.99)
    assert rule.canary.variance == pytest.approx((1833 / 2002) * (169 / 2002))
    assert rule.estimate == pytest.approx(0.916 - 0.99)
    assert rule.limit == -0.01
    assert rule.bound is not None and rule.radius is not None and rule.statistic is not None
    assert rule.estimate is not None
    assert rule.bound == pytest.approx(rule.estimate + rule.radius)
    assert rule.bound < rule.limit
    assert rule.alpha == pytest.approx(0.05 / 3)
    assert rule.statistic_threshold == pytest.approx(math.log(60))
    assert rule.statistic > rule.statistic_threshold
    assert rule.summary.startswith("proven: canary json_valid is below stable by more than 0.01")

    # The evidence is JSON as is (for the audit log) and reads back identically.
    document = json.loads(json.dumps(verdict.model_dump(mode="json")))
    assert document["rules"][0]["canary"] == {"n": 1000, "estimate": 0.916, "variance": rule.canary.variance}
    assert Verdict.model_validate(document) == verdict


def test_non_critical_rule_is_held_until_the_step_is_mature() -> None:
    evidence = healthy().add("canary", JUDGE, _scores(400, 0.6))  # canary judge mean drops
    judge = Judge(POLICY)
    young = judge.evaluate(evidence, step=0, elapsed_seconds=120)
    assert young.decision is Decision.CONTINUE
    assert young.held == ("judge.relative",)
    assert young.rules[2].status is RuleStatus.HELD
    assert young.rules[2].summary.startswith("proven, acting once the step reaches")
    assert not young.ready
    mature = judge.evaluate(evidence, step=0, elapsed_seconds=600)
    assert mature.decision is Decision.BREACH
    assert (mature.action, mature.rule_id) == (RuleAction.PAUSE, "judge.relative")
    assert mature.held == ()


def test_signal_level_critical_acts_at_once() -> None:
    policy = POLICY.model_copy(
        update={
            "signals": tuple(s.model_copy(update={"critical": s.name == "judge"}) for s in POLICY.signals)
        }
    )
    evidence = healthy().add("canary", JUDGE, _scores(400, 0.6))
    verdict = Judge(Policy.model_validate(policy.model_dump())).evaluate(evidence, step=0, elapsed_seconds=5)
    assert verdict.decision is Decision.BREACH
    assert verdict.rules[2].critical


def test_most_severe_action_wins() -> None:
    evidence = (
        healthy()
        .add("canary", REFUSAL, _p(1000, 700))  # answer rate far below the 0.9 floor: alert
        .add("canary", JUDGE, _scores(400, 0.5))  # judge far worse: pause
    )
    verdict = Judge(POLICY).evaluate(evidence, step=0, elapsed_seconds=900)
    assert verdict.breached == ("refusal.absolute", "judge.relative")
    assert (verdict.action, verdict.rule_id) == (RuleAction.PAUSE, "judge.relative")
    evidence = evidence.add("canary", JSON_VALID, _p(1000, 800))
    verdict = Judge(POLICY).evaluate(evidence, step=0, elapsed_seconds=900)
    assert verdict.breached == ("json_valid.relative", "refusal.absolute", "judge.relative")
    assert (verdict.action, verdict.rule_id) == (RuleAction.ROLLBACK, "json_valid.relative")


def test_readiness_reasons() -> None:
    verdict = Judge(POLICY).evaluate(healthy(2000, 60), step=0, elapsed_seconds=100)
    assert not verdict.ready
    assert verdict.waiting_for == (
        "the step has run 100 s of its 600 s minimum",
        "the canary cohort has 60 of the 100 samples the step needs",
        "signal 'judge' has 15 of the 100 canary samples it must have (must_have_data)",
    )


def test_must_have_data_blocks_an_otherwise_ready_step() -> None:
    evidence = Snapshot(
        stable={JSON_VALID: _p(3000, 2970), JUDGE: _scores(99, 0.8)},
        canary={JSON_VALID: _p(500, 495), JUDGE: _scores(120, 0.8)},
    )
    verdict = Judge(POLICY).evaluate(evidence, step=1, elapsed_seconds=3600)
    assert verdict.decision is Decision.CONTINUE
    assert not verdict.ready
    assert verdict.waiting_for == (
        "signal 'judge' has 99 of the 100 stable samples it must have (must_have_data)",
    )
    more = evidence.add("stable", JUDGE, _scores(3, 0.8))
    assert Judge(POLICY).evaluate(more, step=1, elapsed_seconds=3600).ready


def test_last_step_needs_no_stable_traffic() -> None:
    rollout = healthy()
    step = Snapshot(canary={JSON_VALID: _p(300, 297), JUDGE: _scores(120, 0.8)})
    verdict = Judge(POLICY).evaluate(rollout, step=2, elapsed_seconds=700, step_evidence=step)
    assert verdict.canary_percent == 100
    assert (verdict.stable_samples, verdict.canary_samples) == (0, 300)
    assert verdict.ready
    not_last = Judge(POLICY).evaluate(rollout, step=1, elapsed_seconds=700, step_evidence=step)
    assert not not_last.ready
    assert "the stable cohort has 0 of the 100 samples the step needs" in not_last.waiting_for


def test_rules_wait_for_warmup_samples() -> None:
    evidence = Snapshot(stable={JSON_VALID: _p(1000, 990)}, canary={JSON_VALID: _p(29, 10)})
    rule = Judge(POLICY).evaluate(evidence, step=0, elapsed_seconds=0).rules[0]
    assert rule.status is RuleStatus.INSUFFICIENT_DATA
    assert rule.summary == "waiting for data: canary has 29 of the 30 samples needed"
    assert rule.estimate is None and rule.bound is None and rule.statistic is None
    assert rule.canary.n == 29 and rule.canary.estimate == pytest.approx(10 / 29)


def test_constant_scores_give_no_decision() -> None:
    evidence = Snapshot(stable={JUDGE: MeanStats.of([0.5] * 50)}, canary={JUDGE: MeanStats.of([0.5] * 50)})
    rule = Judge(POLICY).evaluate(evidence, step=0, elapsed_seconds=0).rules[2]
    assert rule.status is RuleStatus.INSUFFICIENT_DATA
    assert rule.summary == "waiting for data: no spread has been observed yet"


def test_same_inputs_same_verdict() -> None:
    evidence = healthy().add("canary", JSON_VALID, _p(100, 90))
    judge = Judge(DEFAULT_POLICY)
    first = judge.evaluate(evidence, step=2, elapsed_seconds=42.5)
    assert Judge(DEFAULT_POLICY).evaluate(evidence, step=2, elapsed_seconds=42.5) == first
    assert first.elapsed_seconds == 42.5


def test_bad_input_is_refused() -> None:
    judge = Judge(POLICY)
    with pytest.raises(InvalidInputError, match=r"step 3 is outside the policy's ramp of 3 steps \(0..2\)"):
        judge.evaluate(Snapshot(), step=3, elapsed_seconds=0)
    with pytest.raises(InvalidInputError, match="elapsed_seconds must be finite and >= 0"):
        judge.evaluate(Snapshot(), step=0, elapsed_seconds=-1)
    wrong = Snapshot(canary={JSON_VALID: MeanStats.of([1.0, 0.0])})
    with pytest.raises(
        InvalidInputError,
        match=re.escape(
            "canary statistics of 'prompt_canary.check.json_valid' are of kind 'mean', but the "
            "policy's signal is a proportion"
        ),
    ):
        judge.evaluate(wrong, step=0, elapsed_seconds=0)


def test_unknown_attributes_are_ignored() -> None:
    evidence = healthy().add("canary", "prompt_canary.check.other", _p(10, 0))
    assert Judge(POLICY).evaluate(evidence, step=0, elapsed_seconds=900).ready


def test_judge_exposes_its_parameters() -> None:
    judge = Judge(DEFAULT_POLICY)
    assert judge.policy is DEFAULT_POLICY
    assert judge.rule_alpha == pytest.approx(0.05 / 3)
    assert repr(judge) == "Judge(rules=3, alpha_per_rule=0.0166667)"


def test_ratio_rules_judge_rates_of_bad_outcomes_against_stable() -> None:
    """Count data: refusals per call (the check's failures) and tool errors per call (a score)."""
    policy = load_policy(
        """
signals:
  - {name: refusal, kind: proportion, harmful: decrease}
  - {name: tool_errors, kind: mean, harmful: increase}
rules:
  - {signal: refusal, type: relative, ratio: 2, action: rollback, critical: true}
  - {signal: tool_errors, type: relative, ratio: 1.5, action: pause, critical: true}
"""
    )
    tool_errors = "prompt_canary.score.tool_errors"
    evidence = Snapshot(
        stable={REFUSAL: _p(8000, 7920), tool_errors: MeanStats.of([0.0] * 1600 + [1.0] * 400)},
        canary={REFUSAL: _p(800, 760), tool_errors: MeanStats.of([0.0] * 160 + [1.0] * 40)},
    )
    verdict = Judge(policy).evaluate(evidence, step=0, elapsed_seconds=0)
    refusals, errors = verdict.rules
    # 5% refusals against 1%: the excess over twice stable's is 3 points, proven above 0.
    assert refusals.status is RuleStatus.BREACH and refusals.limit == 0.0
    assert refusals.estimate == pytest.approx(0.05 - 2 * 0.01)
    assert refusals.bound is not None and refusals.bound > 0
    assert refusals.summary.startswith("proven: canary refusal failures per call are above 2 times stable's")
    # The same 0.2 tool errors per call on both sides: far from 1.5 times.
    assert errors.status is RuleStatus.CONTINUE
    assert errors.estimate == pytest.approx(0.2 - 1.5 * 0.2)
    assert errors.summary.startswith("not proven: canary tool_errors per call is above 1.5 times stable's")
    assert verdict.action is RuleAction.ROLLBACK
    assert errors.rule.model_dump()["ratio"] == 1.5
    # Unset, the field is left out: a Collector processor older than it still reads the policy.
    assert "ratio" not in DEFAULT_POLICY.rules[0].model_dump()
