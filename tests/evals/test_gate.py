"""The evaluation gate at rollout start: a policy's ``gate`` refuses a candidate without a passing
run and says which; ``skip_gate`` starts it anyway, recorded in the audit trail. On SQLite and
PostgreSQL, against the simulated LLM."""

from __future__ import annotations

from typing import Any

import pytest

from otel_prompt_canary.analysis.policy import Gate, load_policy
from otel_prompt_canary.demo.behaviour import Behaviour, Reply
from otel_prompt_canary.errors import ConflictError, InvalidInputError
from otel_prompt_canary.evals import (
    Dataset,
    EvalSettings,
    SqlEvalStore,
    gate_verdict,
    read_dataset,
    run_evaluation,
)
from otel_prompt_canary.loop.start import start_rollout
from otel_prompt_canary.registry import RolloutState, SqlRegistry
from tests.evals.golden import BILLING_CASES, dataset_yaml


def policy(**gate: Any) -> dict[str, Any]:
    """The default policy's json_valid rule, with a gate on the golden set."""
    return {
        "signals": [{"name": "json_valid", "kind": "proportion", "harmful": "decrease"}],
        "rules": [{"signal": "json_valid", "type": "relative", "margin": 0.01, "action": "rollback"}],
        "gate": {"dataset": "support-golden", **gate},
    }


def evaluate(
    prompts: SqlRegistry, store: SqlEvalStore, golden: Dataset, settings: EvalSettings, version: int
) -> str:
    run = run_evaluation(prompts.get_version("support-bot", version), golden, settings, actor="ana")
    store.record_run(run)
    return run.run_id


def test_a_candidate_breaking_one_class_is_refused_naming_its_cases_then_started_with_skip_gate(
    prompts: SqlRegistry, store: SqlEvalStore, golden: Dataset, settings: EvalSettings
) -> None:
    baseline = evaluate(prompts, store, golden, settings, 1)
    evaluate(prompts, store, golden, settings, 2)
    gated = policy(min_pass_rate=0.9, max_regression=0.05)

    with pytest.raises(ConflictError) as refused:
        start_rollout(prompts, "support-bot", 2, policy=gated, actor="ana", reason="friendlier tone")
    message = str(refused.value)
    assert message.startswith("support-bot@2 on support-golden@1 does not pass the evaluation gate: ")
    assert (
        "the pass rate is 66.7% (8/12), below 90.0%; failed cases: billing-1, billing-2, billing-3, billing-4"
        in message
    )
    # Four broken cases of twelve are no proof of a regression (p = 1/16): the pass rate says it.
    assert "fell from" not in message and baseline not in message
    assert "start with --skip-gate" in message
    assert prompts.get_route("support-bot").state is RolloutState.IDLE

    route = start_rollout(
        prompts, "support-bot", 2, policy=gated, actor="ana", reason="hotfix, checked by hand", skip_gate=True
    )
    assert route.state is RolloutState.RAMPING
    start = prompts.history("support-bot")[-1]
    assert start.reason.startswith(
        "hotfix, checked by hand [evaluation gate skipped; it would refuse: the pass rate"
    )
    assert start.actor == "ana" and "failed cases: billing-1, billing-2, billing-3, billing-4" in start.reason
    # The audit record's evidence says the same in fields: the run, what it measured, every problem.
    assert (
        isinstance(start.evidence, dict)
        and start.evidence["policy"] == prompts.get_rollout("support-bot").policy
    )
    gate = start.evidence["gate"]
    assert isinstance(gate, dict)
    candidate = store.list_runs("support-bot", version=2, limit=1)[0].run_id
    assert (gate["outcome"], gate["passed"], gate["run_id"], gate["baseline_run_id"]) == (
        "skipped",
        False,
        candidate,
        baseline,
    )
    assert gate["failed_cases"] == list(BILLING_CASES) and gate["failed_cases_count"] == 4
    (problem,) = gate["problems"]
    assert isinstance(problem, str) and problem.startswith("the pass rate is 66.7% (8/12), below 90.0%")
    assert gate["totals"] == {
        "cases": 12,
        "passed": 8,
        "failed": 4,
        "errors": 0,
        "checks": gate["totals"]["checks"],
        "judge_mean": gate["totals"]["judge_mean"],
        "judged": 12,
        "pass_rate": 8 / 12,
    }
    (pass_signal,) = [s for s in gate["signals"] if s["signal"] == "pass"]
    assert (pass_signal["worse"], pass_signal["better"], pass_signal["p_value"]) == (4, 0, 1 / 16)


def test_four_broken_cases_are_not_proof_of_a_regression_but_six_are(
    prompts: SqlRegistry, store: SqlEvalStore, golden: Dataset, settings: EvalSettings, behaviour: Behaviour
) -> None:
    # Four discordant pairs cannot reach p < 0.05 in a one-sided exact test (1/16); six can (1/64).
    evaluate(prompts, store, golden, settings, 1)
    evaluate(prompts, store, golden, settings, 2)
    version = prompts.get_version("support-bot", 2)
    regression_only = Gate(dataset="support-golden", max_regression=0.0)
    assert gate_verdict(store, regression_only, version=version, stable_version=1).passed

    behaviour.when(system_contains="Be warm", user_contains="track", reply=Reply(text="Sure! Not JSON."))
    behaviour.when(system_contains="Be warm", user_contains="deliver", reply=Reply(text="Sure! Not JSON."))
    evaluate(prompts, store, golden, settings, 2)
    verdict = gate_verdict(store, regression_only, version=version, stable_version=1)
    assert not verdict.passed
    assert verdict.worse_cases == (*BILLING_CASES, "shipping-2", "shipping-3")
    assert "p=0.0156 < 0.05" in verdict.problems[0]
    assert gate_verdict(
        store, Gate(dataset="support-golden", max_regression=0.6), version=version, stable_version=1
    ).passed  # a drop of 50 points is within an allowed 60


