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


def test_bench_instrumentation_reports_four_configurations_in_process_and_against_a_server() -> None:
    figures = _run("bench_instrumentation.py", "--calls", "3", "--rounds", "2", "--warmup", "3")
    for measurement in ("in_process", "local_server"):
        found = figures[measurement]
        assert set(found["median_us"]) == {"none", "peer", "ours", "floor"}, measurement
        assert all(_positive(v) for v in found["median_us"].values()), measurement
        assert all(_positive(v) for v in found["cpu_median_us"].values()), measurement
        assert set(found["added_us"]) == set(found["cpu_added_us"]) == {"peer", "ours", "floor"}
        assert set(found["ratio_over_none"]) == {"peer", "ours", "floor"}
        assert all(_positive(v) for v in found["ratio_over_none"].values()), measurement
        # Not judged here (three calls measure nothing); present, a number or None.
        assert "ratio_added_ours_over_peer" in found and "cpu_ratio_added_ours_over_peer" in found
    assert figures["targets"] == {"ratio_added_ours_over_peer": 0.5}
    assert figures["calls_per_configuration"] == 6
    assert figures["span_events"] is False  # the default settings are what is measured


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
        "bench_loop.py",
        *("--runs", "2", "--rollouts", "20", "--report-runs", "1", "--report-intervals", "1", "--seed", "7"),
    )
    assert figures["flip_default"]["missed"] == 0
    assert _positive(figures["flip_default"]["median_s"])
    [reporting] = figures["reporting"]  # through in-app reports, every second
    assert (reporting["report_interval_s"], reporting["runs"], reporting["missed"]) == (1, 2, 0)
    assert _positive(reporting["median_s"])
    assert 0 <= figures["aa"]["sequential_false_rollbacks"] <= 1
    assert figures["ab"]["rollouts"] == 20
    for regression in ("ab", "ab_smaller"):  # the judge and the SPRT told the regression, side by side
        ab = figures[regression]
        assert all(_positive(ab[key]) for key in ("p80_over_fixed", "oracle_p80_over_fixed")), regression
    assert figures["seed"] == 7


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


def test_bench_control_plane_reports_fan_out_memory_and_304s_against_bare_uvicorn() -> None:
    figures = _run("bench_control_plane.py", "--polls", "20", "--rounds", "1", "--seconds", "0.5")
    assert figures["polls"] == 20
    for server in ("control_plane", "baseline"):
        result = figures[server]
        assert all(_positive(result["fanout_ms"][p]) for p in ("p50", "p99", "max")), server
        assert _positive(result["not_modified_per_s"]), server
        assert isinstance(result["rss_kib_per_poll"], int | float), server
    assert _positive(figures["fanout_p99_over_baseline"]) and _positive(figures["not_modified_over_baseline"])
    assert figures["targets"] == {"fanout_p99_ms": 250, "not_modified_per_s": 2000}


def test_bench_eval_reports_throughput_at_three_concurrencies_against_the_raw_sdk() -> None:
    figures = _run("bench_eval.py", "--cases", "4", "--rounds", "1", "--latency", "0")
    assert set(figures["concurrency"]) == {"1", "8", "32"}
    for row in figures["concurrency"].values():
        assert _positive(row["eval_cases_per_s"]) and _positive(row["raw_calls_per_s"])
        assert _positive(row["eval_over_raw_throughput"]) and math.isfinite(row["overhead_ms_per_case"])
    marginal = {"eval_marginal_ms", "raw_marginal_ms", "overhead_marginal_ms", "run_setup_ms"}
    assert set(figures["per_case"]) == marginal


def test_bench_drift_reports_detection_delays_and_the_aa_false_alarms_against_an_hourly_test() -> None:
    drift = ("--runs", "2", "--days", "4", "--aa-runs", "2", "--aa-days", "3")
    figures = _run("bench_drift.py", *drift, "--eval-cases", "4")
    assert [step["drop_points"] for step in figures["steps"]] == [1, 2, 5]
    for step in figures["steps"]:
        assert step["runs"] == 2 and 0 <= step["detected"] <= 2
        if step["detected"]:
            assert _positive(step["median_delay_samples"]) and _positive(step["median_delay_hours"])
        assert "ratio_over_hourly" in step and "hourly_median_delay_hours" in step
    aa = figures["aa"]
    assert (aa["runs"], aa["days"], aa["configured_alpha"]) == (2, 3, 0.01)
    assert 0 <= aa["false_alarms"] <= 2 and aa["windows_judged"] > 0
    # The eval run's throughput (benchmarks/bench_eval.py), reported beside the drift figures.
    assert set(figures["eval_run"]["concurrency"]) == {"1", "8", "32"}


def test_bench_console_reports_the_rollout_page_against_the_api_verdict() -> None:
    figures = _run("bench_console.py", "--days", "0.25", "--renders", "2")
    assert figures["windows"] == 360  # six hours of one-minute windows
    assert figures["rows"] == 360 * 2 * 4  # both cohorts, four signals
    for timed in ("page_ms", "verdict_ms"):
        assert all(_positive(figures[timed][k]) for k in ("median", "p95", "max")), timed
    assert _positive(figures["ratio_over_verdict"]) and figures["page_bytes"] > 0
    assert figures["target_ms"] == 300
    assert isinstance(figures["target_met"], bool) and isinstance(figures["p95_within_target"], bool)
