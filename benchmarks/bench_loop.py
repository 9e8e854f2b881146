"""Loop benchmark: how fast a proven regression reaches the router, and what the judge costs in samples.

Three parts, each against a baseline measured in the same run:

1. **Time to flip, embedded path.** One process: an SQLite registry file, the rollout controller
   (:class:`otel_prompt_canary.service.RolloutController`) fed in process with ``observe()``, and a
   :class:`otel_prompt_canary.PromptRouter` polling the same file. A seeded stream of samples
   (stable 99% valid JSON, canary 80%) is replayed offline through the judge to find the first
   sample after which a rule is proven; the run then feeds every sample before it, waits for the
   controller to judge them (no flip), and times from feeding that first breaching sample to the
   router reporting the rollback. Median and p95 over repeated runs, for two settings: the
   controller every 0.05 s with the router polling every 0.05 s, and the defaults (controller every
   1 s, router every 0.25 s). Target: median under 1 s.
2. **Time to flip, through in-app reports.** An application instrumented in this process calls the
   simulated LLM with the real ``openai`` SDK through a :class:`~otel_prompt_canary.PromptRouter` on
   a control plane (``prompt-canary serve``'s app, uvicorn in a thread, on its own SQLite file);
   its instrumentation posts the calls' statistics to ``/v1/reports`` every ``report_interval``
   seconds, and the control plane's controller judges them. The same seeded stream is replayed as
   calls (each sample a call in its cohort, answering valid JSON or not); once the control plane
   holds every sample before the first breaching one (and has judged them: no flip), the run makes
   that call at a random phase of the report interval and times from it to the application's
   router seeing the rollback. With the default 10 s interval
   and with 1 s; the embedded path's default figure above is the baseline. Targets: median under
   15 s and under 2 s.
3. **Statistics.** (a) Canary samples to detection of the sequential judge (anytime-valid, looked at
   after every sample, a single rule with the whole alpha 0.05 and the default ``target_samples``)
   for the seed's regression (stable 99% valid JSON, canary 94%) and a smaller one (99% -> 97%),
   half the traffic on the canary: median, 80th and 95th percentiles, against the samples per arm a
   fixed-horizon one-sided z-test of the same alpha needs for 80% power. The judge's 80th percentile
   is the sample size at which it has that power, and its ratio to the fixed-horizon n is the price
   of looking at every sample. (b) False rollbacks in A/A rollouts (both cohorts 99% valid, 2,000
   samples each, a look after every sample) of the judge and of a naive rule: a fixed one-sided
   95% z-bound checked at every look. Both use the analysis package's own ``compare_to_stable``.
   Targets (``targets`` in the JSON): median at most 1.3x and 80th percentile at most 1.6x the
   fixed-horizon n, A/A at most alpha, detection (power) at least 95%. (c) The floor: on the same
   rollouts, Wald's SPRT told the true regression (``oracle_*`` in the JSON), on the judge's own
   contrast and variance; the distance between (a) and (c) is what not knowing the regression costs.
   The percentiles are Monte-Carlo estimates: between seeds (``--seed``) the 80th moves by about
   0.05x.

It prints figures and never asserts. ``--json`` prints one JSON object with every figure as the last
line. Run: ``.venv/bin/python benchmarks/bench_loop.py [--json] [--runs N] [--report-runs N]
[--report-intervals 10,1] [--rollouts N] [--seed N]``.
"""

from __future__ import annotations

import argparse
import math
import platform
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from otel_prompt_canary import PromptRouter
from otel_prompt_canary.analysis import (
    Direction,
    Judge,
    ProportionStats,
    Snapshot,
    compare_to_stable,
    load_policy,
)
from otel_prompt_canary.loop import RolloutController, start_rollout
from otel_prompt_canary.registry import PromptSpec, SqlRegistry, open_store

