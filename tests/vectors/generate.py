"""Regenerate the shared judge vectors in this folder from the Python judge.

    .venv/bin/python tests/vectors/generate.py          # rewrite the *.json vectors
    .venv/bin/python tests/vectors/generate.py --check  # exit 1 if a committed vector differs

Each scenario draws its traffic from a seeded :class:`random.Random`, feeds it tick by tick to
:class:`~otel_prompt_canary.analysis.Judge` exactly the way README.md tells a replayer to, and writes
the increments with the expected verdict after each tick. A scenario whose bound lands within
``TIE_GUARD`` of a rule's limit is refused: a vector must not hinge on the last bits of a float.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from otel_prompt_canary.analysis import (
    DEFAULT_POLICY_YAML,
    Judge,
    MeanStats,
    Policy,
    ProportionStats,
    Snapshot,
    Verdict,
    load_policy,
)

HERE = Path(__file__).resolve().parent
FORMAT = 1
TOLERANCE = 1e-9
TIE_GUARD = 1e-6
TICK_SECONDS = 60.0

#: How one request of a cohort turns into signal values: attribute -> draw(rng) -> value or None.
Draw = Callable[[random.Random], "bool | float | None"]


def bernoulli(p: float) -> Draw:
    return lambda rng: rng.random() < p


def tokens(mean: float) -> Draw:
    """An output-token count, exponential around ``mean`` (long answers are rare but long)."""
    return lambda rng: float(1 + int(rng.expovariate(1 / mean)))


def sampled(rate: float, draw: Draw) -> Draw:
    """Only a share ``rate`` of requests get this signal (a sampled LLM judge, say)."""
    return lambda rng: draw(rng) if rng.random() < rate else None


def always(value: bool | float) -> Draw:
    """Every request gets ``value``: a check that never (or always) passes, a constant score."""
    return lambda rng: value


def events(rate: float) -> Draw:
    """A count of bad events in one call (tool errors, say), Poisson with mean ``rate``."""

    def draw(rng: random.Random) -> float:
        # Knuth's method: fine for the small rates of per-call counts.
        limit, k, product = math.exp(-rate), 0, rng.random()
        while product > limit:
            k += 1
            product *= rng.random()
        return float(k)

    return draw


def judge_score(mean: float) -> Draw:
    """A judge score in [0, 1], in steps of 0.05, around ``mean``."""

    def draw(rng: random.Random) -> float:
        value = min(1.0, max(0.0, rng.gauss(mean, 0.2)))
        return round(value * 20) / 20

    return draw


@dataclass
class Scenario:
    name: str
    description: str
    policy_yaml: str
    seed: int
    stable: dict[str, Draw]
    canary: dict[str, Draw]
    requests_per_tick: int
    ticks: int
    advance_when_ready: bool = False
    ticks_after_breach: int = 2
    notes: list[str] = field(default_factory=list)


CHECK = "prompt_canary.check."
SCORE = "prompt_canary.score."


def scenarios() -> list[Scenario]:
    short_default = DEFAULT_POLICY_YAML.replace("min_duration_seconds: 600", "min_duration_seconds: 120")
    return [
        Scenario(
            name="proportion_relative_breach",
            description="Format validity drops from 99% to 90% in the canary; the critical relative "
            "rule proves it and asks for a rollback before the step's minimum duration.",
            policy_yaml="""
alpha: 0.05
ramp: {steps: [20, 100], min_duration_seconds: 1800, min_samples: 200}
signals:
  - {name: json_valid, kind: proportion, harmful: decrease}
rules:
  - {signal: json_valid, type: relative, margin: 0.01, action: rollback, critical: true}
""",
            seed=11,
            stable={CHECK + "json_valid": bernoulli(0.99)},
            canary={CHECK + "json_valid": bernoulli(0.90)},
            requests_per_tick=150,
            ticks=40,
        ),
        Scenario(
            name="mean_relative_breach",
            description="The LLM judge's mean score drops by 0.15 in the canary. The rule is not "
            "critical: it is held while the step is young and breaches (pause) once the step has "
            "its minimum duration and samples.",
            policy_yaml="""
alpha: 0.05
ramp: {steps: [25, 100], min_duration_seconds: 900, min_samples: 150}
signals:
  - {name: judge, kind: mean, harmful: decrease}
