"""The public face of otel_prompt_canary.analysis: changes here are deliberate."""

from __future__ import annotations

import importlib
from pathlib import Path

import otel_prompt_canary.analysis as analysis

PUBLIC = {
    # policy
    "DEFAULT_POLICY", "DEFAULT_POLICY_YAML", "DEFAULT_RAMP", "Direction", "Policy", "Ramp", "RampStep",
    "Rule", "RuleAction", "RuleType", "Signal", "SignalKind", "Statistics", "load_policy",
    "policy_json_schema",
    # statistics
    "MEAN_SCALE", "Cohort", "MeanStats", "ProportionStats", "Report", "Snapshot", "Stats",
    "merge_stats", "quantize", "window_start",
    # sequential test
    "CohortMoments", "SequentialTest", "cohort_moments", "compare_rates", "compare_to_stable",
    "compare_to_threshold", "confidence_radius", "log_mixture_ratio", "mixture_centre", "mixture_test",
    # judge and verdicts
    "Judge", "CohortEvidence", "Decision", "RuleStatus", "RuleVerdict", "Verdict",
    # the policy as Prometheus rules
    "prometheus_rules",
}  # fmt: skip

MODULES = ["policy", "stats", "sequential", "verdict", "judge", "prometheus"]


def test_public_names_are_exactly_these() -> None:
    assert set(analysis.__all__) == PUBLIC
    for name in PUBLIC:
        assert getattr(analysis, name) is not None


def test_every_module_has_a_docstring_and_all() -> None:
    for name in MODULES:
        module = importlib.import_module(f"otel_prompt_canary.analysis.{name}")
        assert module.__doc__ and len(module.__doc__) > 100, name
        for public in module.__all__:
            assert hasattr(module, public), f"{name}.{public}"


def test_the_package_is_pure() -> None:
    """analysis imports no other subpackage of otel_prompt_canary (the leaves errors, names, samples
    and yaml_documents excepted: samples, the counting rule shared with the application side,
    imports only errors; yaml_documents, the bounded YAML reader, only PyYAML)."""
    for name in MODULES:
        module = importlib.import_module(f"otel_prompt_canary.analysis.{name}")
        source = Path(module.__file__ or "").read_text(encoding="utf-8")
        for line in source.splitlines():
            if line.startswith(("import ", "from ")) and "otel_prompt_canary" in line:
                assert line.startswith(
                    (
                        "from otel_prompt_canary.analysis",
                        "from otel_prompt_canary.errors",
                        "from otel_prompt_canary.names",
                        "from otel_prompt_canary.samples",
                        "from otel_prompt_canary.yaml_documents",
                    )
                ), f"{name}: {line}"
