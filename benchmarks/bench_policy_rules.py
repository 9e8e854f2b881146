"""Policy rules benchmark: what the rules of ``prompt-canary policy rules`` cost a real Prometheus.

The generated rules count a canary over a long horizon (24 hours by default) and its concurrent
stable traffic through a subquery over that horizon, once per resolution step: heavier than the
shipped 5-minute rules. This benchmark measures both on the same data, in the same Prometheus:

- it writes ``--hours`` of one prompt's metrics, scraped every 15 seconds, as the instrumentation
  exports them (responses, checks, scores, durations and tokens, stable and canary; the canary runs
  for the last ``--canary-hours``), and turns them into TSDB blocks with ``promtool tsdb
  create-blocks-from openmetrics``;
- it starts Debian's ``prometheus`` on 127.0.0.1 over those blocks with two rule files: the
  shipped ``dashboards/prometheus/prompt-canary.rules.yml`` (the baseline) and the rules generated
  from the default policy, both evaluated every ``--every`` seconds (the generated group's own
  interval is one minute: each evaluation costs the same, only their number differs);
- it reads each group's evaluation time from ``prometheus_rule_group_last_duration_seconds`` over
  ``--evaluations`` evaluations and prints the medians and their ratio.

It prints the figures and never asserts; ``--json`` prints one JSON object with every figure as the
last line. Needs ``prometheus`` and ``promtool`` (``apt-get install prometheus``). Run:
``.venv/bin/python benchmarks/bench_policy_rules.py [--json] [--hours 24] [--evaluations 12]``.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from otel_prompt_canary.analysis import DEFAULT_POLICY, prometheus_rules

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "dashboards" / "prometheus" / "prompt-canary.rules.yml"
PROMPT = "support-reply"
SCRAPE = 15
DURATION_BUCKETS = (0.25, 0.5, 1, 2.5, 5, 10, 30)
TOKEN_BUCKETS = (16, 64, 256, 1024, 4096)


def _histogram(name: str, labels: str, buckets: tuple[float, ...], total: float) -> dict[str, float]:
    """A histogram's series: 15 observations per scrape, spread over its buckets, summing to ``total``."""
    bounds = (*buckets, "+Inf")
    series = {
        f'{name}_bucket{{{labels},le="{le}"}}': 15.0 * (i + 1) / len(bounds) for i, le in enumerate(bounds)
    }
    return series | {f"{name}_sum{{{labels}}}": total, f"{name}_count{{{labels}}}": 15.0}


def _series(cohort: str, version: str) -> dict[str, float]:
    """One cohort's series (name and labels -> increment per scrape), as the instrumentation exports them."""
    base = f'gen_ai_prompt_name="{PROMPT}",gen_ai_prompt_version="{version}",prompt_canary_cohort="{cohort}"'
    series = {
        f'prompt_canary_responses_total{{{base},error_type=""}}': 15.0,
        f'prompt_canary_responses_total{{{base},error_type="503"}}': 0.2,
    }
    for check in ("json_valid", "refusal", "truncation", "max_output_tokens"):
        for outcome, per_scrape in (("pass", 14.7), ("fail", 0.3)):
            labels = f'{base},prompt_canary_check="{check}",prompt_canary_check_outcome="{outcome}"'
            series[f"prompt_canary_checks_total{{{labels}}}"] = per_scrape
    score = f'{base},gen_ai_evaluation_name="judge"'
    series |= {f"prompt_canary_score_sum{{{score}}}": 3.2, f"prompt_canary_score_count{{{score}}}": 4.0}
    series |= _histogram("prompt_canary_duration_seconds", f'{base},error_type=""', DURATION_BUCKETS, 18.0)
    for kind in ("input", "output"):
        series |= _histogram(
            "prompt_canary_token_usage", f'{base},gen_ai_token_type="{kind}"', TOKEN_BUCKETS, 3000.0
        )
    return series


def _write_openmetrics(path: Path, hours: float, canary_hours: float, now: int) -> int:
    """The metrics of the ``hours`` before ``now`` as OpenMetrics text; returns the number of samples.

    Each series name is its own family of type ``unknown``: PromQL's ``increase`` and ``rate`` do not
    read types, and the names are exactly those of a scrape.
    """
    start, canary_start = now - int(hours * 3600), now - int(canary_hours * 3600)
    families: dict[str, list[str]] = {}
    samples = 0
    for first, series in ((start, _series("stable", "1")), (canary_start, _series("canary", "2"))):
        for key, increment in series.items():
            lines = families.setdefault(key.split("{")[0], [])
            for n, t in enumerate(range(first, now, SCRAPE)):
                lines.append(f"{key} {n * increment:.1f} {t}")
            samples += len(range(first, now, SCRAPE))
    with path.open("w") as out:
        for name, lines in families.items():
            out.write(f"# TYPE {name} unknown\n")
            out.write("\n".join(lines) + "\n")
        out.write("# EOF\n")
    return samples


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _durations(client: httpx.Client) -> dict[str, tuple[float, float]]:
    """Each rule group's last evaluation: (its timestamp, its duration in seconds)."""
    found = client.get("/api/v1/rules").raise_for_status().json()["data"]["groups"]
    return {g["name"]: (g["lastEvaluation"], g["evaluationTime"]) for g in found}