rules:
  - {signal: judge, type: relative, margin: 0.05, action: pause}
statistics: {target_samples: 200, warmup_samples: 30}
""",
            seed=12,
            stable={SCORE + "judge": judge_score(0.80)},
            canary={SCORE + "judge": judge_score(0.65)},
            requests_per_tick=120,
            ticks=40,
        ),
        Scenario(
            name="absolute_rule",
            description="Absolute rules on the canary alone: its format validity is 90% against "
            "a 95% floor (harmful decrease: rollback, critical signal); its mean output tokens stay "
            "near 300 against a 400 ceiling (harmful increase: alert, never proven).",
            policy_yaml="""
alpha: 0.05
ramp: {steps: [10, 50, 100], min_duration_seconds: 600, min_samples: 100}
signals:
  - {name: json_valid, kind: proportion, harmful: decrease, critical: true}
  - {name: output_tokens, kind: mean, harmful: increase}
rules:
  - {id: json-floor, signal: json_valid, type: absolute, threshold: 0.95, action: rollback}
  - {id: tokens-ceiling, signal: output_tokens, type: absolute, threshold: 400, action: alert}
""",
            seed=13,
            stable={CHECK + "json_valid": bernoulli(0.99), SCORE + "output_tokens": tokens(300)},
            canary={CHECK + "json_valid": bernoulli(0.90), SCORE + "output_tokens": tokens(300)},
            requests_per_tick=400,
            ticks=60,
        ),
        Scenario(
            name="aa_never_breaches",
            description="Canary identical to stable under the default policy (minimum duration "
            "shortened to 120 s): no rule ever breaches and the rollout walks the whole ramp, "
            "advancing whenever the verdict is ready. At 100% the stable cohort gets no traffic "
            "and is not required.",
            policy_yaml=short_default,
            seed=14,
            stable={
                CHECK + "json_valid": bernoulli(0.98),
                CHECK + "refusal": bernoulli(0.98),
                SCORE + "judge": sampled(0.2, judge_score(0.75)),
            },
            canary={
                CHECK + "json_valid": bernoulli(0.98),
                CHECK + "refusal": bernoulli(0.98),
                SCORE + "judge": sampled(0.2, judge_score(0.75)),
            },
            requests_per_tick=2000,
            ticks=36,
            advance_when_ready=True,
        ),
        Scenario(
            name="must_have_data_blocks_advance",
            description="Only 1% of requests get an LLM judge score and the signal is "
            "must_have_data: the step has its duration and samples long before the judge signal "
            "has 100 samples in both cohorts, and only then becomes ready.",
            policy_yaml="""
alpha: 0.05
ramp: {steps: [50, 100], min_duration_seconds: 300, min_samples: 100}
signals:
  - {name: json_valid, kind: proportion, harmful: decrease}
  - {name: judge, kind: mean, harmful: decrease, must_have_data: true}
rules:
  - {signal: json_valid, type: relative, margin: 0.02, action: rollback, critical: true}
  - {signal: judge, type: relative, margin: 0.1, action: pause}
""",
            seed=15,
            stable={
                CHECK + "json_valid": bernoulli(0.97),
                SCORE + "judge": sampled(0.01, judge_score(0.7)),
            },
            canary={
                CHECK + "json_valid": bernoulli(0.97),
                SCORE + "judge": sampled(0.01, judge_score(0.7)),
            },
            requests_per_tick=1000,
            ticks=30,
        ),
        Scenario(
            name="severity_order",
            description="Four rules breach one after the other: the most severe action wins "
            "(rollback over pause over alert) and, between rules with the same action, the one "
            "listed first in the policy.",
            policy_yaml="""
alpha: 0.05
ramp: {steps: [50, 100], min_duration_seconds: 60, min_samples: 30}
signals:
  - {name: json_valid, kind: proportion, harmful: decrease}
  - {name: refusal, kind: proportion, harmful: decrease}
rules:
  - {id: format-alert, signal: json_valid, type: absolute, threshold: 0.97, action: alert}
  - {id: refusal-rollback, signal: refusal, type: relative, margin: 0.0, action: rollback}
  - {id: format-pause, signal: json_valid, type: relative, margin: 0.05, action: pause}
  - {id: format-rollback, signal: json_valid, type: relative, margin: 0.1, action: rollback}
