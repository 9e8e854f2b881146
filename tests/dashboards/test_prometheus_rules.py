"""The Prometheus rules pass ``promtool``, and their unit tests catch a wrong rule.

The unit tests themselves (dashboards/prometheus/prompt-canary.rules.test.yml) fire each alert on
a regressing canary at the time its ``for`` allows, and keep it silent on a healthy canary and on a
canary with too few samples. Here, each mutation below breaks one rule in a way a careless edit
could, and the unit tests must then fail.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.dashboards.support import RULES, RULES_TEST, fast_rules, rule_groups
from tests.support.services import promtool

#: (what is wrong, text of the rules, what replaces it, how many times it occurs).
MUTATIONS = [
    ("rollback margin raised to 30 points", ") > 0.20", ") > 0.30", 1),
    ("rollback alert waits 1 minute", "for: 5m", "for: 1m", 1),
    ("pause alerts wait 5 minutes", "for: 10m", "for: 5m", 2),
    (
        "no minimum of canary checks",
        'increase(prompt_canary_checks_total{prompt_canary_cohort="canary"}[5m])\n            ) >= 100',
        'increase(prompt_canary_checks_total{prompt_canary_cohort="canary"}[5m])\n            ) >= 0',
        2,
    ),
    (
        "canary compared with itself",
        'prompt_canary:check_failure_ratio:rate5m{prompt_canary_cohort="stable"}',
        'prompt_canary:check_failure_ratio:rate5m{prompt_canary_cohort="canary"}',
        2,
    ),
    (
        "a flawless stable has no failure ratio",
        "(prompt_canary:check_failures:rate5m or prompt_canary:checks:rate5m * 0)",
        "(prompt_canary:check_failures:rate5m)",
        1,
    ),
    (
        "successes counted as errors",
        'rate(prompt_canary_responses_total{error_type!=""}[5m])',
        'rate(prompt_canary_responses_total{error_type=""}[5m])',
        1,
    ),
    (
        "failed calls in the duration percentiles",
        'rate(prompt_canary_duration_seconds_bucket{error_type=""}[5m])',
        "rate(prompt_canary_duration_seconds_bucket[5m])",
        1,
    ),
    ("no 250 ms latency floor", ") > 0.25", ") > 0", 1),
    (
        "output tokens limit lowered to 1.2 times",
        'gen_ai_token_type="output", prompt_canary_cohort="stable"}\n              )\n          ) > 1.5',
        'gen_ai_token_type="output", prompt_canary_cohort="stable"}\n              )\n          ) > 1.2',
        1,
    ),
    (
        "input tokens compared",
        'gen_ai_token_type="output", prompt_canary_cohort=',
        'gen_ai_token_type="input", prompt_canary_cohort=',
        4,
    ),
    ("judge score margin raised to 0.4", "          ) > 0.1\n", "          ) > 0.4\n", 1),
    (
        "every score compared as the judge's",
        'prompt_canary:score:mean5m{gen_ai_evaluation_name="judge", prompt_canary_cohort=',
        "prompt_canary:score:mean5m{prompt_canary_cohort=",
        2,
    ),
]


def _promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def test_promtool_checks_the_rules_and_their_fast_copy(tmp_path: Path) -> None:
    checked = _promtool("check", "rules", str(RULES), cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 24 rules found" in checked.stdout
    fast = tmp_path / "fast.rules.yml"
    fast.write_text(fast_rules(RULES.read_text()))
    checked = _promtool("check", "rules", str(fast), cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_unit_tests_pass(tmp_path: Path) -> None:
    tested = _promtool("test", "rules", str(RULES_TEST), cwd=tmp_path)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


@pytest.mark.parametrize(
    ("wrong", "text", "replacement", "occurrences"), MUTATIONS, ids=[m[0] for m in MUTATIONS]
)
def test_the_unit_tests_catch_a_wrong_rule(
    tmp_path: Path, wrong: str, text: str, replacement: str, occurrences: int
) -> None:
    rules = RULES.read_text()
    assert rules.count(text) == occurrences, f"the rules changed: update the mutation {wrong!r}"
    (tmp_path / RULES.name).write_text(rules.replace(text, replacement))
    shutil.copy(RULES_TEST, tmp_path / RULES_TEST.name)
    still_valid = _promtool("check", "rules", RULES.name, cwd=tmp_path)
    assert still_valid.returncode == 0, still_valid.stdout + still_valid.stderr
    tested = _promtool("test", "rules", RULES_TEST.name, cwd=tmp_path)
    assert tested.returncode != 0, f"the unit tests did not notice: {wrong}"
    assert "FAILED" in tested.stdout + tested.stderr


def test_every_alert_names_the_prompt_and_an_action_the_control_plane_reads() -> None:
    (records, alerts) = rule_groups()
    assert all("record" in rule for rule in records["rules"])
    assert len(alerts["rules"]) == 6
    for rule in alerts["rules"]:
        labels, annotations = rule["labels"], rule["annotations"]
        assert labels["prompt"] == "{{ $labels.gen_ai_prompt_name }}", rule["alert"]
        assert (labels["action"], labels["severity"]) in {("rollback", "critical"), ("pause", "warning")}
        assert "rollout_id" not in labels  # the metrics carry none (docs/dashboards.md)
        assert set(annotations) == {"summary", "description"}
        assert rule["alert"].startswith("PromptCanary")
    # Only a gross check regression asks for a rollback.
    assert [r["alert"] for r in alerts["rules"] if r["labels"]["action"] == "rollback"] == [
        "PromptCanaryCheckFailuresFarAboveStable"
    ]
