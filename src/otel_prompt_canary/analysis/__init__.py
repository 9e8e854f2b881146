"""The canary judge: per-prompt policies, mergeable statistics and anytime-valid verdicts.

Pure: depends on nothing but pydantic, PyYAML and :mod:`otel_prompt_canary.errors`, so the service,
the demo and tests can all use it, and ``tests/vectors/`` pins its decisions for the Go processor.

- :mod:`~otel_prompt_canary.analysis.policy`: the policy document (ramp, signals, rules), its
  validation, :func:`load_policy`, :func:`policy_json_schema` and :data:`DEFAULT_POLICY`;
- :mod:`~otel_prompt_canary.analysis.stats`: mergeable statistics per cohort, signal and window;
- :mod:`~otel_prompt_canary.analysis.sequential`: the anytime-valid test, a normal mixture centred on
  a regression;
- :mod:`~otel_prompt_canary.analysis.judge` and :mod:`~otel_prompt_canary.analysis.verdict`: the
  :class:`Judge` and the :class:`Verdict` it returns;
- :mod:`~otel_prompt_canary.analysis.prometheus`: :func:`prometheus_rules`, a policy as Prometheus
  rules that alert with the same bound.
"""

from __future__ import annotations

from otel_prompt_canary.analysis.judge import Judge
from otel_prompt_canary.analysis.policy import (
    DEFAULT_POLICY,
    DEFAULT_POLICY_YAML,
    DEFAULT_RAMP,
    Direction,
    Policy,
    Ramp,
    RampStep,
    Rule,
    RuleAction,
    RuleType,
    Signal,
    SignalKind,
    Statistics,
    load_policy,
    policy_json_schema,
)
from otel_prompt_canary.analysis.prometheus import prometheus_rules
from otel_prompt_canary.analysis.sequential import (
    CohortMoments,
    SequentialTest,
    cohort_moments,
    compare_rates,
    compare_to_stable,
    compare_to_threshold,
    confidence_radius,
    log_mixture_ratio,
    mixture_centre,
    mixture_test,
)
from otel_prompt_canary.analysis.stats import (
    MEAN_SCALE,
    Cohort,
    MeanStats,
    ProportionStats,
    Report,
    Snapshot,
    Stats,
    merge_stats,
    quantize,
    window_start,
)
from otel_prompt_canary.analysis.verdict import (
    CohortEvidence,
    Decision,
    RuleStatus,
    RuleVerdict,
    Verdict,
)

__all__ = [
    "DEFAULT_POLICY",
    "DEFAULT_POLICY_YAML",
    "DEFAULT_RAMP",
    "MEAN_SCALE",
    "Cohort",
    "CohortEvidence",
    "CohortMoments",
    "Decision",
    "Direction",
    "Judge",
    "MeanStats",
    "Policy",
    "ProportionStats",
    "Ramp",
    "RampStep",
    "Report",
    "Rule",
    "RuleAction",
    "RuleStatus",
    "RuleType",
    "RuleVerdict",
    "SequentialTest",
    "Signal",
    "SignalKind",
    "Snapshot",
    "Statistics",
    "Stats",
    "Verdict",
    "cohort_moments",
    "compare_rates",
    "compare_to_stable",
    "compare_to_threshold",
    "confidence_radius",
    "load_policy",
    "log_mixture_ratio",
    "merge_stats",
    "mixture_centre",
    "mixture_test",
    "policy_json_schema",
    "prometheus_rules",
    "quantize",
    "window_start",
]
