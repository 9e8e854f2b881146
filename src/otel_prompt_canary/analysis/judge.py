"""The judge: a policy applied to the statistics of both cohorts gives a :class:`Verdict`.

The judge is pure and holds no clock: the caller passes the step and how long it has run, so that
replaying the same statistics gives the same verdicts (``tests/vectors/`` relies on it)::

    judge = Judge(load_policy("policy.yaml"))
    verdict = judge.evaluate(
        report.snapshot(),                              # since the rollout started: the evidence
        step=route.step,
        elapsed_seconds=now - step_started_at,
        step_evidence=report.snapshot(since=step_started_at),  # samples of the current step
    )
    if verdict.decision == "breach": ...               # verdict.action: rollback, pause or alert
    elif verdict.ready: ...                            # advance, or promote at the last step

Rules are tested on the evidence of the whole rollout (one sequential test per rule and rollout, so
``alpha`` bounds false breaches over the whole rollout). The step's own samples decide readiness.
A critical rule (or a rule on a critical signal) acts as soon as it is proven; another rule acts
once the step has reached its minimum duration and samples (its status is ``held`` until then).
Each step's minimums are its own when the policy's ramp gives them, else the ramp's
(``Ramp.min_duration_at`` and ``Ramp.min_samples_at``).
"""

from __future__ import annotations

import math

from otel_prompt_canary.analysis.policy import Direction, Policy, Rule, RuleType, SignalKind
from otel_prompt_canary.analysis.sequential import (
    SequentialTest,
    cohort_moments,
    compare_rates,
    compare_to_stable,
    compare_to_threshold,
)
from otel_prompt_canary.analysis.stats import (
    Cohort,
    MeanStats,
    ProportionStats,
    Snapshot,
    empty_stats,
)
from otel_prompt_canary.analysis.verdict import (
    CohortEvidence,
    Decision,
    RuleStatus,
    RuleVerdict,
    Verdict,
)
from otel_prompt_canary.errors import InvalidInputError

__all__ = ["Judge"]


