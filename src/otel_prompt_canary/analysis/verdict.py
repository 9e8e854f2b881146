"""What the judge returns: a verdict per rule, with its evidence, and the overall decision.

A :class:`Verdict` answers two questions about a rollout at one moment:

- ``decision``: ``breach`` when at least one rule is proven (its ``action`` and ``rule_id`` say
  which and what to do: the most severe action wins, ``rollback`` > ``pause`` > ``alert``), else
  ``continue``;
- ``ready``: whether the current ramp step may advance (or, at the last step, the canary be
  promoted): the step has run its minimum duration, collected its minimum samples per cohort, every
  ``must_have_data`` signal has its samples and no rule is in breach. ``waiting_for`` says why not.

Each :class:`RuleVerdict` carries its evidence: the counts, estimates and variances of both
cohorts, the contrast, its confidence bound against the rule's limit, and the test statistic.
Everything is a pydantic model, so ``verdict.model_dump(mode="json")`` is the audit record's
evidence as is.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from otel_prompt_canary.analysis.policy import Direction, Rule, RuleAction, SignalKind

__all__ = ["CohortEvidence", "Decision", "RuleStatus", "RuleVerdict", "Verdict"]


class Decision(StrEnum):
    """``continue``: no rule is proven (yet); ``breach``: a rule is proven and its action applies."""

    CONTINUE = "continue"
    BREACH = "breach"


class RuleStatus(StrEnum):
    """Where one rule stands.

    ``insufficient_data``: a compared cohort has fewer than ``warmup_samples`` samples, or no spread
    has been observed yet; ``continue``: evaluated, not proven; ``held``: proven, but the rule is not
    critical and the step has not reached its minimum duration and samples yet (it acts once it has);
    ``breach``: proven, and its action applies now.
    """

    INSUFFICIENT_DATA = "insufficient_data"
    CONTINUE = "continue"
    HELD = "held"
    BREACH = "breach"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CohortEvidence(_Frozen):
    """One cohort's data for a rule: samples, estimate and per-sample variance estimate."""

    n: int
    estimate: float | None = Field(description="Proportion or mean; None without samples")
    variance: float | None = Field(
        description="Per-sample variance estimate (regularised for a proportion; a relative rule "
        "floors the canary's at the pooled variance); None when it cannot be computed"
    )


class RuleVerdict(_Frozen):
    """One rule's verdict and its evidence (see :mod:`otel_prompt_canary.analysis.sequential`)."""

    rule_id: str
    rule: Rule
    signal: str
    attribute: str = Field(description="The span attribute the signal reads")
    kind: SignalKind
    harmful: Direction
    critical: bool = Field(description="True when the rule or its signal is critical")
    action: RuleAction
    status: RuleStatus
    canary: CohortEvidence
    stable: CohortEvidence | None = Field(description="None for an absolute rule")
    estimate: float | None = Field(
        description="The contrast: canary minus stable (relative), the canary's rate of bad outcomes "
        "minus ratio times stable's (ratio), or the canary's value (absolute)"
    )
    limit: float = Field(description="-margin or +margin (relative), 0 (ratio), or the threshold (absolute)")
    variance: float | None = Field(description="Variance of the contrast's estimate")
    radius: float | None = Field(
        description="Distance from the estimate to the confidence sequence's end on the harmful side"
    )
    bound: float | None = Field(
        description="Upper (harm: decrease) or lower (harm: increase, and every ratio rule) confidence "
        "bound of the contrast"
    )
    statistic: float | None = Field(
        description="Log mixture likelihood ratio at the limit (estimate clipped to the harmful side)"
    )
    statistic_threshold: float = Field(description="ln(1/alpha): the statistic breaches above it")
    alpha: float = Field(description="This rule's share of the policy's alpha")
    summary: str = Field(description="One sentence for people")


class Verdict(_Frozen):
    """The judge's answer for one rollout at one moment."""

    decision: Decision
    action: RuleAction | None = Field(description="The breached rules' most severe action")
    rule_id: str | None = Field(description="The rule that decided the action")
    breached: tuple[str, ...] = Field(description="Every rule in breach, in policy order")
    held: tuple[str, ...] = Field(description="Rules proven but waiting for the step's minimums")
    ready: bool = Field(description="The current step may advance (or be promoted at the last step)")
    waiting_for: tuple[str, ...] = Field(description="Why the step is not ready, for people")
    step: int
    canary_percent: float
    elapsed_seconds: float
    stable_samples: int = Field(description="Samples of the stable cohort in the current step")
    canary_samples: int = Field(description="Samples of the canary cohort in the current step")
    rules: tuple[RuleVerdict, ...]