PROMPT = "support-reply"
CHECK = "prompt_canary.check.json_valid"
ALPHA = 0.05
Z_ALPHA = 1.6448536269514722  # one-sided 95%
Z_POWER_80 = 0.8416212335729143

# A single critical rule: the whole alpha, and the step timing never matters.
POLICY: dict[str, Any] = {
    "alpha": ALPHA,
    "ramp": {"steps": [50, 100], "min_duration_seconds": 86_400, "min_samples": 1_000_000},
    "signals": [{"name": "json_valid", "kind": "proportion", "harmful": "decrease"}],
    "rules": [
        {"signal": "json_valid", "type": "relative", "margin": 0.0, "action": "rollback", "critical": True}
    ],
}


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


# -- part 1: time to flip ---------------------------------------------------------------------------


def _stream(seed: int, length: int = 4000) -> list[tuple[str, bool]]:
    rng = random.Random(seed)
    return [
        ("stable", rng.random() < 0.99) if i % 2 == 0 else ("canary", rng.random() < 0.80)
        for i in range(length)
    ]


def _first_breaching(judge: Judge, stream: list[tuple[str, bool]]) -> int:
    """Index of the sample after which the judge first proves the rule (replayed offline)."""
    counts = {"stable": [0, 0], "canary": [0, 0]}
    for index, (cohort, ok) in enumerate(stream):
        counts[cohort][0] += 1
        counts[cohort][1] += ok
        if min(counts["canary"][0], counts["stable"][0]) < 30:
            continue  # a stable sample can complete a proof too: judge after every sample
        snapshot = Snapshot(
            stable={CHECK: ProportionStats(n=counts["stable"][0], successes=counts["stable"][1])},
            canary={CHECK: ProportionStats(n=counts["canary"][0], successes=counts["canary"][1])},
        )
        if judge.evaluate(snapshot, step=0, elapsed_seconds=0).decision == "breach":
            return index
    raise RuntimeError("the stream never breaches: make it longer")


