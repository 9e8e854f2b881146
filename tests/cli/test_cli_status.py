"""``rollout status`` shows the judge's verdict: on a store directly and through a control plane."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from otel_prompt_canary.analysis import ProportionStats, Report
from otel_prompt_canary.loop import SqlLoopStore
from otel_prompt_canary.registry import SqlRegistry, open_store
from tests.cli.cli_helpers import SPEC_V1, SPEC_V2, Cli, write

CHECK = "prompt_canary.check.json_valid"

POLICY = """\
ramp: {steps: [10, 100], min_duration_seconds: 600, min_samples: 100}
signals:
  - {name: json_valid, kind: proportion, harmful: decrease}
rules:
  - {signal: json_valid, type: relative, margin: 0.01, action: rollback, critical: true}
"""


@pytest.fixture
def store_of(any_cli: Cli, request: pytest.FixtureRequest) -> Iterator[SqlRegistry]:
    """The store the CLI's rollouts live in: its own, or the one its control plane serves."""
    if any_cli.token:  # the remote variant
        yield request.getfixturevalue("served_store")
        return
    with open_store(any_cli.registry) as store:
        yield store


def _started(any_cli: Cli, tmp_path: Path) -> str:
    any_cli.ok("prompt", "push", write(tmp_path / "v1.yaml", SPEC_V1))
    any_cli.ok("prompt", "push", write(tmp_path / "v2.yaml", SPEC_V2))
    policy = write(tmp_path / "policy.yaml", POLICY)
    route = any_cli.json("rollout", "start", "support-bot", "2", "--policy", policy, "--reason", "warmer")
    rollout_id: str = route["rollout_id"]
    return rollout_id


def _fields(output: str) -> dict[str, list[str]]:
    """``name  value`` lines by name; continuation lines (no name) join the previous name."""
    found: dict[str, list[str]] = {}
    name = ""
    for line in output.splitlines():
        head, value = line[:10].strip(), line[10:]
        name = head or name
        found.setdefault(name, []).append(value)
    return found


def test_a_rollout_with_no_reports_says_so_plainly(any_cli: Cli, tmp_path: Path) -> None:
    _started(any_cli, tmp_path)
    fields = _fields(any_cli.ok("rollout", "status", "support-bot").stdout)
    assert fields["verdict"][0].startswith("not ready: step 1/2 (10%) has run ")
    assert fields["verdict"][0].endswith("s, with 0 stable and 0 canary samples")
    waiting = fields["waiting"]
    assert waiting[0].startswith("the step has run ")
    assert waiting[1:] == [
        "the canary cohort has 0 of the 100 samples the step needs",
        "the stable cohort has 0 of the 100 samples the step needs",
    ]
    assert fields["note"] == [
        "no reports have arrived: no sample of json_valid was ever reported for this rollout, and the "
        "controller judges only what is reported to it; see "
        "docs/control-plane.md#where-the-statistics-come-from"
    ]
    assert "breach" not in fields


def test_a_rule_in_breach_shows_with_its_evidence(
    any_cli: Cli, store_of: SqlRegistry, tmp_path: Path
) -> None:
    rollout_id = _started(any_cli, tmp_path)
    window = int(time.time()) // 60 * 60
    report = Report(
        rollout_id=rollout_id,
        window_seconds=60,
        stable={CHECK: {window: ProportionStats(n=9500, successes=9405)}},
        canary={CHECK: {window: ProportionStats(n=500, successes=469)}},
    )
    SqlLoopStore(store_of).record_report(report, source="test")
    fields = _fields(any_cli.ok("rollout", "status", "support-bot").stdout)
    assert fields["verdict"] == ["breach: rule 'json_valid.relative' is proven, action rollback"]
    summary, evidence = fields["breach"]
    assert summary.startswith(
        "json_valid.relative (rollback): proven: canary json_valid is below stable by more than 0.01 "
        "(difference -0.052, upper bound "
    )
    assert evidence.startswith("canary n=500, 0.938; stable n=9500, 0.99; statistic ")
    assert "rule 'json_valid.relative' is in breach" in fields["waiting"]
    assert "note" not in fields

    status = any_cli.json("rollout", "status", "support-bot")
    verdict = status["verdict"]["verdict"]
    assert (verdict["decision"], verdict["action"], verdict["rule_id"]) == (
        "breach",
        "rollback",
        "json_valid.relative",
    )
    (rule,) = verdict["rules"]
    assert (rule["canary"]["n"], rule["stable"]["n"], rule["status"]) == (500, 9500, "breach")


def test_the_status_says_whose_reports_count_and_what_was_ignored(
    any_cli: Cli, store_of: SqlRegistry, tmp_path: Path
) -> None:
    rollout_id = _started(any_cli, tmp_path)
    window = int(time.time()) // 60 * 60
    healthy = {CHECK: {window: ProportionStats(n=40, successes=40)}}
    report = Report(rollout_id=rollout_id, window_seconds=60, stable=healthy, canary=healthy)
    store = SqlLoopStore(store_of)
    store.record_report(report, source="e2e-gateway", report_id="pcr_" + "a" * 32, origin="collector")
    for i in range(2):  # the same calls, reported by the application too
        store.record_report(report, source="bot@host:42", report_id=f"pcr_{i:032x}", origin="application")
    fields = _fields(any_cli.ok("rollout", "status", "support-bot").stdout)
    (counted,) = fields["reports"]
    assert counted.startswith(
        "counted from origin 'collector' only (the first report of the rollout came from 'e2e-gateway' at "
    )
    assert fields["ignored"] == [
        "2 report(s) of origin 'application' (160 samples; the last from 'bot@host:42'): they report the "
        "same calls, and counting both would count every call twice; turn in-app reporting off in the "
        "applications (OTEL_PROMPT_CANARY_REPORT_INTERVAL=0)"
    ]
    status = any_cli.json("rollout", "status", "support-bot")["verdict"]
    (rule,) = status["verdict"]["rules"]
    assert (rule["canary"]["n"], rule["stable"]["n"]) == (40, 40)  # the Collector's samples only
    shown = status["report_origin"]
    assert (shown["origin"], shown["ignored_origin"], shown["ignored_reports"]) == (
        "collector",
        "application",
        2,
    )


def test_no_origin_no_line(any_cli: Cli, store_of: SqlRegistry, tmp_path: Path) -> None:
    rollout_id = _started(any_cli, tmp_path)
    report = Report(
        rollout_id=rollout_id, window_seconds=60, canary={CHECK: {0: ProportionStats(n=1, successes=1)}}
    )
    SqlLoopStore(store_of).record_report(report, source="an older sender")
    fields = _fields(any_cli.ok("rollout", "status", "support-bot").stdout)
    assert "reports" not in fields and "ignored" not in fields
    assert any_cli.json("rollout", "status", "support-bot")["verdict"]["report_origin"] is None