def test_an_equivalent_candidate_passes_and_the_audit_record_names_its_run(
    prompts: SqlRegistry, store: SqlEvalStore, golden: Dataset, settings: EvalSettings
) -> None:
    evaluate(prompts, store, golden, settings, 1)
    run_id = evaluate(prompts, store, golden, settings, 3)
    gated = policy(min_pass_rate=0.9, min_check_pass_rates={"json_valid": 1.0}, min_judge_score=0.9)
    route = start_rollout(prompts, "support-bot", 3, policy=gated, actor="ana", reason="lower temperature")
    assert route.state is RolloutState.RAMPING and route.canary_version == 3
    start = prompts.history("support-bot")[-1]
    assert start.reason == f"lower temperature [evaluation gate passed: run {run_id} on support-golden@1]"
    assert isinstance(start.evidence, dict)
    gate = start.evidence["gate"]
    assert isinstance(gate, dict) and isinstance(gate["totals"], dict)
    assert (gate["outcome"], gate["run_id"], gate["problems"], gate["totals"]["pass_rate"]) == (
        "passed",
        run_id,
        [],
        1.0,
    )
    stored = prompts.get_rollout("support-bot").policy
    assert stored is not None and stored["gate"] == {
        "dataset": "support-golden",
        "min_pass_rate": 0.9,
        "min_check_pass_rates": {"json_valid": 1.0},
        "min_judge_score": 0.9,
        "max_regression": 0.0,
        "alpha": 0.05,
    }


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        (
            "nothing",
            "there is no complete evaluation run: "
            "run `prompt-canary eval run support-bot 3 --dataset support-golden`",
        ),
        ("no dataset", "prompt 'support-bot' has no dataset 'support-golden': push it with"),
        ("incomplete", "there is no complete evaluation run (the newest, "),
        ("stale", "there is no complete evaluation run: run"),
        ("no baseline", "there is no complete run of support-bot@1 on support-golden@1 to compare with"),
    ],
)
def test_a_missing_or_unusable_run_is_named(
    prompts: SqlRegistry,
    store: SqlEvalStore,
    settings: EvalSettings,
    behaviour: Behaviour,
    setup: str,
    expected: str,
) -> None:
    if setup != "no dataset":
        golden = store.push_dataset(read_dataset(dataset_yaml(), source="golden.yaml")).dataset
        if setup != "no baseline":
            evaluate(prompts, store, golden, settings, 1)
    if setup == "incomplete":
        behaviour.when(user_contains="password", reply=Reply.failure(503))
        evaluate(prompts, store, golden, settings, 3)
    if setup in ("stale", "no baseline"):
        evaluate(prompts, store, golden, settings, 3)
    if setup == "stale":  # the dataset changed since the run
        store.push_dataset(read_dataset(dataset_yaml().replace("[sorry]", "[sorry, oops]"), source="g.yaml"))
    with pytest.raises(ConflictError) as refused:
        start_rollout(prompts, "support-bot", 3, policy=policy(), actor="ana", reason="try")
    assert expected in str(refused.value)


@pytest.mark.parametrize(
    ("gate", "message"),
    [
        ({"min_pass_rate": 1.5}, "gate.min_pass_rate: Input should be less than or equal to 1"),
        (
            {"min_check_pass_rates": {"JSON": 1}},
            "gate.min_check_pass_rates.JSON.[key]: String should match pattern",
        ),
        ({"alpha": 0}, "gate.alpha: Input should be greater than 0"),
        ({"dataset": "no spaces"}, "gate.dataset: invalid dataset name 'no spaces'"),
        ({"because": 1}, "gate.because: unknown field"),
    ],
)
def test_a_bad_gate_is_refused_with_the_policy(gate: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        load_policy(policy(**gate))
    assert message in str(caught.value)


class _WrittenAgainstTheInterface:
    """A registry written against the ``Registry`` interface: its ``start_rollout`` takes no
    evidence (the interface does not have it)."""

    def __init__(self, store: SqlRegistry) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def start_rollout(
        self,
        name: str,
        version: int,
        *,
        ramp: tuple[float, ...] | None = None,
        actor: str,
        reason: str = "",
        policy: dict[str, Any] | None = None,
        expected_revision: int | None = None,
    ) -> Any:
        return self._store.start_rollout(
            name,
            version,
            ramp=ramp,
            actor=actor,
            reason=reason,
            policy=policy,
            expected_revision=expected_revision,
        )


def test_a_registry_of_the_interface_keeps_the_gate_in_words_only(
    prompts: SqlRegistry, store: SqlEvalStore, golden: Dataset, settings: EvalSettings
) -> None:
    evaluate(prompts, store, golden, settings, 1)
    run_id = evaluate(prompts, store, golden, settings, 3)
    registry = _WrittenAgainstTheInterface(prompts)
    start_rollout(registry, "support-bot", 3, policy=policy(), actor="ana", reason="t", evals=store)  # type: ignore[arg-type]
    start = prompts.history("support-bot")[-1]
    assert start.reason == f"t [evaluation gate passed: run {run_id} on support-golden@1]"
    assert isinstance(start.evidence, dict) and set(start.evidence) == {"policy"}


def test_a_start_evidence_cannot_replace_its_policy(prompts: SqlRegistry) -> None:
    with pytest.raises(InvalidInputError, match="holds its policy already"):
        prompts.start_rollout("support-bot", 2, actor="ana", reason="r", evidence={"policy": {}})
    assert prompts.get_route("support-bot").state is RolloutState.IDLE