def _wait(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > deadline:
            return False
        time.sleep(0.001)
    return True


def bench_flip(db: Path, store: SqlRegistry, runs: int, interval: float, poll: float) -> dict[str, Any]:
    """Seconds from the first breaching sample to the router seeing the rollback."""
    judge = Judge(load_policy(POLICY))
    latencies: list[float] = []
    early = 0
    with (
        RolloutController(store, interval_seconds=interval) as controller,
        PromptRouter(str(db), poll_interval=poll, initial_timeout=10) as router,
    ):
        for run in range(runs):
            route = start_rollout(store, PROMPT, 2, policy=POLICY, actor="bench", reason="bench")
            rollout_id = route.rollout_id
            assert rollout_id is not None

            def state() -> tuple[str | None, str | None]:
                seen = router.route(PROMPT)
                return (None, None) if seen is None else (seen.rollout_id, seen.state.value)

            ramping, rolled_back = (rollout_id, "ramping"), (rollout_id, "rolled_back")
            _wait(lambda: state() == ramping, 10)  # noqa: B023  # called before the next iteration
            stream = _stream(seed=1000 + run)
            k = _first_breaching(judge, stream)
            for cohort, ok in stream[:k]:
                controller.observe(rollout_id, cohort, "json_valid", ok)
            time.sleep(2 * interval + 0.05)  # judged at least once: no breach yet
            if state()[1] != "ramping":
                early += 1
                continue
            cohort, ok = stream[k]
            begin = time.perf_counter()
            controller.observe(rollout_id, cohort, "json_valid", ok)
            if _wait(lambda: state() == rolled_back, 30):  # noqa: B023
                latencies.append(time.perf_counter() - begin)
    return {
        "runs": runs,
        "controller_interval_s": interval,
        "router_poll_s": poll,
        "median_s": round(statistics.median(latencies), 4),
        "p95_s": round(_percentile(latencies, 0.95), 4),
        "max_s": round(max(latencies), 4),
        "flipped_early": early,
        "missed": runs - early - len(latencies),
    }


# -- part 2: time to flip through in-app reports -----------------------------------------------------

REPORT_TOKEN = "bench-report-token-0123456789"


class _ReportingRig:
    """A control plane (uvicorn in a thread), the simulated LLM, an instrumented app's router and SDK."""

    def __init__(self, db: Path, interval: float) -> None:
        import openai
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.trace import TracerProvider

        from otel_prompt_canary.demo import Behaviour, Reply, start_simulated_llm
        from otel_prompt_canary.instrumentation import PromptCanaryInstrumentor
        from otel_prompt_canary.service import ServiceSettings
        from otel_prompt_canary.service.server import build_server

        self.store = _setup(db)
        settings = ServiceSettings(token="bench-write-token-0123456789", report_token=REPORT_TOKEN)
        self._server = build_server(self.store, settings, port=0, log_level="warning")
        self._thread = threading.Thread(target=self._server.run, name="bench control plane", daemon=True)
        self._thread.start()
        _wait(lambda: self._server.started, 30)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.valid, self.invalid = Reply.json({"answer": "ok"}), Reply(text="Sure! Here is your answer.")
        self.behaviour = Behaviour(default=self.valid)
        self.llm = start_simulated_llm(self.behaviour)
        self.instrumentor = PromptCanaryInstrumentor()
        self.instrumentor.instrument(
            tracer_provider=TracerProvider(), meter_provider=MeterProvider(), report_interval=interval
        )
        self.router = PromptRouter(f"http://127.0.0.1:{port}", token=REPORT_TOKEN, initial_timeout=10)
        self.client = openai.OpenAI(base_url=self.llm.base_url, api_key="bench", max_retries=0)

    def call(self, unit_key: str, ok: bool) -> None:
        """One LLM call routed by ``unit_key``, answered with valid JSON or not."""
        self.behaviour.set_default(self.valid if ok else self.invalid)
        with self.router.select(PROMPT, unit_key) as chosen:
            text = str(chosen.render(question="Where is my parcel?"))
            self.client.chat.completions.create(
                model="sim-gpt-small",
                messages=[{"role": "user", "content": text}],
                response_format={"type": "json_object"},
            )

    def close(self) -> None:
        self.router.close()
        self.instrumentor.uninstrument()
        self.llm.stop()
        self._server.stop()
        self._thread.join(10)
        self.store.close()


def _units_by_cohort(router: PromptRouter, rollout_id: str, each: int) -> dict[str, list[str]]:
    """Unit keys the router sends to each cohort of ``rollout_id`` (at least ``each`` of both)."""
    units: dict[str, list[str]] = {"stable": [], "canary": []}
    n = 0
    while min(len(keys) for keys in units.values()) < each:
        chosen = router.select(PROMPT, f"unit-{n}")
        if chosen.rollout_id == rollout_id:
            units[chosen.cohort].append(f"unit-{n}")
        n += 1
    return units


def bench_reporting(db: Path, runs: int, interval: float) -> dict[str, Any]:
    """Seconds from the first breaching call in an app to its router seeing the rollback."""
    from otel_prompt_canary.loop import SqlLoopStore

    judge = Judge(load_policy(POLICY))
    rig = _ReportingRig(db, interval)
    phase = random.Random(interval)
    latencies: list[float] = []
    early = 0
    try:
        for run in range(runs):
            route = start_rollout(rig.store, PROMPT, 2, policy=POLICY, actor="bench", reason="bench")
            rollout_id = route.rollout_id
            assert rollout_id is not None

            def state() -> tuple[str | None, str | None]:
                seen = rig.router.route(PROMPT)
                return (None, None) if seen is None else (seen.rollout_id, seen.state.value)

            _wait(lambda: state() == (rollout_id, "ramping"), 10)  # noqa: B023
            stream = _stream(seed=2000 + run)
            k = _first_breaching(judge, stream)
            units = _units_by_cohort(rig.router, rollout_id, k + 1)
            used = {"stable": 0, "canary": 0}

            def replay(cohort: str, ok: bool) -> None:
                rig.call(units[cohort][used[cohort]], ok)  # noqa: B023
                used[cohort] += 1  # noqa: B023

            for cohort, ok in stream[:k]:
                replay(cohort, ok)

            def held() -> int:
                totals = SqlLoopStore(rig.store).rollout_snapshot(rollout_id)  # noqa: B023
                return sum(s.n for s in totals.canary.values() if s.kind == "proportion") + sum(
                    s.n for s in totals.stable.values() if s.kind == "proportion"
                )

            _wait(lambda: held() >= k, 3 * interval + 10)  # noqa: B023  # every sample before it is in
            # The controller judged them at least once (every 1 s): no flip yet. Then the breaching
            # call comes at a random phase of the report interval, as a regression would.
            time.sleep(1.1 + phase.uniform(0, interval))
            if state()[1] != "ramping":
                early += 1
                continue
            cohort, ok = stream[k]
            begin = time.perf_counter()
            replay(cohort, ok)
            if _wait(lambda: state() == (rollout_id, "rolled_back"), 3 * interval + 30):  # noqa: B023
                latencies.append(time.perf_counter() - begin)
    finally:
        rig.close()
    return {
        "runs": runs,
        "report_interval_s": interval,
        "median_s": round(statistics.median(latencies), 3) if latencies else None,
        "p95_s": round(_percentile(latencies, 0.95), 3) if latencies else None,
        "max_s": round(max(latencies), 3) if latencies else None,
        "flipped_early": early,
        "missed": runs - early - len(latencies),
    }


# -- part 3: statistics ------------------------------------------------------------------------------

#: What the issue asks of the judge, against a fixed-horizon test of the same alpha and power.
TARGETS: dict[str, float] = {"median_over_fixed": 1.3, "p80_over_fixed": 1.6, "aa": ALPHA, "power": 0.95}
#: The seed's regression and a smaller one: JSON validity from 99% to these.
REGRESSIONS = {"ab": 0.94, "ab_smaller": 0.97}
TARGET_SAMPLES = 500  # the policy's default
WARMUP = 30


def _failures(rng: random.Random, p_fail: float, n: int) -> list[int]:
    """Sorted positions (1-based) of the failures among ``n`` Bernoulli trials (geometric gaps)."""
    positions: list[int] = []
    log_keep = math.log1p(-p_fail)
    position = 0
    while True:
        position += int(math.log(1.0 - rng.random()) / log_keep) + 1
        if position > n:
            return positions
        positions.append(position)


def _regularised(n: int, f: int) -> float:
    """The judge's per-sample variance of a check with ``f`` failures in ``n``: ``q (1 - q)``."""
    return (2 * (n - f) + 1) * (2 * f + 1) / ((2 * n + 2) * (2 * n + 2))


def _first_detection(
    rng: random.Random, *, p_stable: float, p_canary: float, per_arm: int, method: str = "judge"
) -> int | None:
    """Canary samples at the first proven regression, or None within ``per_arm`` samples per cohort.

    Half the traffic on the canary, the samples alternating stable, canary, stable...; the rule is
    looked at after every sample. ``method`` is ``judge`` (the analysis package's test), ``naive`` (a
    fixed one-sided 95% z-bound) or ``oracle``: Wald's SPRT told the true regression, on the judge's
    own contrast and variance, ``ln Lambda = (d m - m^2 / 2) / V`` with ``m = p_stable - p_canary``.
    Among the tests of this regression against no change with no larger error rates, the SPRT needs
    the fewest samples on average (Wald and Wolfowitz 1948): its figures are the floor the judge,
    which must find every regression without knowing it, is measured against.
    """
    log_inv = math.log(1 / ALPHA)
    canary = _failures(rng, 1 - p_canary, per_arm)
    stable = _failures(rng, 1 - p_stable, per_arm)
    fc = fs = 0
    for seen in range(2 * WARMUP, 2 * per_arm + 1):
        nc, ns = seen // 2, seen - seen // 2
        while fc < len(canary) and canary[fc] <= nc:
            fc += 1
        while fs < len(stable) and stable[fs] <= ns:
            fs += 1
        if fc * ns <= fs * nc:
            continue  # the canary is not worse: nothing to prove
        difference = fs / ns - fc / nc
        if method == "naive":
            sd = math.sqrt(_regularised(nc, fc) / nc + _regularised(ns, fs) / ns)
            if difference + Z_ALPHA * sd < 0:
                return nc
            continue
        # The judge's variance: the canary's floored at the pooled one (analysis/sequential.py).
        variance = max(_regularised(nc, fc), _regularised(nc + ns, fc + fs)) / nc + _regularised(ns, fs) / ns
        if method == "oracle":
            centre = p_stable - p_canary
            if (-difference * centre - centre * centre / 2) / variance >= log_inv:
                return nc
            continue
        sd = math.sqrt(variance)
        if difference + math.sqrt(2 * log_inv) * sd >= 0:
            continue  # the judge's radius is never narrower: cannot be a breach
        test = compare_to_stable(
            ProportionStats.model_construct(n=nc, successes=nc - fc),
            ProportionStats.model_construct(n=ns, successes=ns - fs),
            harmful=Direction.DECREASE,
            margin=0.0,
            alpha=ALPHA,
            target_samples=TARGET_SAMPLES,
        )
        if test is not None and test.breach:
            return nc
    return None


def _fixed_horizon_n(p_stable: float, p_canary: float) -> int:
    """Samples per arm for a one-sided two-proportion z-test at alpha 0.05 and 80% power."""
    variance = p_stable * (1 - p_stable) + p_canary * (1 - p_canary)
    return math.ceil((Z_ALPHA + Z_POWER_80) ** 2 * variance / (p_stable - p_canary) ** 2)


def _fixed_horizon_power(
    rng: random.Random, n: int, p_stable: float, p_canary: float, rollouts: int
) -> float:
    detected = 0
    for _ in range(rollouts):
        sc = n - len(_failures(rng, 1 - p_canary, n))
        ss = n - len(_failures(rng, 1 - p_stable, n))
        pooled = (sc + ss) / (2 * n)
        se = math.sqrt(max(pooled * (1 - pooled), 1e-12) * 2 / n)
        detected += (sc - ss) / n / se < -Z_ALPHA
    return detected / rollouts


def _regression(rng: random.Random, p_canary: float, rollouts: int) -> dict[str, Any]:
    """Canary samples to detection of 99% -> ``p_canary``, against the fixed-horizon test."""
    p_stable = 0.99
    n_fixed = _fixed_horizon_n(p_stable, p_canary)
    cap = 20 * n_fixed
    seeds = [rng.getrandbits(64) for _ in range(rollouts)]
    kwargs: dict[str, Any] = {"p_stable": p_stable, "p_canary": p_canary, "per_arm": cap}
    found = [_first_detection(random.Random(seed), **kwargs) for seed in seeds]
    # The same rollouts, sample for sample, under the oracle.
    oracle = [_first_detection(random.Random(seed), method="oracle", **kwargs) for seed in seeds]
    # Percentiles over every rollout, a missed one counting as never: the 80th is the sample size at
    # which the judge has the fixed-horizon test's power.
    times = [math.inf if d is None else float(d) for d in found]
    median, p80, p95 = (_percentile(times, q) for q in (0.5, 0.8, 0.95))
    if not math.isfinite(p95):
        raise RuntimeError(f"fewer than 95% of the rollouts detected 99% -> {p_canary} within {cap} samples")
    oracle_times = [math.inf if d is None else float(d) for d in oracle]
    oracle_median, oracle_p80 = (_percentile(oracle_times, q) for q in (0.5, 0.8))
    return {
        "p_stable": p_stable,
        "p_canary": p_canary,
        "alpha": ALPHA,
        "rollouts": rollouts,
        "fixed_horizon_n": n_fixed,
        "fixed_horizon_power": round(
            _fixed_horizon_power(random.Random(7), n_fixed, p_stable, p_canary, rollouts), 3
        ),
        "cap_per_arm": cap,
        "sequential_detected": round(sum(d is not None for d in found) / rollouts, 4),
        "sequential_median_n": median,
        "sequential_p80_n": p80,
        "sequential_p95_n": p95,
        "sequential_power_at_fixed_n": round(
            sum(d is not None and d <= n_fixed for d in found) / rollouts, 3
        ),
        "median_over_fixed": round(median / n_fixed, 2),
        "p80_over_fixed": round(p80 / n_fixed, 2),
        "oracle_median_over_fixed": round(oracle_median / n_fixed, 2),
        "oracle_p80_over_fixed": round(oracle_p80 / n_fixed, 2),
    }


def bench_statistics(rollouts: int, seed: int = 20260601) -> dict[str, Any]:
    rng = random.Random(seed)
    figures: dict[str, Any] = {
        name: _regression(random.Random(rng.getrandbits(64)), p_canary, rollouts)
        for name, p_canary in REGRESSIONS.items()
    }
    aa_rollouts, per_arm = 2 * rollouts, 2000
    ours = naive = 0
    for _ in range(aa_rollouts):
        rollout = rng.getrandbits(64)
        kwargs: dict[str, Any] = {"p_stable": 0.99, "p_canary": 0.99, "per_arm": per_arm}
        ours += _first_detection(random.Random(rollout), **kwargs) is not None
        naive += _first_detection(random.Random(rollout), method="naive", **kwargs) is not None
    figures["aa"] = {
        "rollouts": aa_rollouts,
        "samples_per_cohort": per_arm,
        "look_every": 1,
        "sequential_false_rollbacks": round(ours / aa_rollouts, 4),
        "naive_false_rollbacks": round(naive / aa_rollouts, 4),
    }
    figures["targets"] = TARGETS
    figures["seed"] = seed
    return figures


def _setup(db: Path) -> SqlRegistry:
    store = open_store(db)
    store.push(PromptSpec(name=PROMPT, template="Answer in JSON: {{ question }}"))
    store.push(PromptSpec(name=PROMPT, template="Answer warmly, in JSON: {{ question }}"))
    return store


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", action="store_true", help="print one JSON object as last line")
    parser.add_argument("--runs", type=int, default=20, help="flips timed per setting")
    parser.add_argument(
        "--report-runs",
        type=int,
        default=5,
        help="flips timed through in-app reports at 10 s (twice as many at 1 s)",
    )
    parser.add_argument(
        "--report-intervals",
        default="10,1",
        help="comma-separated report intervals in seconds (first: the default)",
    )
    parser.add_argument(
        "--rollouts", type=int, default=2000, help="simulated A/B rollouts (A/A: twice as many)"
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=20260601,
        help="seed of the simulated rollouts (the 80th percentiles move by a few hundredths between seeds)",
    )
    args = parser.parse_args(argv)

    figures: dict[str, Any] = {"python": platform.python_version(), "machine": platform.machine()}
    with tempfile.TemporaryDirectory(prefix="bench-loop-") as tmp:
        db = Path(tmp) / "registry.db"
        store = _setup(db)
        try:
            figures["flip_fast"] = bench_flip(db, store, args.runs, interval=0.05, poll=0.05)
            figures["flip_default"] = bench_flip(db, store, max(5, args.runs // 2), interval=1.0, poll=0.25)
        finally:
            store.close()
        figures["reporting"] = []
        for index, interval in enumerate(float(i) for i in args.report_intervals.split(",")):
            runs = args.report_runs if interval >= 5 else 2 * args.report_runs
            rig_db = Path(tmp) / f"reporting-{index}.db"
            figures["reporting"].append(bench_reporting(rig_db, runs, interval))
    begin = time.perf_counter()
    figures |= bench_statistics(args.rollouts, args.seed)
    figures["statistics_seconds"] = round(time.perf_counter() - begin, 1)

    f = figures
    print("time from the first breaching sample to the router seeing the rollback (embedded, SQLite)")
    for name, label in (
        ("flip_fast", "controller 0.05 s, router 0.05 s"),
        ("flip_default", "defaults: 1 s, 0.25 s"),
    ):
        r = f[name]
        print(
            f"  {label:<34}: median {r['median_s'] * 1000:7.1f} ms, p95 {r['p95_s'] * 1000:7.1f} ms, "
            f"max {r['max_s'] * 1000:7.1f} ms over {r['runs']} runs (target: median < 1 s)"
        )
    baseline = f["flip_default"]["median_s"]
    print(
        "time from the first breaching call in an app to its router seeing the rollback, through in-app "
        "reports and the control plane"
    )
    targets = {10.0: 15.0, 1.0: 2.0}
    for r in f["reporting"]:
        interval = r["report_interval_s"]
        target = f" (target: median < {targets[interval]:g} s)" if interval in targets else ""
        if r["median_s"] is None:
            print(
                f"  report interval {interval:g} s: no flip timed "
                f"({r['flipped_early']} early, {r['missed']} missed)"
            )
            continue
        print(
            f"  report interval {interval:>4g} s         : median {r['median_s']:6.2f} s, "
            f"p95 {r['p95_s']:6.2f} s, "
            f"max {r['max_s']:6.2f} s over {r['runs']} runs{target}; "
            f"{r['median_s'] / baseline:.1f}x the embedded default's median ({baseline * 1000:.0f} ms)"
        )
    for key in REGRESSIONS:
        ab = f[key]
        print(
            f"samples to detection, JSON validity {ab['p_stable']:.0%} -> {ab['p_canary']:.0%}, half the "
            f"traffic on the canary, alpha {ab['alpha']}, {ab['rollouts']} rollouts (canary samples)"
        )
        print(
            f"  fixed-horizon z-test (80% power)  : {ab['fixed_horizon_n']} per arm, always "
            f"(simulated power {ab['fixed_horizon_power']:.1%}); no look before, no valid look after"
        )
        print(
            f"  sequential judge, every sample    : median {ab['sequential_median_n']:.0f} "
            f"(= {ab['median_over_fixed']}x the fixed n; target {TARGETS['median_over_fixed']}x), "
            f"80th percentile {ab['sequential_p80_n']:.0f} "
            f"(= {ab['p80_over_fixed']}x at the same power; target {TARGETS['p80_over_fixed']}x), "
            f"95th {ab['sequential_p95_n']:.0f}; detected {ab['sequential_detected']:.1%} within "
            f"{ab['cap_per_arm']} (target {TARGETS['power']:.0%})"
        )
        print(
            f"  oracle: SPRT told the regression  : median {ab['oracle_median_over_fixed']}x, "
            f"80th percentile {ab['oracle_p80_over_fixed']}x the fixed n (the floor: no valid test of "
            "the contrast does much better without knowing the regression)"
        )
    aa = f["aa"]
    print(
        f"false rollbacks in {aa['rollouts']} A/A rollouts ({aa['samples_per_cohort']:,} samples per cohort, "
        f"a look after every sample)"
    )
    print(f"  naive one-sided 95% z-bound at every look : {aa['naive_false_rollbacks']:.1%}")
    print(
        f"  sequential judge (alpha 0.05)             : {aa['sequential_false_rollbacks']:.2%} "
        f"(target: at most {TARGETS['aa']:.0%})"
    )
    if args.json:
        import json

        print(json.dumps(figures, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