""",
            seed=22,
            stable={CHECK + "json_valid": bernoulli(0.99), CHECK + "refusal": bernoulli(0.98)},
            canary={CHECK + "json_valid": bernoulli(0.80), CHECK + "refusal": bernoulli(0.92)},
            requests_per_tick=60,
            ticks=40,
            ticks_after_breach=25,
        ),
        Scenario(
            name="per_step_ramp_walk",
            description="Canary identical to stable, walking a ramp whose steps set their own "
            "minimums: 5% holds 10 minutes (the ramp's 100 samples), 20% two minutes but 600 "
            "samples per cohort, 50% the ramp's 240 s and 100 samples, 100% one minute and 300 "
            "canary samples. Each step becomes ready at its own elapsed time.",
            policy_yaml="""
alpha: 0.05
ramp:
  min_duration_seconds: 240
  min_samples: 100
  steps:
    - {percent: 5, min_duration: 10m}
    - {percent: 20, min_duration: 2m, min_samples: 600}
    - 50
    - {percent: 100, min_duration: 60, min_samples: 300}
signals:
  - {name: json_valid, kind: proportion, harmful: decrease}
  - {name: refusal, kind: proportion, harmful: decrease}
rules:
  - {signal: json_valid, type: relative, margin: 0.01, action: rollback, critical: true}
  - {signal: refusal, type: relative, margin: 0.01, action: rollback, critical: true}
""",
            seed=17,
            stable={CHECK + "json_valid": bernoulli(0.98), CHECK + "refusal": bernoulli(0.98)},
            canary={CHECK + "json_valid": bernoulli(0.98), CHECK + "refusal": bernoulli(0.98)},
            requests_per_tick=1000,
            ticks=40,
            advance_when_ready=True,
        ),
        Scenario(
            name="per_step_hold",
            description="The LLM judge's mean score drops by 0.15 in the canary, under a rule that "
            "is not critical. The first step sets its own 15 minutes and 150 samples (the ramp's "
            "are 120 s and 100): the proven rule stays held past 120 s and breaches (pause) only "
            "once the step's own minimums are met.",
            policy_yaml="""
alpha: 0.05
ramp:
  min_duration_seconds: 120
  min_samples: 100
  steps: [{percent: 25, min_duration: 15m, min_samples: 150}, 100]
signals:
  - {name: judge, kind: mean, harmful: decrease}
rules:
  - {signal: judge, type: relative, margin: 0.05, action: pause}
statistics: {target_samples: 200, warmup_samples: 30}
""",
            seed=18,
            stable={SCORE + "judge": judge_score(0.80)},
            canary={SCORE + "judge": judge_score(0.65)},
            requests_per_tick=120,
            ticks=40,
        ),
        Scenario(
            name="zero_successes",
            description="The canary's JSON never parses (zero successes) while stable's does 98% of "
            "the time: the relative rule and the absolute floor are both proven. The refusal check "
            "never passes in either cohort: zero successes on both sides prove nothing.",
            policy_yaml="""
alpha: 0.05
ramp: {steps: [5, 100], min_duration_seconds: 600, min_samples: 50}
signals:
  - {name: json_valid, kind: proportion, harmful: decrease, critical: true}
  - {name: refusal, kind: proportion, harmful: decrease}
rules:
  - {signal: json_valid, type: relative, margin: 0.05, action: rollback}
  - {id: json-floor, signal: json_valid, type: absolute, threshold: 0.5, action: pause}
  - {signal: refusal, type: relative, margin: 0.0, action: alert}
""",
            seed=19,
            stable={CHECK + "json_valid": bernoulli(0.98), CHECK + "refusal": always(False)},
            canary={CHECK + "json_valid": always(False), CHECK + "refusal": always(False)},
            requests_per_tick=200,
            ticks=30,
        ),
        Scenario(
            name="all_successes",
            description="Every check passes in both cohorts and the judge score is always 1.0: the "
            "regularised variances keep the checks' tests running and nothing is proven (neither "
            "against stable, nor against a 90% floor, nor as a failure rate), the constant score "
            "shows no spread (insufficient data), and the ramp is walked to 100%.",
            policy_yaml="""