class Judge:
    """Judges a rollout against one policy. Stateless between calls; safe to share."""

    def __init__(self, policy: Policy) -> None:
        self._policy = policy
        self._alpha = policy.rule_alpha

    def __repr__(self) -> str:
        return f"Judge(rules={len(self._policy.rules)}, alpha_per_rule={self._alpha:g})"

    @property
    def policy(self) -> Policy:
        """The policy this judge applies."""
        return self._policy

    @property
    def rule_alpha(self) -> float:
        """Each rule's share of the policy's alpha."""
        return self._alpha

    def evaluate(
        self,
        evidence: Snapshot,
        *,
        step: int,
        elapsed_seconds: float,
        step_evidence: Snapshot | None = None,
    ) -> Verdict:
        """The verdict on a rollout at ramp step ``step`` (an index into the policy's ramp).

        ``evidence`` holds the statistics since the rollout started; ``step_evidence`` those since
        the current step started (default: ``evidence``, for a rollout judged step by step).
        ``elapsed_seconds`` is how long the current step has run.
        """
        policy = self._policy
        steps = policy.ramp.percents
        if not 0 <= step < len(steps):
            raise InvalidInputError(
                f"step {step} is outside the policy's ramp of {len(steps)} steps (0..{len(steps) - 1})"
            )
        if not (math.isfinite(elapsed_seconds) and elapsed_seconds >= 0):
            raise InvalidInputError(f"elapsed_seconds must be finite and >= 0, got {elapsed_seconds}")
        in_step = evidence if step_evidence is None else step_evidence
        last = steps[step] == 100

        samples = {cohort: self._cohort_samples(in_step, cohort) for cohort in ("stable", "canary")}
        waiting = self._immaturity(samples, step, elapsed_seconds, last)
        mature = not waiting
        waiting += self._missing_data(in_step, step, last)

        verdicts = tuple(self._judge_rule(rule, evidence, mature) for rule in policy.rules)
        breached = tuple(v.rule_id for v in verdicts if v.status is RuleStatus.BREACH)
        held = tuple(v.rule_id for v in verdicts if v.status is RuleStatus.HELD)
        waiting += [f"rule {rule_id!r} is in breach" for rule_id in breached]
        waiting += [
            f"rule {rule_id!r} is proven and acts once the step reaches its minimums" for rule_id in held
        ]

        action = rule_id = None
        if breached:
            deciding = max(
                (v for v in verdicts if v.status is RuleStatus.BREACH),
                key=lambda v: v.action.severity,  # max() keeps the first of equals: policy order
            )
            action, rule_id = deciding.action, deciding.rule_id
        return Verdict(
            decision=Decision.BREACH if breached else Decision.CONTINUE,
            action=action,
            rule_id=rule_id,
            breached=breached,
            held=held,
            ready=not waiting,
            waiting_for=tuple(waiting),
            step=step,
            canary_percent=steps[step],
            elapsed_seconds=elapsed_seconds,
            stable_samples=samples["stable"],
            canary_samples=samples["canary"],
            rules=verdicts,
        )

    # -- readiness ---------------------------------------------------------------------------

    def _cohort_samples(self, snapshot: Snapshot, cohort: Cohort) -> int:
        """A cohort's sample count: the n of its best-covered signal."""
        stats = snapshot.cohort(cohort)
        counts = [stats[s.attribute].n for s in self._policy.signals if s.attribute in stats]
        return max(counts, default=0)

    def _immaturity(self, samples: dict[str, int], step: int, elapsed: float, last: bool) -> list[str]:
        ramp = self._policy.ramp
        min_duration, min_samples = ramp.min_duration_at(step), ramp.min_samples_at(step)
        reasons = []
        if elapsed < min_duration:
            reasons.append(f"the step has run {elapsed:g} s of its {min_duration:g} s minimum")
        for cohort in ("canary", "stable"):
            if cohort == "stable" and last:
                continue  # at 100% the stable cohort receives no traffic
            if samples[cohort] < min_samples:
                reasons.append(
                    f"the {cohort} cohort has {samples[cohort]} of the {min_samples} samples the step needs"
                )
        return reasons

    def _missing_data(self, snapshot: Snapshot, step: int, last: bool) -> list[str]:
        minimum = self._policy.ramp.min_samples_at(step)
        reasons = []
        for signal in self._policy.signals:
            if not signal.must_have_data:
                continue
            for cohort in ("canary", "stable"):
                if cohort == "stable" and last:
                    continue
                stats = snapshot.cohort(cohort).get(signal.attribute)
                n = 0 if stats is None else stats.n
                if n < minimum:
                    reasons.append(
                        f"signal {signal.name!r} has {n} of the {minimum} {cohort} samples it "
                        "must have (must_have_data)"
                    )
        return reasons

    # -- rules -------------------------------------------------------------------------------

    def _stats(
        self, snapshot: Snapshot, cohort: Cohort, attribute: str, kind: SignalKind
    ) -> ProportionStats | MeanStats:
        stats = snapshot.cohort(cohort).get(attribute)
        if stats is None:
            return empty_stats(kind.value)
        if stats.kind != kind.value:
            raise InvalidInputError(
                f"{cohort} statistics of {attribute!r} are of kind {stats.kind!r}, but the "
                f"policy's signal is a {kind.value}"
            )
        return stats

    def _judge_rule(self, rule: Rule, evidence: Snapshot, mature: bool) -> RuleVerdict:
        policy = self._policy
        signal = policy.signal(rule.signal)
        attribute = signal.attribute
        relative = rule.type is RuleType.RELATIVE
        canary = self._stats(evidence, "canary", attribute, signal.kind)
        stable = self._stats(evidence, "stable", attribute, signal.kind) if relative else None
        if rule.ratio is not None:
            limit = 0.0  # the contrast is the canary's rate minus ratio times stable's
        elif relative:
            limit = -rule.tolerance if signal.harmful is Direction.DECREASE else rule.tolerance
        else:
            assert rule.threshold is not None  # guaranteed by Rule's validation
            limit = rule.threshold
        critical = policy.is_critical(rule)

        warmup = policy.statistics.warmup_samples
        short = [
            f"{cohort} has {stats.n} of the {warmup} samples needed"
            for cohort, stats in (("canary", canary), ("stable", stable))
            if stats is not None and stats.n < warmup
        ]
        target = policy.statistics.target_samples
        test: SequentialTest | None = None
        if not short:
            if stable is not None and rule.ratio is not None:
                test = compare_rates(
                    canary,
                    stable,
                    harmful=signal.harmful,
                    ratio=rule.ratio,
                    alpha=self._alpha,
                    target_samples=target,
                )
            elif stable is not None:
                test = compare_to_stable(
                    canary,
                    stable,
                    harmful=signal.harmful,
                    margin=rule.tolerance,
                    alpha=self._alpha,
                    target_samples=target,
                )
            else:
                test = compare_to_threshold(
                    canary,
                    harmful=signal.harmful,
                    threshold=limit,
                    alpha=self._alpha,
                    target_samples=target,
                )
            if test is None:
                short = ["no spread has been observed yet"]

        if test is None:
            status = RuleStatus.INSUFFICIENT_DATA
            summary = "waiting for data: " + "; ".join(short)
        elif not test.breach:
            status = RuleStatus.CONTINUE
            summary = "not proven: " + _describe(rule, signal.name, signal.harmful, test)
        elif critical or mature:
            status = RuleStatus.BREACH
            summary = "proven: " + _describe(rule, signal.name, signal.harmful, test)
        else:
            status = RuleStatus.HELD
            summary = "proven, acting once the step reaches its minimum duration and samples: " + _describe(
                rule, signal.name, signal.harmful, test
            )
        return RuleVerdict(
            rule_id=rule.id,
            rule=rule,
            signal=signal.name,
            attribute=attribute,
            kind=signal.kind,
            harmful=signal.harmful,
            critical=critical,
            action=rule.action,
            status=status,
            canary=_cohort_evidence(canary),
            stable=None if stable is None else _cohort_evidence(stable),
            estimate=None if test is None else test.estimate,
            limit=limit,
            variance=None if test is None else test.variance,
            radius=None if test is None else test.radius,
            bound=None if test is None else test.bound,
            statistic=None if test is None else test.statistic,
            statistic_threshold=-math.log(self._alpha),
            alpha=self._alpha,
            summary=summary,
        )


