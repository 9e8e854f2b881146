"""The whole loop with no Collector: two applications report to ``prompt-canary serve`` by themselves.

Every part is real and on loopback: ``prompt-canary serve`` on PostgreSQL with its rollout controller
(time-scaled), the simulated LLM speaking the OpenAI API, and two application processes under
``opentelemetry-instrument`` whose instrumentation's registry is the control plane's URL. Their
routers long-poll the control plane; their instrumentation counts every call and posts the
statistics to ``/v1/reports`` every second with the reporting credential; their default OTLP
exporters send the telemetry to a local receiver, and nothing reads it on the way. The controller
judges the applications' reports alone:

- a canary prompt that breaks JSON for refund and billing questions is rolled back;
- a healthy canary walks a four-step ramp to promotion.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from otel_prompt_canary.demo import demo_behaviour
from otel_prompt_canary.demo.simulated_llm import running_simulated_llm
from otel_prompt_canary.loop import SqlLoopStore
from otel_prompt_canary.registry import open_store
from tests.cli.cli_helpers import process_environment, serving
from tests.conftest import fresh_postgres_database
from tests.instrumentation.otlp_receiver import Received, attributes, otlp_receiver
from tests.reporting.support import report_sources, reporting_app, route_state
from tests.support.app_process import CANARY_SYSTEM, PROMPT, STABLE_SYSTEM, AppProcess, start_canary_rollout
from tests.support.auth import REPORT_TOKEN, TOKEN
from tests.support.waiting import eventually

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(600)]

#: Policy time runs 20 times faster: a 60 s step takes 3 s.
TIME_SCALE = 20
POLICY: dict[str, Any] = {
    "alpha": 0.05,
    "ramp": {"steps": [10, 25, 50, 100], "min_duration_seconds": 60, "min_samples": 20},
    "signals": [{"name": "json_valid", "kind": "proportion", "harmful": "decrease"}],
    "rules": [
        {"signal": "json_valid", "type": "relative", "margin": 0.05, "action": "rollback", "critical": True}
    ],
    "statistics": {"target_samples": 100, "warmup_samples": 20},
}
JSON_VALID = "prompt_canary.check.json_valid"


@dataclass
class Loop:
    database: str
    http: httpx.Client
    rollout_id: str
    backend: Received
    apps: list[AppProcess]

    def running(self) -> None:
        for app in self.apps:
            app.check_running()

    def diagnostics(self) -> str:
        return "\n".join(
            [
                f"route: {self.http.get(f'/v1/routes/{PROMPT}').text}",
                f"verdict: {self.http.get(f'/v1/prompts/{PROMPT}/rollout/verdict').text[-2000:]}",
                *(f"app {i} stderr: {app.stderr_tail()}" for i, app in enumerate(self.apps)),
            ]
        )


@contextmanager
def reporting_loop(tmp_path: Path, postgres_url: str, *, healthy: bool) -> Iterator[Loop]:
    behaviour, _ = demo_behaviour(stable_prompt=STABLE_SYSTEM, canary_prompt=CANARY_SYSTEM, healthy=healthy)
    database = fresh_postgres_database(postgres_url)
    environment = process_environment(
        OTEL_PROMPT_CANARY_TOKEN=TOKEN, OTEL_PROMPT_CANARY_REPORT_TOKEN=REPORT_TOKEN
    )
    with ExitStack() as stack:
        service, _ = stack.enter_context(
            serving(
                *("--registry", database, "--time-scale", str(TIME_SCALE), "--controller-interval", "0.5"),
                env=environment,
            )
        )
        http = stack.enter_context(httpx.Client(base_url=service, timeout=10))
        rollout_id = start_canary_rollout(http, policy=POLICY)
        llm = stack.enter_context(running_simulated_llm(behaviour))
        endpoint, backend = stack.enter_context(otlp_receiver())
        apps = [
            stack.enter_context(
                reporting_app(
                    tmp_path,
                    f"support-bot-{i}",
                    llm_url=llm.base_url,
                    control_plane=service,
                    otlp_endpoint=endpoint,
                )
            )
            for i in range(2)
        ]
        yield Loop(database, http, rollout_id, backend, apps)


def _calls_without_rollout(backend: Received) -> set[str]:
    """The applications (service names) that made calls of the prompt outside any rollout."""
    found = set()
    for request in list(backend.traces):
        for resource in request.resource_spans:
            service = attributes(resource.resource.attributes).get("service.name")
            for scope in resource.scope_spans:
                for span in scope.spans:
                    a = attributes(span.attributes)
                    if a.get("gen_ai.prompt.name") == PROMPT and "prompt_canary.rollout.id" not in a:
                        found.add(service)
    return found


def _stop(loop: Loop) -> list[dict[str, Any]]:
    summaries = [app.stop(loop.diagnostics) for app in loop.apps]
    assert [s["errors"] for s in summaries] == [0, 0], summaries
    return summaries


def test_the_controller_rolls_back_on_the_apps_reports_alone(tmp_path: Path, postgres_url: str) -> None:
    with reporting_loop(tmp_path, postgres_url, healthy=False) as loop:
        seconds = eventually(
            lambda: route_state(loop.http) == "rolled_back",
            timeout=150,
            what="the rollback",
            between=loop.running,
            diagnostics=loop.diagnostics,
        )
        # Each application's router sees the rollback: its next calls have no rollout any more.
        eventually(
            lambda: _calls_without_rollout(loop.backend) == {"support-bot-0", "support-bot-1"},
            timeout=30,
            what="calls of both applications after the rollback",
            diagnostics=loop.diagnostics,
        )
        summaries = _stop(loop)
        history = loop.http.get(f"/v1/prompts/{PROMPT}/rollout/history").json()
        with open_store(loop.database) as store:
            (totals,) = SqlLoopStore(store).rollout_reports(loop.rollout_id)
    print(f"rolled back {seconds:.1f} s after the applications started; calls: {summaries}")
    assert history[-1]["action"] == "rollback" and history[-1]["actor"] == "controller"
    assert "json_valid.relative" in history[-1]["reason"]
    assert history[-1]["evidence"]["verdict"]["breached"]
    for summary in summaries:
        calls = summary["calls"]
        assert calls.get("rolled_back/stable/1", 0) > 0, calls  # the router saw it...
        assert not [k for k in calls if k.startswith("rolled_back/") and not k.endswith("/1")], calls
    # ...and what the controller judged came from the two applications' reports, 1 s windows.
    assert {source.split("@")[0] for source in report_sources(loop.database)} == {
        "support-bot-0",
        "support-bot-1",
    }
    assert totals.window_seconds == 1
    canary = list(totals.canary[JSON_VALID].values())
    assert sum(s.n for s in canary) >= POLICY["statistics"]["warmup_samples"]
    assert sum(getattr(s, "successes", 0) for s in canary) < sum(s.n for s in canary)


def test_a_healthy_canary_walks_the_ramp_to_promotion(tmp_path: Path, postgres_url: str) -> None:
    with reporting_loop(tmp_path, postgres_url, healthy=True) as loop:
        seconds = eventually(
            lambda: route_state(loop.http) == "promoted",
            timeout=180,
            what="the promotion",
            between=loop.running,
            diagnostics=loop.diagnostics,
        )
        summaries = _stop(loop)
        history = loop.http.get(f"/v1/prompts/{PROMPT}/rollout/history").json()
        with open_store(loop.database) as store:
            (totals,) = SqlLoopStore(store).rollout_reports(loop.rollout_id)
    print(f"promoted {seconds:.1f} s after the applications started; calls: {summaries}")
    assert [r["action"] for r in history] == ["start", "advance", "advance", "advance", "promote"]
    for record, percent in zip(history[1:], (10, 25, 50, 100), strict=True):
        assert record["actor"] == "controller"
        verdict = record["evidence"]["verdict"]
        assert verdict["canary_percent"] == percent and verdict["ready"] is True and verdict["breached"] == []
        assert verdict["canary_samples"] >= POLICY["ramp"]["min_samples"]
    canary_n = sum(s.n for s in totals.canary[JSON_VALID].values())
    assert canary_n >= 4 * POLICY["ramp"]["min_samples"]
    assert sum(getattr(s, "successes", 0) for s in totals.canary[JSON_VALID].values()) == canary_n
    assert len(set(report_sources(loop.database))) == 2