def _measure(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    prometheus, promtool = shutil.which("prometheus"), shutil.which("promtool")
    if not (prometheus and promtool):
        raise SystemExit("needs prometheus and promtool: apt-get install prometheus")
    # On a minute: the canary starts on a resolution step, so its concurrent stable traffic is exact.
    now = int(time.time()) // 60 * 60
    written = time.perf_counter()
    samples = _write_openmetrics(root / "data.om", args.hours, args.canary_hours, now)
    subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(root / "data.om"), str(root / "data")],
        check=True,
        capture_output=True,
    )
    (root / "data.om").unlink()
    backfill_s = time.perf_counter() - written

    every = f"{args.every}s"
    generated = prometheus_rules(DEFAULT_POLICY, PROMPT, horizon=args.horizon)
    # Evaluated every --every seconds to measure many evaluations soon; each costs the same.
    evaluated = re.sub(r"(?m)^  interval: \S+$", f"  interval: {every}", generated, count=1)
    (root / "generated.rules.yml").write_text(evaluated)
    shutil.copy(SHIPPED, root / "shipped.rules.yml")
    (root / "prometheus.yml").write_text(
        f"global:\n  evaluation_interval: {every}\nrule_files: [shipped.rules.yml, generated.rules.yml]\n"
    )
    port = _free_port()
    command = [
        prometheus,
        f"--config.file={root / 'prometheus.yml'}",
        f"--storage.tsdb.path={root / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]
    with (
        subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) as server,
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client,
    ):
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if client.get("/-/ready").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("prometheus did not start")
                time.sleep(0.2)
            seen: dict[str, dict[str, float]] = {}
            deadline = time.monotonic() + args.evaluations * args.every * 3 + 60
            while min((len(v) for v in seen.values()), default=0) < args.evaluations or len(seen) < 3:
                if time.monotonic() > deadline:
                    raise SystemExit(f"too few rule evaluations: {seen}")
                for group, (at, took) in _durations(client).items():
                    if not at.startswith("0001"):  # not evaluated yet
                        seen.setdefault(group, {})[at] = took
                time.sleep(args.every / 3)
            # The generated rules found the canary: json_valid's stable samples concurrent with it.
            recorded = client.get(
                "/api/v1/query",
                params={"query": 'prompt_canary:policy_stable_samples{prompt_canary_signal="json_valid"}'},
            ).json()["data"]["result"]
        finally:
            server.terminate()
            server.wait(timeout=30)
    if not recorded:
        raise SystemExit("the generated rules recorded nothing: the data does not look like a canary")

    def median_ms(groups: list[str]) -> float:
        """The groups' median evaluation times, added up (each group runs on its own schedule)."""
        return round(sum(statistics.median(seen[g].values()) for g in groups) * 1000, 2)

    shipped = [g for g in seen if not g.startswith("prompt-canary.policy.")]
    policy = [g for g in seen if g.startswith("prompt-canary.policy.")]
    shipped_ms, generated_ms = median_ms(shipped), median_ms(policy)
    return {
        "hours": args.hours,
        "canary_hours": args.canary_hours,
        "horizon": args.horizon,
        "samples": samples,
        "backfill_s": round(backfill_s, 1),
        "evaluations": args.evaluations,
        "stable_samples_recorded": float(recorded[0]["value"][1]),
        "shipped_ms": shipped_ms,
        "generated_ms": generated_ms,
        "generated_over_shipped": round(generated_ms / shipped_ms, 2) if shipped_ms else None,
        "generated_rules": generated.count("- record:") + generated.count("- alert:"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, default=24, help="hours of metrics written")
    parser.add_argument("--canary-hours", type=float, default=6, help="the canary's last hours of them")
    parser.add_argument("--horizon", default="24h", help="the generated rules' --horizon")
    parser.add_argument("--every", type=int, default=5, help="seconds between evaluations")
    parser.add_argument("--evaluations", type=int, default=12, help="evaluations measured per group")
    parser.add_argument("--json", action="store_true", help="print every figure as one JSON line")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-policy-rules-") as root:
        figures = _measure(Path(root), args)
    print(
        f"{figures['samples']:,} samples over {args.hours:g} h (canary the last {args.canary_hours:g} h), "
        f"backfilled in {figures['backfill_s']} s"
    )
    print(f"shipped rules (2 groups, 23 rules): {figures['shipped_ms']} ms per evaluation (median)")
    print(
        f"generated rules ({figures['generated_rules']} rules, horizon {args.horizon}): "
        f"{figures['generated_ms']} ms per evaluation, {figures['generated_over_shipped']}x the shipped rules"
    )
    if args.json:
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
