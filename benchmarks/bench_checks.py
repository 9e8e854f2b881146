"""Per-response cost of the default checks, against ``json.loads`` of the same output.

The default checks run inline on every LLM call, so their cost must stay in the range of what an
application already spends on the response. This benchmark builds the default scoring plan, feeds it
JSON outputs of several sizes (requested as JSON, so ``json_valid`` parses them too), and times it
against a baseline measured in the same run: ``json.loads`` of the same outputs, which every
structured-output application pays anyway. Each timed call gets a distinct string object, so the
plan's parse memo never hides a parse. It also times building an ``LLMResponse``.

It prints figures and never asserts; the ratio ``checks / json.loads`` is the figure to watch.
``--json`` prints one JSON object with every figure as the last line. Run:
``.venv/bin/python benchmarks/bench_checks.py [--json] [--calls N] [--repeat R]``.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

from otel_prompt_canary.scoring import LLMResponse, ScoringPlan, build_scoring

T = TypeVar("T")

SIZES = (200, 1_000, 4_000, 16_000)
POOL = 64  # distinct responses cycled through, so that no cache sees the same string twice in a row

PROSE = (
    "Your parcel left our warehouse in Lyon this morning and is expected on Thursday. "
    "You can follow it with the tracking link in your confirmation e-mail. If it has not "
    "arrived by Friday, reply here and we will open an investigation with the carrier. "
)


def _output(size: int) -> str:
    text = (PROSE * (size // len(PROSE) + 1))[: max(0, size - 60)]
    return json.dumps({"answer": text, "category": "shipping", "confidence": 0.93, "ok": True})


def _copies(text: str, n: int) -> list[str]:
    # Equal content, distinct objects (slicing a str to its full length returns the same object).
    return [(text + " ")[:-1] for _ in range(n)]


def _per_call(fn: Callable[[], object], calls: int, repeat: int) -> float:
    """Seconds per call: the best of ``repeat`` timings of ``calls`` calls (least disturbed)."""
    best = math.inf
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - start) / calls)
    return best


def _cycler(items: list[T]) -> Callable[[], T]:
    """Each call returns the next item, round and round."""
    position = 0

    def nxt() -> T:
        nonlocal position
        position = (position + 1) % len(items)
        return items[position]

    return nxt


def _case(plan: ScoringPlan, size: int, calls: int, repeat: int) -> dict[str, float]:
    texts = _copies(_output(size), POOL)
    responses = [
        LLMResponse(
            output_text=t,
            finish_reasons=("stop",),
            output_tokens=size // 4,
            response_format="json_object",
        )
        for t in texts
    ]
    next_text = _cycler(texts)
    next_response = _cycler(responses)
    loads = json.loads
    run_plan = plan.run

    def baseline() -> float:
        return _per_call(lambda: loads(next_text()), calls, repeat)

    # Baseline before and after the checks, best of both: a disturbance cannot flatter the ratio.
    first = baseline()
    checks = _per_call(lambda: run_plan(next_response()), calls, repeat)
    json_loads = min(first, baseline())
    return {
        "output_bytes": len(texts[0]),
        "checks_us": round(checks * 1e6, 3),
        "json_loads_us": round(json_loads * 1e6, 3),
        "ratio": round(checks / json_loads, 2),
    }


def run(calls: int, repeat: int) -> dict[str, Any]:
    plan = build_scoring()
    cases = [_case(plan, size, calls, repeat) for size in SIZES]
    text = _output(1_000)
    construct = _per_call(
        lambda: LLMResponse(
            output_text=text,
            finish_reasons=("stop",),
            input_tokens=120,
            output_tokens=250,
            model="gpt-4.1-mini",
            response_id="chatcmpl-1",
            prompt_name="support-bot",
            prompt_version=3,
            cohort="canary",
        ),
        calls,
        repeat,
    )
    ratios = [c["ratio"] for c in cases]
    return {
        "benchmark": "default_checks_vs_json_loads",
        "checks": [c.name for c in plan.checks] + [s.name for s in plan.scorers],
        "cases": cases,
        "ratio_geomean": round(math.exp(sum(math.log(r) for r in ratios) / len(ratios)), 2),
        "ratio_max": max(ratios),
        "construct_response_us": round(construct * 1e6, 3),
        "calls": calls,
        "repeat": repeat,
        "python": platform.python_version(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    parser.add_argument("--calls", type=int, default=5_000, help="calls per timing")
    parser.add_argument("--repeat", type=int, default=5, help="timings per measure (best is kept)")
    args = parser.parse_args(argv)
    result = run(args.calls, args.repeat)
    print(f"default checks: {', '.join(result['checks'])}")
    print(f"{'output bytes':>12}  {'checks µs':>10}  {'json.loads µs':>13}  {'ratio':>6}")
    for case in result["cases"]:
        print(
            f"{case['output_bytes']:>12}  {case['checks_us']:>10.2f}  "
            f"{case['json_loads_us']:>13.2f}  {case['ratio']:>6.2f}"
        )
    print(f"ratio (geometric mean): {result['ratio_geomean']}  max: {result['ratio_max']}")
    print(f"building one LLMResponse: {result['construct_response_us']} µs")
    if args.json:
        print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
