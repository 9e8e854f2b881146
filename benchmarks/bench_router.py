"""Router benchmark: ``PromptRouter.select()`` against a bare SHA-256 of the same key, in one run.

Measures, on one thread:

- throughput (selections per second) of ``select(prompt, unit_key)`` on a prompt with an active
  rollout (the hashing path), and for reference on an idle prompt and without a unit key;
- the baseline: ``hashlib.sha256(key_bytes).digest()`` of the same ``rollout_id:unit_key`` bytes,
  the hash the cohort function computes; the ratio ``select / hash`` is the figure to watch
  (target: at most 3x, and at least 300,000 selections/s);
- per-call latency p50/p99 (each call timed with ``perf_counter_ns``; the timer's own cost is
  printed beside it and not subtracted);
- route-flip latency: from sending a rollback to the control plane (``POST
  /v1/prompts/{name}/rollout/rollback``) to a long-polling router no longer routing the canary, and
  the same for a router polling the store directly. Skipped when the control plane's dependencies
  (the ``server`` extra) are missing.

It prints figures and never asserts. ``--json`` prints one JSON object with every figure as the last
line. Run: ``.venv/bin/python benchmarks/bench_router.py [--json] [--keys N] [--repeat R]``.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import platform
import random
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

from otel_prompt_canary.registry import PromptSpec, SqlRegistry, open_store
from otel_prompt_canary.routing import PromptRouter

PROMPT = "support-reply"
IDLE_PROMPT = "idle-prompt"
TOKEN = "bench-token-0123456789abcdef"


def _per_call_ns(run: Callable[[], int], calls: int, repeat: int) -> list[float]:
    """Nanoseconds per call of each of ``repeat`` runs (``run`` returns the elapsed ns)."""
    return [run() / calls for _ in range(repeat)]


def _loop_select(select: Callable[..., object], prompt: str, keys: Sequence[str | None]) -> int:
    start = time.perf_counter_ns()
    for key in keys:
        select(prompt, key)
    return time.perf_counter_ns() - start


def _loop_hash(data: Sequence[bytes]) -> int:
    sha256 = hashlib.sha256
    start = time.perf_counter_ns()
    for item in data:
        sha256(item).digest()
    return time.perf_counter_ns() - start


def _latencies(call: Callable[[], object], calls: int) -> tuple[float, float]:
    """(p50, p99) in ns of ``calls`` individually timed calls."""
    clock = time.perf_counter_ns
    samples = [0] * calls
    for i in range(calls):
        start = clock()
        call()
        samples[i] = clock() - start
    samples.sort()
    return float(samples[calls // 2]), float(samples[int(calls * 0.99)])


def _setup_registry(path: Path) -> tuple[SqlRegistry, str]:
    registry = open_store(path)
    registry.push(PromptSpec(name=PROMPT, template="You are a support agent. {{ question }}"))
    registry.push(PromptSpec(name=PROMPT, template="You are a kind support agent. {{ question }}"))
    registry.push(PromptSpec(name=IDLE_PROMPT, template="Summarize: {{ text }}"))
    route = registry.start_rollout(PROMPT, 2, ramp=(20.0, 100.0), actor="bench", reason="bench")
    assert route.rollout_id is not None
    return registry, route.rollout_id


def bench_select(router: PromptRouter, rollout_id: str, n_keys: int, repeat: int) -> dict[str, Any]:
    keys = [f"user-{i}" for i in range(n_keys)]
    key_bytes = [f"{rollout_id}:{k}".encode() for k in keys]
    no_keys: list[str | None] = [None] * n_keys
    select = router.select

    _loop_select(select, PROMPT, keys[:10_000])  # warm up
    _loop_hash(key_bytes[:10_000])
    hash_ns: list[float] = []
    select_ns: list[float] = []
    for _ in range(repeat):  # interleaved, so that drift affects both alike
        hash_ns += _per_call_ns(lambda: _loop_hash(key_bytes), n_keys, 1)
        select_ns += _per_call_ns(lambda: _loop_select(select, PROMPT, keys), n_keys, 1)
    idle_ns = _per_call_ns(lambda: _loop_select(select, IDLE_PROMPT, keys), n_keys, repeat)
    keyless_ns = _per_call_ns(lambda: _loop_select(select, PROMPT, no_keys), n_keys, repeat)

    canary = sum(select(PROMPT, k).cohort == "canary" for k in keys) / n_keys

    calls = min(n_keys, 200_000)
    it = iter(keys * 2)
    sel_p50, sel_p99 = _latencies(lambda: select(PROMPT, next(it)), calls)
    it_b = iter(key_bytes * 2)
    sha256 = hashlib.sha256
    hash_p50, hash_p99 = _latencies(lambda: sha256(next(it_b)).digest(), calls)
    timer_p50, timer_p99 = _latencies(lambda: None, calls)

    med_hash, med_select = statistics.median(hash_ns), statistics.median(select_ns)
    return {
        "keys": n_keys,
        "repeat": repeat,
        "hash_ns_per_call": round(med_hash, 1),
        "select_ns_per_call": round(med_select, 1),
        "select_over_hash": round(med_select / med_hash, 2),
        "selections_per_s": round(1e9 / med_select),
        "best_selections_per_s": round(1e9 / min(select_ns)),
        "idle_selections_per_s": round(1e9 / statistics.median(idle_ns)),
        "keyless_selections_per_s": round(1e9 / statistics.median(keyless_ns)),
        "canary_share": round(canary, 4),
        "select_p50_ns": sel_p50,
        "select_p99_ns": sel_p99,
        "hash_p50_ns": hash_p50,
        "hash_p99_ns": hash_p99,
        "timer_p50_ns": timer_p50,
        "timer_p99_ns": timer_p99,
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait(predicate: Callable[[], bool], timeout: float = 10.0) -> float:
    start = time.perf_counter()
    while not predicate():
        if time.perf_counter() - start > timeout:
            raise TimeoutError(f"the router did not reflect the change within {timeout:.0f} s")
        time.sleep(0.0002)
    return time.perf_counter() - start


def _record_flip(router: PromptRouter, start: float, out: list[float]) -> None:
    """Append the ms from ``start`` until ``router`` routes no rollout for the prompt."""
    _wait(lambda: router.select(PROMPT).rollout_id is None)
    out.append((time.perf_counter() - start) * 1000)


def bench_flip(db: Path, flips: int) -> dict[str, Any]:
    """Rollback-to-router latency through the control plane (long poll) and the store (polling)."""
    try:
        import uvicorn

        from otel_prompt_canary.service import ServiceSettings
        from otel_prompt_canary.service.app import create_app
    except ImportError as exc:
        return {"flip_skipped": f"control plane unavailable: {exc}"}

    service_registry = open_store(db)
    app = create_app(service_registry, ServiceSettings(token=TOKEN))
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    _wait(lambda: server.started)
    base = f"http://127.0.0.1:{port}"
    writer = httpx.Client(
        base_url=base,
        headers={"Authorization": f"Bearer {TOKEN}", "X-Prompt-Canary-Actor": "bench"},
        timeout=10,
    )
    http_router = PromptRouter(base)
    store_router = PromptRouter(db)
    http_ms: list[float] = []
    store_ms: list[float] = []
    try:
        for _ in range(flips):
            if http_router.select(PROMPT).rollout_id is None:
                writer.post(
                    f"/v1/prompts/{PROMPT}/rollouts",
                    json={"version": 2, "ramp": [20, 100], "reason": "bench"},
                ).raise_for_status()
                _wait(lambda: http_router.select(PROMPT).rollout_id is not None)
                _wait(lambda: store_router.select(PROMPT).rollout_id is not None)
            # Let the long poll settle on the server, and send the rollback at a random phase of
            # the store router's polling interval (its latency depends on that phase).
            time.sleep(0.05 + random.uniform(0, 0.25))
            start = time.perf_counter()
            writer.post(
                f"/v1/prompts/{PROMPT}/rollout/rollback", json={"reason": "bench flip"}
            ).raise_for_status()
            watchers = [
                threading.Thread(target=_record_flip, args=(http_router, start, http_ms)),
                threading.Thread(target=_record_flip, args=(store_router, start, store_ms)),
            ]
            for w in watchers:
                w.start()
            for w in watchers:
                w.join(15)
    finally:
        http_router.close()
        store_router.close()
        writer.close()
        server.should_exit = True
        thread.join(10)
        service_registry.close()

    def summary(values: list[float]) -> dict[str, float]:
        values = sorted(values)
        return {
            "p50": round(statistics.median(values), 2),
            "max": round(values[-1], 2),
            "mean": round(statistics.fmean(values), 2),
        }

    return {"flips": flips, "flip_http_ms": summary(http_ms), "flip_store_ms": summary(store_ms)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", action="store_true", help="print one JSON object as last line")
    parser.add_argument("--keys", type=int, default=200_000, help="distinct unit keys per run")
    parser.add_argument("--repeat", type=int, default=7, help="runs per figure (median is kept)")
    parser.add_argument("--flips", type=int, default=20, help="rollbacks for the flip latency")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-router-") as tmp:
        db = Path(tmp) / "registry.db"
        registry, rollout_id = _setup_registry(db)
        router = PromptRouter(registry)  # the store source keeps polling meanwhile, as in an app
        try:
            gc.collect()
            figures = bench_select(router, rollout_id, args.keys, args.repeat)
        finally:
            router.close()
        figures |= bench_flip(db, args.flips) if args.flips > 0 else {}
        registry.close()

    figures["python"] = platform.python_version()
    figures["machine"] = platform.machine()
    f = figures
    print(
        f"select() on an active rollout, one thread, {f['keys']:,} unit keys, median of "
        f"{f['repeat']} runs (Python {f['python']})"
    )
    print(f"  baseline sha256(key).digest() : {f['hash_ns_per_call']:8.1f} ns/call")
    print(
        f"  select(prompt, unit_key)      : {f['select_ns_per_call']:8.1f} ns/call  "
        f"= {f['select_over_hash']:.2f}x the bare hash (target <= 3x)"
    )
    print(
        f"  throughput                    : {f['selections_per_s']:>11,} selections/s "
        f"(best run {f['best_selections_per_s']:,}; target >= 300,000)"
    )
    print(f"  idle prompt (no rollout)      : {f['idle_selections_per_s']:>11,} selections/s")
    print(f"  no unit key (random)          : {f['keyless_selections_per_s']:>11,} selections/s")
    print(f"  canary share at 20%           : {f['canary_share'] * 100:.2f}%")
    print(
        f"  latency select p50/p99        : {f['select_p50_ns']:.0f} / {f['select_p99_ns']:.0f} ns"
        f"  (hash {f['hash_p50_ns']:.0f} / {f['hash_p99_ns']:.0f} ns; "
        f"empty timed call {f['timer_p50_ns']:.0f} / {f['timer_p99_ns']:.0f} ns)"
    )
    if "flip_http_ms" in f:
        h, s = f["flip_http_ms"], f["flip_store_ms"]
        print(
            f"route flip, rollback sent to the control plane -> router routes no canary ({f['flips']} flips)"
        )
        print(f"  long-polling router (HTTP)    : p50 {h['p50']} ms, max {h['max']} ms")
        print(f"  store-polling router (0.25 s) : p50 {s['p50']} ms, max {s['max']} ms")
    elif "flip_skipped" in f:
        print(f"route flip: skipped ({f['flip_skipped']})")
    if args.json:
        print(json.dumps(figures, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
