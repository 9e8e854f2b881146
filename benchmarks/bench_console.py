"""Console benchmark: the server time of a week-old rollout's page, against the API's verdict of it.

An SQLite store holds one rollout that has run for ``--days`` (7 by default) and reported every
minute: 10,080 one-minute windows of four signals (three checks and the LLM judge's score) in both
cohorts, 80,640 rows of statistics, and a ramp walked from 1% to 50% over the week (its audit
records dated accordingly). The console's rollout page
(``/console/prompts/{name}/rollout?rollout_id=...``: the ramp, the weight over time, every signal
canary against stable with its band, the verdict, the actions) is rendered ``--renders`` times,
signed in as the admin, in process through the ASGI application (httpx's ``ASGITransport``): what
is timed is the application's work from the request to the last byte of the page, middleware
included, with no network.

The baseline, measured in the same run on the same store and application: ``GET
/v1/prompts/{name}/rollout/verdict``, the judge's verdict that the page also shows, as the JSON API
serves it. ``ratio_over_verdict`` is the page's median time over the verdict's.

Target: the page in under 300 ms of server time: met when the median render is; whether the p95
is too is printed beside it (a busy machine's pauses land in the tail). It prints figures and never
asserts. ``--json`` prints every figure as one JSON object on the last line. Run:
``.venv/bin/python benchmarks/bench_console.py [--json] [--days 7] [--renders 30]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from unittest.mock import patch
from urllib.parse import urljoin

import httpx
from sqlalchemy import func, select

from otel_prompt_canary.analysis import MeanStats, ProportionStats, Report
from otel_prompt_canary.analysis.stats import MEAN_SCALE
from otel_prompt_canary.loop import SqlLoopStore, start_rollout
from otel_prompt_canary.registry import Action, PromptSpec, SqlRegistry, open_store, sql
from otel_prompt_canary.registry import schema as t
from otel_prompt_canary.service import ServiceSettings
from otel_prompt_canary.service.app import create_app

PROMPT = "support"
TOKEN = "bench-token-0123456789abcdef"
WINDOW = 60
CHECKS = ("json_valid", "refusal", "truncation")
SCORE = "judge"
#: Calls a minute across both cohorts.
CALLS_PER_MINUTE = 120
#: Windows per stored report while filling: large reports fill the store fastest.
FILL_BATCH = 720
#: The ramp's weights (percent) and the day of the week each step began; the last is current.
RAMP = ((1, 0.0), (5, 1.5), (20, 3.5), (50, 5.5))
#: The page must render within this many milliseconds of server time.
TARGET_MS = 300
BASE_URL = "http://127.0.0.1"


def _cohort(rng: random.Random, starts: list[int], shares: list[float], canary: bool) -> dict[str, Any]:
    """One cohort's windows: its share of the calls, checks passing about 98%, judge near 0.8."""
    stats: dict[str, dict[int, ProportionStats | MeanStats]] = {}
    counts = [max(1, round(CALLS_PER_MINUTE * (s if canary else 1 - s))) for s in shares]
    for name in CHECKS:
        stats[f"prompt_canary.check.{name}"] = {
            start: ProportionStats(n=n, successes=n - _failures(rng, n, 0.02))
            for start, n in zip(starts, counts, strict=True)
        }
    scores: dict[int, ProportionStats | MeanStats] = {}
    for start, n in zip(starts, counts, strict=True):
        judged = max(1, n // 4)  # a sampled judge grades a quarter of the calls
        mean, spread = rng.gauss(0.8 if not canary else 0.79, 0.01), 0.1
        total = round(judged * mean * MEAN_SCALE)
        total_sq = round(judged * (spread * spread + mean * mean) * MEAN_SCALE * MEAN_SCALE)
        scores[start] = MeanStats(n=judged, sum=total, sum_sq=total_sq)
    stats[f"prompt_canary.score.{SCORE}"] = scores
    return stats


def _failures(rng: random.Random, n: int, rate: float) -> int:
    """About ``rate`` of ``n`` calls failing (a normal approximation of the binomial, clamped)."""
    return min(n, max(0, round(rng.gauss(n * rate, (n * rate * (1 - rate)) ** 0.5))))


def _weight_at(day: float) -> float:
    return [weight for weight, began in RAMP if began <= day][-1] / 100


def fill(registry: SqlRegistry, *, days: float, seed: int) -> str:
    """Two versions of :data:`PROMPT`, a rollout of the second begun ``days`` ago and walked along
    :data:`RAMP` (its audit records dated so), and a report every minute since; the rollout's id."""
    registry.push(PromptSpec(name=PROMPT, template="Answer {{ question }}."))
    registry.push(PromptSpec(name=PROMPT, template="Answer {{ question }} in one JSON object."))
    now = datetime.now(UTC)
    began = now - timedelta(days=days)
    scale = days / 7  # a shorter run (--days) keeps the ramp's shape
    # Audit records are immutable once written: the store's clock is set back while the ramp's
    # transitions are written, so that each is dated the day it would have happened.
    with patch.object(sql, "utc_now", lambda: began):
        route = start_rollout(registry, PROMPT, 2, actor="bench", reason="a week-old rollout")
    rollout_id = route.rollout_id
    assert rollout_id is not None
    for _, day in RAMP[1:]:
        with patch.object(sql, "utc_now", lambda day=day: began + timedelta(days=day * scale)):
            registry.transition(PROMPT, Action.ADVANCE, actor="controller", reason="the step held")
    store = SqlLoopStore(registry)
    rng = random.Random(seed)
    first = int(began.timestamp()) // WINDOW * WINDOW
    end = int(now.timestamp()) // WINDOW * WINDOW
    for batch in range(first, end, FILL_BATCH * WINDOW):
        starts = list(range(batch, min(end, batch + FILL_BATCH * WINDOW), WINDOW))
        shares = [_weight_at((s - first) / 86_400 / scale) for s in starts]
        report = Report(
            rollout_id=rollout_id,
            window_seconds=WINDOW,
            stable=_cohort(rng, starts, shares, canary=False),
            canary=_cohort(rng, starts, shares, canary=True),
        )
        store.record_report(report, source="bench")
    return rollout_id


class _Forms(HTMLParser):
    """The forms of a page: each one's action and its fields' names and values."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append((named.get("action", ""), {}))
        elif tag in ("input", "button") and self.forms and named.get("name"):
            self.forms[-1][1].setdefault(named["name"], named.get("value", ""))


async def sign_in(client: httpx.AsyncClient, token: str) -> None:
    """Sign in to the console as a person does: its sign-in form, filled with ``token``."""
    page = await client.get("/console/sign-in", follow_redirects=True)
    parser = _Forms()
    parser.feed(page.text)
    for action, fields in parser.forms:
        if "token" in fields:
            answer = await client.post(
                urljoin(str(page.url), action or str(page.url)),
                data=fields | {"token": token},
                headers={"Origin": BASE_URL, "Referer": str(page.url)},
            )
            if answer.status_code in (200, 303) and "sign-in" not in answer.headers.get("location", ""):
                return
            raise SystemExit(f"bench_console: signing in failed ({answer.status_code}): {answer.text[:300]}")
    raise SystemExit(f"bench_console: no sign-in form with a token field at {page.url}")


async def _time(request: Callable[[], Awaitable[httpx.Response]], renders: int) -> list[float]:
    """Milliseconds of each of ``renders`` requests (after one untimed warm-up), checked to be 200."""
    times = []
    for number in range(renders + 1):
        began = time.perf_counter()
        answer = await request()
        await answer.aread()
        elapsed = (time.perf_counter() - began) * 1000
        if answer.status_code != 200:
            raise SystemExit(
                f"bench_console: {answer.url} answered {answer.status_code}: {answer.text[:300]}"
            )
        if number:
            times.append(elapsed)
    return times


def _summary(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "median": round(statistics.median(ordered), 2),
        "p95": round(p95, 2),
        "max": round(ordered[-1], 2),
    }


async def measure(registry: SqlRegistry, rollout_id: str, renders: int) -> dict[str, Any]:
    """Times the rollout page and the verdict, interleaved so that both see the same machine."""
    # Nothing runs beside the requests: no controller, no drift monitor (the lifespan is not run).
    settings = ServiceSettings(token=TOKEN, controller=False, drift="off")
    app = create_app(registry, settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL, timeout=60) as client:
        await sign_in(client, TOKEN)
        page_url = f"/console/prompts/{PROMPT}/rollout?rollout_id={rollout_id}"
        page = await client.get(page_url)
        # The page measured must be the whole one: the rollout, and a chart of each signal.
        shown = [rollout_id, *(f"prompt_canary.check.{c}" for c in CHECKS), f"prompt_canary.score.{SCORE}"]
        if page.status_code != 200 or not all(text in page.text for text in shown):
            raise SystemExit(f"bench_console: {page_url} answered {page.status_code}: {page.text[:300]}")
        verdict_headers = {"Authorization": f"Bearer {TOKEN}"}
        page_ms: list[float] = []
        verdict_ms: list[float] = []
        for _ in range(renders):
            page_ms += await _time(lambda: client.get(page_url), 1)
            verdict_ms += await _time(
                lambda: client.get(f"/v1/prompts/{PROMPT}/rollout/verdict", headers=verdict_headers), 1
            )
        return {"page_bytes": len(page.content), "page_ms": page_ms, "verdict_ms": verdict_ms}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=float, default=7, help="age of the rollout, in days (default 7)")
    parser.add_argument("--renders", type=int, default=30, help="timed renders of each page (default 30)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print every figure as one JSON line")
    args = parser.parse_args(argv)
    with (
        tempfile.TemporaryDirectory(prefix="bench-console-") as root,
        open_store(Path(root) / "r.db") as registry,
    ):
        filled = time.perf_counter()
        rollout_id = fill(registry, days=args.days, seed=args.seed)
        fill_s = time.perf_counter() - filled
        with registry.database.read() as conn:
            rows = conn.execute(select(func.count()).select_from(t.rollout_stats)).scalar_one()
        measured = asyncio.run(measure(registry, rollout_id, args.renders))
    page, verdict = _summary(measured["page_ms"]), _summary(measured["verdict_ms"])
    figures: dict[str, Any] = {
        "python": platform.python_version(),
        "days": args.days,
        "windows": round(args.days * 86_400 / WINDOW),
        "rows": rows,
        "fill_s": round(fill_s, 2),
        "renders": args.renders,
        "page_bytes": measured["page_bytes"],
        "page_ms": page,
        "verdict_ms": verdict,
        "ratio_over_verdict": round(page["median"] / verdict["median"], 2),
        "target_ms": TARGET_MS,
        "target_met": page["median"] < TARGET_MS,
        "p95_within_target": page["p95"] < TARGET_MS,
    }
    print(
        f"rollout page, {args.days:g} days of {WINDOW} s windows ({figures['rows']} rows, "
        f"{figures['page_bytes'] / 1024:.0f} KiB of HTML), {args.renders} renders in process:"
    )
    print(
        f"  page     median {page['median']:8.2f} ms   p95 {page['p95']:8.2f} ms   max {page['max']:8.2f} ms"
    )
    print(
        f"  verdict  median {verdict['median']:8.2f} ms   p95 {verdict['p95']:8.2f} ms   (JSON API, baseline)"
    )
    print(f"  page over verdict: {figures['ratio_over_verdict']}x")
    met = "met" if figures["target_met"] else "NOT met"
    p95 = "within it" if figures["p95_within_target"] else "over it"
    print(f"  target: under {TARGET_MS} ms of server time: {met} (median); p95 {p95}")
    if args.json:
        print(json.dumps(figures))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