def _cohort_evidence(stats: ProportionStats | MeanStats) -> CohortEvidence:
    moments = cohort_moments(stats)
    return CohortEvidence(
        n=stats.n,
        estimate=stats.estimate,
        variance=None if moments is None else moments.variance,
    )


def _describe(rule: Rule, signal: str, harmful: Direction, test: SequentialTest) -> str:
    side = "below" if harmful is Direction.DECREASE else "above"
    which = "upper" if harmful is Direction.DECREASE else "lower"
    if rule.ratio is not None:
        # Harmful when it decreases: a check, whose bad outcomes are its failures.
        counted = (
            f"{signal} failures per call are" if harmful is Direction.DECREASE else f"{signal} per call is"
        )
        claim = f"canary {counted} above {rule.ratio:g} times stable's"
        return f"{claim} (excess {test.estimate:+.4g}, lower bound {test.bound:+.4g}, limit 0)"
    if rule.type is RuleType.RELATIVE:
        claim = f"canary {signal} is {side} stable by more than {rule.tolerance:g}"
        value = f"difference {test.estimate:+.4g}"
    else:
        claim = f"canary {signal} is {side} {test.limit:g}"
        value = f"estimate {test.estimate:.4g}"
    return f"{claim} ({value}, {which} bound {test.bound:.4g}, limit {test.limit:g})"