alpha: 0.05
ramp: {steps: [10, 50, 100], min_duration_seconds: 120, min_samples: 100}
signals:
  - {name: json_valid, kind: proportion, harmful: decrease}
  - {name: judge, kind: mean, harmful: decrease}
rules:
  - {signal: json_valid, type: relative, margin: 0.0, action: rollback, critical: true}
  - {id: json-floor, signal: json_valid, type: absolute, threshold: 0.9, action: pause}
  - {id: json-failures-ratio, signal: json_valid, type: relative, ratio: 1.0, action: alert}
  - {signal: judge, type: relative, margin: 0.0, action: pause}
""",
            seed=20,
            stable={CHECK + "json_valid": always(True), SCORE + "judge": always(1.0)},
            canary={CHECK + "json_valid": always(True), SCORE + "judge": always(1.0)},
            requests_per_tick=400,
            ticks=30,
            advance_when_ready=True,
        ),
        Scenario(
            name="tiny_samples",
            description="A handful of requests per tick and a warm-up of 2 samples: rules on a "
            "score wait for two samples per cohort, every bound is wide, and a canary that fails "
            "every check is proven worse within a few dozen samples.",
            policy_yaml="""
alpha: 0.05
ramp: {steps: [50, 100], min_duration_seconds: 60, min_samples: 3}
signals:
  - {name: json_valid, kind: proportion, harmful: decrease, critical: true}
  - {name: judge, kind: mean, harmful: decrease}
rules:
  - {signal: json_valid, type: relative, margin: 0.0, action: rollback}
  - {signal: judge, type: relative, margin: 0.1, action: pause}
statistics: {target_samples: 20, warmup_samples: 2}
""",
            seed=21,
            stable={CHECK + "json_valid": bernoulli(0.95), SCORE + "judge": judge_score(0.8)},
            canary={CHECK + "json_valid": bernoulli(0.05), SCORE + "judge": judge_score(0.75)},
            requests_per_tick=3,
            ticks=40,
        ),
        Scenario(
            name="unequal_cohorts",
            description="A 1% canary (about 1 request in 100) whose JSON validity drops from 99% to "
            "92%: the margin rule and the count-data rule (failures per call above twice "
            "stable's) prove it from a few hundred canary samples against tens of thousands "
            "of stable ones.",
            policy_yaml="""
alpha: 0.05
ramp: {steps: [1, 100], min_duration_seconds: 600, min_samples: 100}
signals:
  - {name: json_valid, kind: proportion, harmful: decrease, critical: true}
rules:
  - {signal: json_valid, type: relative, margin: 0.01, action: rollback}
  - {id: json-failures-ratio, signal: json_valid, type: relative, ratio: 2.0, action: pause}
""",
            seed=22,
            stable={CHECK + "json_valid": bernoulli(0.99)},
            canary={CHECK + "json_valid": bernoulli(0.92)},
            requests_per_tick=4000,
            ticks=40,
        ),
        Scenario(
            name="ratio_rule",
            description="Count-data rules: refusals per call (the refusal check's failures) rise "
            "from 1% to 5% on the canary, more than twice stable's, and are proven; tool errors per "
            "call (a score counting them, Poisson with mean 0.2 on both sides) stay within 1.5 "
            "times stable's and are not.",
            policy_yaml="""
alpha: 0.05
ramp: {steps: [20, 100], min_duration_seconds: 900, min_samples: 200}
signals:
  - {name: refusal, kind: proportion, harmful: decrease, critical: true}
  - {name: tool_errors, kind: mean, harmful: increase}
rules:
  - {signal: refusal, type: relative, ratio: 2.0, action: rollback}
  - {signal: tool_errors, type: relative, ratio: 1.5, action: pause}
