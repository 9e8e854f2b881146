"""Evaluation benchmark: ``eval run`` throughput against the local simulated LLM, and its cost per case
over the raw SDK call, both measured in the same run.

A golden set of ``--cases`` cases is run through a prompt version with ``run_evaluation`` (the
version rendered per case, the real ``openai`` SDK, the project's checks, the case's expectations,
a span per case, a stored-ready run) at concurrency 1, 8 and 32, against the simulated LLM answering
after ``--latency`` seconds (a model's time to answer, so that concurrency has something to
overlap). The baseline is the same calls made with the bare SDK from a thread pool of the same size:
one ``chat.completions.create`` per case, nothing else. Rounds alternate the two so that a busy
machine slows both alike; the median round counts. Reported, per concurrency:

- ``eval_cases_per_s`` and ``raw_calls_per_s``, and their ratio;
- ``overhead_ms_per_case``: (eval time - raw time) / cases, wall clock, all included (a run also
  sets up its SDK client, its checks and its thread pool once).

At concurrency 1 the cost is also split (``per_case``): a run of a quarter of the cases is timed
too, so that the slope between the two sizes is what each more case costs (``marginal_ms``, eval
and raw, and their difference: the evaluation's own work per case: rendering, checks,
expectations, span) and the rest is what a run costs once (``run_setup_ms`` over the raw calls).

It prints figures and never asserts. ``--json`` prints every figure as one JSON object on the last
line. Run: ``.venv/bin/python benchmarks/bench_eval.py [--cases 64] [--rounds 3] [--latency 0.02]
[--json]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import openai

from otel_prompt_canary.demo.behaviour import Behaviour, Reply
from otel_prompt_canary.demo.simulated_llm import running_simulated_llm
from otel_prompt_canary.evals import DatasetSpec, EvalSettings, SqlEvalStore, run_evaluation
from otel_prompt_canary.evals.providers import case_messages
from otel_prompt_canary.registry import PromptSpec, open_store

CONCURRENCY = (1, 8, 32)
ANSWER = json.dumps({"topic": "billing", "answer": "Refunds take five business days to reach your card."})


def _dataset(cases: int) -> DatasetSpec:
    return DatasetSpec.model_validate(
        {
            "name": "bench-golden",
            "prompt": "bench",
            "cases": [
                {
                    "id": f"case-{i}",
                    "variables": {"question": f"Question number {i} about a refund?"},
                    "expect": {"must_contain": ["refund"], "must_not_contain": ["sorry"]},
                }
                for i in range(cases)
            ],
        }
    )


def _raw(client: openai.OpenAI, calls: list[list[dict[str, str]]], concurrency: int) -> float:
    """Seconds to make ``calls`` with the bare SDK on ``concurrency`` threads."""

    def one(messages: list[dict[str, str]]) -> None:
        client.chat.completions.create(model="sim-gpt-small", messages=messages, temperature=0.2)

    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(one, calls))
    return time.perf_counter() - began


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--cases", type=int, default=64, help="cases in the golden set")
    parser.add_argument("--rounds", type=int, default=3, help="alternated rounds per concurrency")
    parser.add_argument("--latency", type=float, default=0.02, help="seconds the simulated model takes")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON on the last line")
    args = parser.parse_args(argv)
    return measure(cases=args.cases, rounds=args.rounds, latency=args.latency)


def measure(*, cases: int, rounds: int, latency: float) -> dict[str, Any]:
    """The figures of the module docstring, for a golden set of ``cases`` cases (``bench_drift.py``
    reports them too, under ``eval_run``)."""
    behaviour = Behaviour(default=Reply(text=ANSWER, latency=latency))
    figures: dict[str, Any] = {
        "cases": cases,
        "rounds": rounds,
        "model_latency_s": latency,
        "python": platform.python_version(),
        "concurrency": {},
    }
    with running_simulated_llm(behaviour) as llm, tempfile.TemporaryDirectory() as folder:
        registry = open_store(Path(folder) / "registry.db")
        spec = {
            "name": "bench",
            "messages": [
                {"role": "system", "content": "You are the support assistant. Answer as JSON."},
                {"role": "user", "content": "{{ question }}"},
            ],
            "model": "sim-gpt-small",
            "config": {"temperature": 0.2},
            "output": {"format": "json"},
        }
        version = registry.push(PromptSpec.model_validate(spec)).version
        dataset = SqlEvalStore(registry).push_dataset(_dataset(cases)).dataset
        calls = [case_messages(version, case) for case in dataset.cases]
        client = openai.OpenAI(base_url=llm.base_url, api_key="bench", max_retries=0)
        for concurrency in CONCURRENCY:
            settings = EvalSettings(
                base_url=llm.base_url, api_key="bench", concurrency=concurrency, retries=0
            )
            run_evaluation(version, dataset, settings, actor="bench")  # warm up both paths
            _raw(client, calls, concurrency)
            evals: list[float] = []
            raws: list[float] = []
            for _ in range(rounds):
                began = time.perf_counter()
                run = run_evaluation(version, dataset, settings, actor="bench")
                evals.append(time.perf_counter() - began)
                assert run.status == "complete" and run.totals.passed == cases, run.note
                raws.append(_raw(client, calls, concurrency))
            eval_s, raw_s = statistics.median(evals), statistics.median(raws)
            figures["concurrency"][str(concurrency)] = {
                "eval_cases_per_s": round(cases / eval_s, 1),
                "raw_calls_per_s": round(cases / raw_s, 1),
                "eval_over_raw_throughput": round(raw_s / eval_s, 3),
                "overhead_ms_per_case": round((eval_s - raw_s) / cases * 1000, 3),
            }
        figures["per_case"] = _per_case(version, dataset, client, llm.base_url, calls, rounds)
        client.close()
        registry.close()
    return figures


def _median_time(work: Any, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        began = time.perf_counter()
        work()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def _per_case(
    version: Any, dataset: Any, client: openai.OpenAI, base_url: str, calls: list[Any], rounds: int
) -> dict[str, float]:
    """At concurrency 1: the marginal cost of a case, eval and raw, and a run's fixed cost."""
    settings = EvalSettings(base_url=base_url, api_key="bench", concurrency=1, retries=0)
    full = len(dataset.cases)
    small = max(1, full // 4)
    part = dataset.model_copy(update={"cases": dataset.cases[:small], "lines": None})
    eval_full = _median_time(lambda: run_evaluation(version, dataset, settings, actor="bench"), rounds)
    eval_small = _median_time(lambda: run_evaluation(version, part, settings, actor="bench"), rounds)
    raw_full = _median_time(lambda: _raw(client, calls, 1), rounds)
    raw_small = _median_time(lambda: _raw(client, calls[:small], 1), rounds)
    if full == small:
        return {}
    eval_case = (eval_full - eval_small) / (full - small)
    raw_case = (raw_full - raw_small) / (full - small)
    return {
        "eval_marginal_ms": round(eval_case * 1000, 3),
        "raw_marginal_ms": round(raw_case * 1000, 3),
        "overhead_marginal_ms": round((eval_case - raw_case) * 1000, 3),
        "run_setup_ms": round(((eval_full - full * eval_case) - (raw_full - full * raw_case)) * 1000, 1),
    }


if __name__ == "__main__":
    found = main()
    wanted_json = "--json" in sys.argv[1:]
    for concurrency, row in found["concurrency"].items():
        print(
            f"concurrency {concurrency:>2}: eval {row['eval_cases_per_s']:>7} cases/s, raw SDK "
            f"{row['raw_calls_per_s']:>7} calls/s (ratio {row['eval_over_raw_throughput']}), "
            f"overhead {row['overhead_ms_per_case']} ms/case",
            file=sys.stderr if wanted_json else sys.stdout,
        )
    if found["per_case"]:
        cost = found["per_case"]
        print(
            f"concurrency  1, per case: eval {cost['eval_marginal_ms']} ms, raw SDK "
            f"{cost['raw_marginal_ms']} ms, overhead {cost['overhead_marginal_ms']} ms; "
            f"a run's setup {cost['run_setup_ms']} ms",
            file=sys.stderr if wanted_json else sys.stdout,
        )
    if wanted_json:
        print(json.dumps(found))
