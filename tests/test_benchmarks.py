"""Every Python benchmark runs, on tiny settings, and reports its figures as one JSON line.

The figures are not judged here (timings belong to the benchmarks, on a quiet machine); what is
locked is that each benchmark still runs against the current code and reports what it measured.
(``bench_collector.py`` needs the built distribution: tests/collector runs it.)
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.services import promtool

BENCHMARKS = Path(__file__).parents[1] / "benchmarks"


def _run(name: str, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / name), *args, "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def test_bench_instrumentation_reports_the_four_configurations() -> None:
    figures = _run("bench_instrumentation.py", "--calls", "3", "--rounds", "2", "--warmup", "3")
    assert set(figures["median_us"]) == {"none", "peer", "ours", "floor"}
    assert all(_positive(v) for v in figures["median_us"].values())
    assert set(figures["added_us"]) == {"peer", "ours", "floor"}
    for ratio in ("ratio_ours_over_none", "ratio_peer_over_none", "ratio_floor_over_none"):
        assert _positive(figures[ratio]), ratio
    assert figures["targets"] == {"ratio_ours_over_none": 1.10, "ratio_added_ours_over_peer": 1.5}
    assert figures["calls_per_configuration"] == 6


def test_bench_router_reports_selection_and_flip_figures() -> None:
    figures = _run("bench_router.py", "--keys", "2000", "--repeat", "1", "--flips", "2")
    for key in ("selections_per_s", "select_over_hash", "hash_ns_per_call"):
        assert _positive(figures[key]), key
    assert figures["flips"] == 2 and _positive(figures["flip_http_ms"]["p50"])
    assert 0 < figures["canary_share"] < 1


def test_bench_checks_reports_the_default_checks_against_json_parsing() -> None:
    figures = _run("bench_checks.py", "--calls", "50", "--repeat", "1")
    assert figures["checks"] == ["json_valid", "max_output_tokens", "truncation", "refusal"]
    assert figures["cases"] and all(_positive(case["ratio"]) for case in figures["cases"])


def test_bench_loop_reports_flips_and_the_statistics() -> None:
    figures = _run(
        "bench_loop.py", "--runs", "2", "--rollouts", "20", "--report-runs", "1", "--report-intervals", "1"
    )
    assert figures["flip_default"]["missed"] == 0
    assert _positive(figures["flip_default"]["median_s"])
    [reporting] = figures["reporting"]  # through in-app reports, every second
    assert (reporting["report_interval_s"], reporting["runs"], reporting["missed"]) == (1, 2, 0)
    assert _positive(reporting["median_s"])
    assert 0 <= figures["aa"]["sequential_false_rollbacks"] <= 1
    assert figures["ab"]["rollouts"] == 20


def test_bench_controller_reports_every_age_against_the_full_read() -> None:
    figures = _run("bench_controller.py", "--hours", "0.5,2", "--repeat", "2")
    assert [age["hours"] for age in figures["ages"]] == [0.5, 2]
    assert [age["windows"] for age in figures["ages"]] == [30, 120]
    for age in figures["ages"]:
        for key in ("assess_ms", "snapshots_ms", "full_read_ms", "report_ms", "full_read_over_snapshots"):
            assert _positive(age[key]), key
    assert all(_positive(figures[k]) for k in ("growth_assess", "growth_full_read", "growth_report"))


def test_bench_policy_rules_measures_both_rule_files_in_a_real_prometheus() -> None:
    promtool()  # Debian's prometheus package: skipped locally without it, a failure in CI
    figures = _run(
        "bench_policy_rules.py",
        *("--hours", "1", "--canary-hours", "0.5", "--horizon", "1h", "--every", "1", "--evaluations", "2"),
    )
    assert figures["samples"] == 13_680  # 1 h of stable series and 30 min of canary ones, every 15 s
    # The generated rules found exactly the stable traffic concurrent with the canary: 30 minutes
    # of 15 json_valid checks per scrape.
    assert figures["stable_samples_recorded"] == pytest.approx(1_800, rel=1e-9)
    assert _positive(figures["shipped_ms"]) and _positive(figures["generated_ms"])
    assert figures["generated_rules"] == 48
