"""Replays every shared vector in tests/vectors/ the way its README tells any implementation to."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from otel_prompt_canary.analysis import Judge, Snapshot, Verdict, load_policy

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
FILES = sorted(VECTORS.glob("*.json"))
NUMBERS = ("estimate", "variance", "radius", "bound", "statistic")


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("vector_generator", VECTORS / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


def _close(got: float | None, want: float | None, tolerance: float) -> bool:
    if got is None or want is None:
        return got is None and want is None
    return abs(got - want) <= tolerance * max(1.0, abs(want))


def _compare(verdict: Verdict, expect: dict[str, Any], tolerance: float, where: str) -> None:
    exact = {
        "decision": verdict.decision.value,
        "action": None if verdict.action is None else verdict.action.value,
        "rule_id": verdict.rule_id,
        "breached": list(verdict.breached),
        "held": list(verdict.held),
        "ready": verdict.ready,
        "stable_samples": verdict.stable_samples,
        "canary_samples": verdict.canary_samples,
    }
    assert exact == {key: expect[key] for key in exact}, where
    assert [r.rule_id for r in verdict.rules] == [r["rule_id"] for r in expect["rules"]], where
    for rule, want in zip(verdict.rules, expect["rules"], strict=True):
        assert rule.status.value == want["status"], f"{where} rule {rule.rule_id}"
        for name in NUMBERS:
            got = getattr(rule, name)
            assert _close(got, want[name], tolerance), (
                f"{where} rule {rule.rule_id} {name}: got {got!r}, want {want[name]!r}"
            )


def test_there_are_vectors_for_every_required_case() -> None:
    names = {path.stem for path in FILES}
    assert {
        "proportion_relative_breach",
        "mean_relative_breach",
        "absolute_rule",
        "aa_never_breaches",
        "must_have_data_blocks_advance",
        "zero_successes",
        "all_successes",
        "tiny_samples",
        "unequal_cohorts",
        "ratio_rule",
    } <= names


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_vector_replays_decision_for_decision(path: Path) -> None:
    vector = json.loads(path.read_text(encoding="utf-8"))
    assert vector["format"] == 1
    judge = Judge(load_policy(vector["policy"]))
    evidence = step_evidence = Snapshot()
    previous_step: int | None = None
    for index, tick in enumerate(vector["ticks"]):
        increment = Snapshot.model_validate({"stable": tick["stable"], "canary": tick["canary"]})
        if tick["step"] != previous_step:
            step_evidence, previous_step = Snapshot(), tick["step"]
        evidence, step_evidence = evidence.merge(increment), step_evidence.merge(increment)
        verdict = judge.evaluate(
            evidence,
            step=tick["step"],
            elapsed_seconds=tick["elapsed_seconds"],
            step_evidence=step_evidence,
        )
        _compare(verdict, tick["expect"], vector["tolerance"], f"{path.name} tick {index}")


def test_vectors_show_what_their_names_say() -> None:
    def ticks(name: str) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = json.loads((VECTORS / f"{name}.json").read_text())["ticks"]
        return data

    aa = ticks("aa_never_breaches")
    assert all(t["expect"]["decision"] == "continue" for t in aa)
    assert aa[-1]["step"] == 4 and aa[-1]["expect"]["ready"]
    for name, action in [
        ("proportion_relative_breach", "rollback"),
        ("mean_relative_breach", "pause"),
        ("absolute_rule", "rollback"),
    ]:
        assert ticks(name)[-1]["expect"]["action"] == action, name
    assert any(t["expect"]["held"] for t in ticks("mean_relative_breach"))
    blocked = ticks("must_have_data_blocks_advance")
    assert not blocked[0]["expect"]["ready"] and blocked[-1]["expect"]["ready"]
    assert {t["expect"]["action"] for t in ticks("severity_order")} >= {"alert", "pause", "rollback"}

    def statuses(tick: dict[str, Any]) -> dict[str, str]:
        return {r["rule_id"]: r["status"] for r in tick["expect"]["rules"]}

    zero = ticks("zero_successes")[-1]
    assert statuses(zero) == {
        "json_valid.relative": "breach",
        "json-floor": "breach",
        "refusal.relative": "continue",  # zero successes on both sides prove nothing
    }
    every = ticks("all_successes")
    assert all(t["expect"]["decision"] == "continue" for t in every)
    assert all(statuses(t)["judge.relative"] == "insufficient_data" for t in every)  # no spread
    assert every[-1]["step"] == 2 and every[-1]["expect"]["ready"]
    tiny = ticks("tiny_samples")
    assert tiny[-1]["expect"]["action"] == "rollback" and tiny[-1]["expect"]["canary_samples"] < 20
    unequal = ticks("unequal_cohorts")
    last = unequal[-1]["expect"]
    assert last["breached"] == ["json_valid.relative", "json-failures-ratio"]
    assert last["stable_samples"] > 50 * last["canary_samples"]  # about 1 canary sample in 100
    rates = ticks("ratio_rule")[-1]
    assert statuses(rates) == {"refusal.relative": "breach", "tool_errors.relative": "continue"}
    assert all(r["bound"] > 0 for r in rates["expect"]["rules"] if r["status"] == "breach")


def test_committed_vectors_match_the_generator() -> None:
    generator = _load_generator()
    for scenario in generator.scenarios():
        path = VECTORS / f"{scenario.name}.json"
        assert path.read_text(encoding="utf-8") == generator.render(generator.build(scenario)), (
            f"{path.name} is stale: run `.venv/bin/python tests/vectors/generate.py`"
        )