""",
            seed=23,
            stable={CHECK + "refusal": bernoulli(0.99), SCORE + "tool_errors": events(0.2)},
            canary={CHECK + "refusal": bernoulli(0.95), SCORE + "tool_errors": events(0.2)},
            requests_per_tick=500,
            ticks=60,
        ),
    ]


def _increments(
    rng: random.Random, draws: dict[str, Draw], requests: int
) -> dict[str, ProportionStats | MeanStats]:
    outcomes: dict[str, list[bool]] = {}
    scores: dict[str, list[float]] = {}
    for _ in range(requests):
        for attribute, draw in draws.items():
            value = draw(rng)
            if value is None:
                continue
            if isinstance(value, bool):
                outcomes.setdefault(attribute, []).append(value)
            else:
                scores.setdefault(attribute, []).append(value)
    out: dict[str, ProportionStats | MeanStats] = {}
    for attribute, values in outcomes.items():
        out[attribute] = ProportionStats.of(values)
    for attribute, numbers in scores.items():
        out[attribute] = MeanStats.of(numbers)
    return dict(sorted(out.items()))


def expectation(verdict: Verdict) -> dict[str, Any]:
    """The part of a verdict a replayer must reproduce (README.md, "Comparing")."""
    return {
        "decision": verdict.decision.value,
        "action": None if verdict.action is None else verdict.action.value,
        "rule_id": verdict.rule_id,
        "breached": list(verdict.breached),
        "held": list(verdict.held),
        "ready": verdict.ready,
        "stable_samples": verdict.stable_samples,
        "canary_samples": verdict.canary_samples,
        "rules": [
            {
                "rule_id": rule.rule_id,
                "status": rule.status.value,
                "estimate": rule.estimate,
                "variance": rule.variance,
                "radius": rule.radius,
                "bound": rule.bound,
                "statistic": rule.statistic,
            }
            for rule in verdict.rules
        ],
    }


def _guard_ties(name: str, index: int, verdict: Verdict) -> None:
    for rule in verdict.rules:
        if rule.bound is not None and abs(rule.bound - rule.limit) < TIE_GUARD:
            raise SystemExit(
                f"{name}: tick {index} rule {rule.rule_id} bound {rule.bound!r} is within "
                f"{TIE_GUARD} of its limit; change the scenario's seed"
            )


def build(scenario: Scenario) -> dict[str, Any]:
    """Simulate ``scenario`` and return its vector document."""
    policy: Policy = load_policy(scenario.policy_yaml)
    judge = Judge(policy)
    rng = random.Random(scenario.seed)
    total = step_total = Snapshot()
    step, elapsed = 0, 0.0
    ticks: list[dict[str, Any]] = []
    breach_at: int | None = None
    for index in range(scenario.ticks):
        weight = policy.ramp.percents[step] / 100
        canary_requests = sum(rng.random() < weight for _ in range(scenario.requests_per_tick))
        increments = {
            "stable": _increments(rng, scenario.stable, scenario.requests_per_tick - canary_requests),
            "canary": _increments(rng, scenario.canary, canary_requests),
        }
        elapsed += TICK_SECONDS
        part = Snapshot.model_validate(increments)
        total, step_total = total.merge(part), step_total.merge(part)
        verdict = judge.evaluate(total, step=step, elapsed_seconds=elapsed, step_evidence=step_total)
        _guard_ties(scenario.name, index, verdict)
        ticks.append(
            {
                "step": step,
                "elapsed_seconds": elapsed,
                "stable": {k: v.model_dump(mode="json") for k, v in increments["stable"].items()},
                "canary": {k: v.model_dump(mode="json") for k, v in increments["canary"].items()},
                "expect": expectation(verdict),
            }
        )
        if verdict.decision == "breach" and breach_at is None:
            breach_at = index
        if breach_at is not None and index - breach_at >= scenario.ticks_after_breach:
            break
        if scenario.advance_when_ready and verdict.ready:
            if step + 1 == len(policy.ramp.steps):
                break  # ready at the last step: the canary would be promoted
            step, elapsed, step_total = step + 1, 0.0, Snapshot()
    return {
        "format": FORMAT,
        "name": scenario.name,
        "description": scenario.description,
        "tolerance": TOLERANCE,
        "policy": policy.model_dump(mode="json", exclude_none=True),
        "ticks": ticks,
    }


def render(vector: dict[str, Any]) -> str:
    return json.dumps(vector, indent=1) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    stale = []
    for scenario in scenarios():
        path = HERE / f"{scenario.name}.json"
        text = render(build(scenario))
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(path.name)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(HERE.parent.parent)}")
    if stale:
        print("stale vectors (run tests/vectors/generate.py): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
