"""In-app reports: an instrumented application feeds its control plane's statistics by itself.

The real ``openai`` SDK calls the simulated LLM under a router on a real control plane (in a thread
of this process); the instrumentation counts every call and posts reports on a short interval. The
statistics the control plane stores are compared with what the calls were, exactly: a report
retried after a timeout is counted once; a control plane that is down delays reports, then drops
them, counted, and never touches a call.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import openai
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from otel_prompt_canary.analysis import ProportionStats, Report
from otel_prompt_canary.demo.simulated_llm import SimulatedLLM
from otel_prompt_canary.instrumentation import record_feedback
from otel_prompt_canary.instrumentation._reporter import Reporter
from otel_prompt_canary.instrumentation._tally import Tally
from otel_prompt_canary.loop import ReportOrigin, SqlLoopStore
from otel_prompt_canary.registry import PromptSpec, SqlRegistry
from otel_prompt_canary.routing import PromptRouter
from otel_prompt_canary.routing.control_planes import ControlPlane
from otel_prompt_canary.scoring import CheckOutcome, ScoringResults
from otel_prompt_canary.service import ServiceSettings
from otel_prompt_canary.service.payloads import ReportEnvelope
from tests.instrumentation.support import Telemetry, attrs, selection
from tests.support.auth import REPORT_TOKEN, TOKEN
from tests.support.loopback import free_port, running_server
from tests.support.report_proxy import report_proxy
from tests.support.waiting import eventually

PROMPT = "support-reply"
JSON_VALID = "prompt_canary.check.json_valid"
POLICY: dict[str, Any] = {  # no step ever ready: the rollout stays put while the test runs
    "ramp": {"steps": [50, 100], "min_duration_seconds": 86_400, "min_samples": 1_000_000},
    "signals": [{"name": "json_valid", "kind": "proportion", "harmful": "decrease"}],
    "rules": [{"signal": "json_valid", "type": "relative", "margin": 0.05, "action": "rollback"}],
}


@pytest.fixture
def store_backend() -> str:
    """SQLite only: the control plane's de-duplication is tested on both backends (tests/service);
    here the application side is under test."""
    return "sqlite"


@dataclass
class Plane:
    url: str
    registry: SqlRegistry
    rollout_id: str

    def stored(self, cohort: str, attribute: str = JSON_VALID) -> int:
        stats = getattr(SqlLoopStore(self.registry).rollout_snapshot(self.rollout_id), cohort).get(attribute)
        return 0 if stats is None else int(stats.n)


@pytest.fixture
def plane(registry: SqlRegistry) -> Iterator[Plane]:
    """A control plane (controller off) with a rollout of version 2 of the prompt at 50%."""
    for system in ("Answer in JSON.", "Answer warmly, in JSON."):
        spec = {
            "name": PROMPT,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": "{{ q }}"}],
        }
        registry.push(PromptSpec.model_validate(spec))
    route = registry.start_rollout(PROMPT, 2, ramp=(50.0, 100.0), actor="test", reason="test", policy=POLICY)
    assert route.rollout_id is not None
    settings = ServiceSettings(token=TOKEN, report_token=REPORT_TOKEN, controller=False)
    with running_server(registry, settings) as url:
        yield Plane(url, registry, route.rollout_id)


def calls(router: PromptRouter, llm: SimulatedLLM, n: int) -> dict[str, int]:
    """``n`` calls through the router, asking for JSON; returns them by cohort."""
    client = openai.OpenAI(base_url=llm.base_url, api_key="test", max_retries=0)
    made = {"stable": 0, "canary": 0}
    for i in range(n):
        with router.select(PROMPT, unit_key=f"user-{i}") as chosen:
            client.chat.completions.create(
                model="sim-gpt-small",
                messages=chosen.render(q=f"question {i}"),
                response_format={"type": "json_object"},
            )
            made[chosen.cohort] += 1
    return made


def test_calls_reach_the_control_plane_of_their_router(
    instrument: Any, plane: Plane, llm: SimulatedLLM, telemetry: Telemetry
) -> None:
    instrument(report_interval=0.2)  # no registry setting: the router makes its control plane known
    with PromptRouter(plane.url, token=REPORT_TOKEN, initial_timeout=10) as router:
        made = calls(router, llm, 40)
        for cohort in ("stable", "canary"):
            eventually(lambda c=cohort: plane.stored(c) == made[c], what=f"the {cohort} samples reported")  # type: ignore[misc]
            assert plane.stored(cohort, "gen_ai.usage.output_tokens") == made[cohort]
    # The feedback key of each call is on its span, as the Selection gave it.
    spans = telemetry.llm_spans()
    assert len(spans) == 40 and all(attrs(s)["prompt_canary.feedback.key"].startswith("pcfk.") for s in spans)
    assert telemetry.total("prompt_canary.reports.sent", prompt_canary__report__outcome="merged") >= 1


def test_what_was_counted_last_is_sent_at_exit_where_the_rollout_runs(
    instrument: Any, plane: Plane, llm: SimulatedLLM
) -> None:
    instrumentor = instrument(report_interval=3600)  # nothing is sent before the end
    with PromptRouter(plane.url, token=REPORT_TOKEN, initial_timeout=10) as router:
        made = calls(router, llm, 10)
    # As an application exits: its router is closed first, then the instrumentation flushes.
    instrumentor.uninstrument()
    for cohort in ("stable", "canary"):
        assert plane.stored(cohort) == made[cohort]


def test_feedback_by_key_counts_in_the_next_report(
    instrument: Any, plane: Plane, llm: SimulatedLLM, telemetry: Telemetry
) -> None:
    instrument(report_interval=0.2)
    with PromptRouter(plane.url, token=REPORT_TOKEN, initial_timeout=10) as router:
        with router.select(PROMPT, unit_key="user-1") as chosen:
            key = chosen.feedback_key
        assert key is not None
        assert record_feedback(key, False, name="thumbs_up") is True
        assert record_feedback(key, 0.5) is True
        forged = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
        assert record_feedback(forged, True, name="thumbs_up") is False
        attribute = "prompt_canary.check.thumbs_up"
        eventually(lambda: plane.stored(chosen.cohort, attribute) == 1, what="the feedback reported")
        assert plane.stored(chosen.cohort, "prompt_canary.score.user_feedback") == 1
    assert (
        telemetry.total("prompt_canary.samples.dropped", prompt_canary__drop__reason="feedback_signature")
        == 1
    )


def test_a_report_retried_after_a_timeout_counts_once(
    instrument: Any, plane: Plane, llm: SimulatedLLM, telemetry: Telemetry
) -> None:
    with report_proxy(plane.url) as proxy:
        proxy.hold(seconds=1.5, count=1)  # the first answer comes after the sender's 0.5 s patience
        instrument(report_interval=0.2)
        with PromptRouter(proxy.url, token=REPORT_TOKEN, initial_timeout=10, timeout=0.5) as router:
            made = calls(router, llm, 30)
            eventually(lambda: len(proxy.delivered()) > 0, timeout=30, what="a first report")
            first = proxy.delivered()[0]

            def attempts() -> list[str | None]:
                return [d.outcome for d in proxy.delivered() if d.report_id == first.report_id]

            eventually(lambda: "duplicate" in attempts(), timeout=30, what="the held report retried")
            eventually(
                lambda: plane.stored("stable") + plane.stored("canary") == 30, timeout=30, what="every sample"
            )
        for cohort in ("stable", "canary"):
            assert plane.stored(cohort) == made[cohort]
            assert proxy.merged_n(cohort, JSON_VALID) == made[cohort]  # each report counted once
    assert first.held and attempts()[0] == "merged" and set(attempts()[1:]) == {"duplicate"}
    assert telemetry.total("prompt_canary.reports.retried") >= 1
    assert telemetry.total("prompt_canary.reports.sent", prompt_canary__report__outcome="duplicate") >= 1


def test_a_control_plane_that_is_down_never_touches_a_call(
    instrument: Any, llm: SimulatedLLM, telemetry: Telemetry
) -> None:
    instrument(registry=f"http://127.0.0.1:{free_port()}", registry_wait=0, report_interval=0.05)
    client = openai.OpenAI(base_url=llm.base_url, api_key="test", max_retries=0)
    with selection():  # a call of rollout ro_test, routed by a router of its own
        for _ in range(5):
            assert client.chat.completions.create(model="m", messages=[{"role": "user", "content": "Hi"}]).id
    assert telemetry.total("prompt_canary.responses", prompt_canary__cohort="canary") == 5
    eventually(lambda: telemetry.total("prompt_canary.reports.retried") >= 1, what="a retried report")


def test_reports_wait_while_the_control_plane_is_down_then_drop_counted() -> None:
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("test")
    tally = Tally(window_seconds=1, max_series=3)
    down = ControlPlane(f"http://127.0.0.1:{free_port()}", timeout=0.5)
    reporter = Reporter(
        tally, interval=3600, meter=meter, default_plane=down, max_pending_series=4, backoff=(0.01, 0.02)
    )
    identity = (PROMPT, "2", "canary", "ro-1")
    try:
        assert tally.active
        five = ScoringResults(tuple(CheckOutcome(f"c{i}", True) for i in range(5)), ())
        tally.count_call(identity, five, None, None)  # 3 series: 2 samples over the limit
        assert reporter.seal() == 1
        reporter.send()  # refused connection: kept, retried later
        assert reporter.pending == 1
        one = ScoringResults((CheckOutcome("json_valid", True),), ())
        for _ in range(2):  # 3 + 1 series fit in the buffer of 4; one more pushes the oldest out
            tally.count_call(identity, one, None, None)
            assert reporter.seal() == 1
        assert reporter.pending == 2
    finally:
        reporter.close()  # one last try, then what is left is dropped
    counted = _totals(reader)
    assert counted[("prompt_canary.samples.dropped", "series_limit")] == 2
    assert counted[("prompt_canary.reports.dropped", "buffer_full")] == 1
    assert counted[("prompt_canary.reports.dropped", "shutdown")] == 2
    assert counted[("prompt_canary.reports.retried", None)] >= 1


def test_a_report_the_control_plane_refuses_is_dropped_not_retried(plane: Plane) -> None:
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("test")
    tally = Tally(window_seconds=1, max_series=100)
    wrong = ControlPlane(plane.url, token="not-the-reporting-token-0123")
    reporter = Reporter(tally, interval=3600, meter=meter, default_plane=wrong)
    try:
        tally.count_call(
            (PROMPT, "2", "canary", plane.rollout_id),
            ScoringResults((CheckOutcome("x", True),), ()),
            None,
            None,
        )
        reporter.seal()
        reporter.send()
        assert reporter.pending == 0
    finally:
        reporter.close()
    assert _totals(reader)[("prompt_canary.reports.dropped", "rejected")] == 1
    assert ("prompt_canary.reports.retried", None) not in _totals(reader)
    assert plane.stored("canary", "prompt_canary.check.x") == 0


def test_reporting_off_counts_nothing(instrument: Any, plane: Plane, llm: SimulatedLLM) -> None:
    instrumentor = instrument(report_interval=0)
    assert instrumentor._installation.runtime.reporter is None
    with PromptRouter(plane.url, token=REPORT_TOKEN, initial_timeout=10) as router:
        calls(router, llm, 3)
    assert plane.stored("stable") + plane.stored("canary") == 0


def _totals(reader: InMemoryMetricReader) -> dict[tuple[str, str | None], float]:
    found: dict[tuple[str, str | None], float] = {}
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    reason = (point.attributes or {}).get("prompt_canary.drop.reason")
                    key = (metric.name, None if reason is None else str(reason))
                    found[key] = found.get(key, 0) + point.value
    return found


def test_reports_of_a_rollout_the_collector_reports_are_acknowledged_not_counted(
    instrument: Any, plane: Plane, llm: SimulatedLLM, telemetry: Telemetry, caplog: pytest.LogCaptureFixture
) -> None:
    # The Collector reported the rollout first: its statistics come from the Collector from now on.
    collector = Report(
        rollout_id=plane.rollout_id,
        window_seconds=1,
        canary={JSON_VALID: {0: ProportionStats(n=7, successes=7)}},
    )
    SqlLoopStore(plane.registry).record_report(collector, source="gateway-0", origin="collector")
    caplog.set_level(logging.WARNING, logger="otel_prompt_canary.instrumentation")
    instrument(report_interval=0.2)
    with PromptRouter(plane.url, token=REPORT_TOKEN, initial_timeout=10) as router:
        calls(router, llm, 10)
        eventually(
            lambda: (
                telemetry.total("prompt_canary.reports.sent", prompt_canary__report__outcome="ignored") >= 1
            ),
            what="the application's report acknowledged",
        )
        calls(router, llm, 10)
        eventually(
            lambda: (
                telemetry.total("prompt_canary.reports.sent", prompt_canary__report__outcome="ignored") >= 2
            ),
            what="a second report acknowledged",
        )
    assert (plane.stored("stable"), plane.stored("canary")) == (0, 7)  # the Collector's samples only
    assert telemetry.total("prompt_canary.reports.retried") == 0
    assert telemetry.total("prompt_canary.reports.dropped") == 0
    # The application was told once why, with what to change.
    (warning,) = [
        r.getMessage() for r in caplog.records if "does not count this application" in r.getMessage()
    ]
    assert f"reports of rollout {plane.rollout_id} (its statistics come from origin 'collector')" in warning
    assert "OTEL_PROMPT_CANARY_REPORT_INTERVAL=0" in warning


def test_in_app_reports_say_they_are_the_applications() -> None:
    tally = Tally(window_seconds=1, max_series=10)
    tally.active = True
    tally.count_call(
        (PROMPT, "2", "canary", "ro-1"), ScoringResults((CheckOutcome("x", True),), ()), None, None
    )
    ((_, body),) = tally.seal()
    assert body["origin"] == "application"
    assert ReportEnvelope.model_validate(body).origin is ReportOrigin.APPLICATION
