"""The whole loop with the built Collector: app -> OTLP -> otelcol-promptcanary -> control plane -> app.

Every part is real and on loopback: the simulated LLM speaks the OpenAI API; the application (its
own process, run by ``opentelemetry-instrument``) routes each request with a ``PromptRouter``
long-polling the control plane and calls the real ``openai`` SDK under the ``Selection``; its
spans go over OTLP/HTTP to the built ``otelcol-promptcanary``, whose ``promptcanary`` processor
reads the policies from ``/v1/policies``, judges, and posts signed alerts and reports; the control
plane (``prompt-canary serve`` on SQLite) moves the routing flag, and the routers see it.

- A canary prompt that breaks JSON for refund and billing questions is rolled back by the
  Collector's own judge: the control plane's controller is off, so the Collector's signed alert is
  the only thing that can roll it back.
- A healthy canary walks the whole ramp to promotion: the controller judges the statistics the
  Collector reports (``/v1/reports``), with ``time_scale`` shortening each step to a few seconds.
- A canary whose JSON stays valid but whose answers the LLM judge grades lower is rolled back by
  the Collector on the judge's scores alone: they leave the application as late
  ``gen_ai.evaluation.result`` log records, and the processor reads them on the logs pipeline.

The application reports its own calls too (in-app reporting is on, as it is by default for an
application whose router reads a control plane, and it holds the reporting credential): both paths
report the same calls, and the control plane counts the Collector's, which reported first, and
acknowledges the application's as ignored. Every test checks that no call was counted twice.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from otel_prompt_canary import PromptRouter
from otel_prompt_canary.demo import demo_behaviour
from otel_prompt_canary.demo.behaviour import Rule
from otel_prompt_canary.demo.simulated_llm import running_simulated_llm
from otel_prompt_canary.loop import SqlLoopStore
from otel_prompt_canary.registry import SqlRegistry, open_store
from otel_prompt_canary.service import ServiceSettings
from tests.collector.support import Collector, running_collector
from tests.instrumentation.otlp_receiver import Received, attributes, otlp_receiver
from tests.support.app_process import (
    CANARY_SYSTEM,
    JUDGE_MODEL,
    PROMPT,
    STABLE_SYSTEM,
    AppProcess,
    app_environment,
    grade_long_answers_lower,
    running_app,
    start_canary_rollout,
)
from tests.support.auth import REPORT_TOKEN, TOKEN
from tests.support.loopback import running_server
from tests.support.waiting import eventually

# The first test of a session may build the distribution (about 3.5 minutes on 2 cores).
pytestmark = pytest.mark.timeout(1200)

WEBHOOK_SECRET = "e2e-collector-webhook-secret-0123456789"
SOURCE = "e2e-gateway"

#: A fast ramp: three steps, each 60 s of policy time (3 s at time scale 20) and 20 samples per cohort.
TIME_SCALE = 20.0
POLICY: dict[str, Any] = {
    "alpha": 0.05,
    "ramp": {"steps": [25, 50, 100], "min_duration_seconds": 60, "min_samples": 20},
    "signals": [{"name": "json_valid", "kind": "proportion", "harmful": "decrease"}],
    "rules": [
        {"signal": "json_valid", "type": "relative", "margin": 0.05, "action": "rollback", "critical": True}
    ],
    "statistics": {"target_samples": 100, "warmup_samples": 20},
}

#: Only the LLM judge's score, judged relative to stable. The step matures as soon as it has 20
#: scores per cohort, so the rule is not critical: it acts through the step's (late) samples.
JUDGE_POLICY: dict[str, Any] = {
    "alpha": 0.05,
    "ramp": {"steps": [25, 50, 100], "min_duration_seconds": 0, "min_samples": 20},
    "signals": [{"name": "judge", "kind": "mean", "harmful": "decrease"}],
    "rules": [{"signal": "judge", "type": "relative", "margin": 0.05, "action": "rollback"}],
    "statistics": {"target_samples": 100, "warmup_samples": 20},
}
#: Half of the calls are sent to the LLM judge, in the application's background worker.
JUDGE_SAMPLE_RATE = 0.5


@dataclass
class Loop:
    """The running parts of one end-to-end test."""

    store: SqlRegistry
    service: str
    http: httpx.Client
    rollout_id: str
    collector: Collector
    backend: Received
    router: PromptRouter
    app: AppProcess

    @property
    def alerts(self) -> SqlLoopStore:
        """The control plane's alert log and reports, in the same database."""
        return SqlLoopStore(self.store)

    def state(self) -> str | None:
        route = self.router.route(PROMPT)
        return None if route is None else route.state.value

    def diagnostics(self) -> str:
        """What to look at when the loop did not close in time."""
        return "\n".join(
            [
                f"route: {self.http.get(f'/v1/routes/{PROMPT}').text}",
                f"report origin: {self.alerts.report_origin(self.rollout_id)}",
                f"alerts: {self.http.get('/v1/alerts').text[-2000:]}",
                f"verdict: {self.http.get(f'/v1/prompts/{PROMPT}/rollout/verdict').text[-2000:]}",
                f"app stderr: {self.app.stderr_tail()}",
                f"collector log: {self.collector.log_tail(4000)}",
            ]
        )

    def stop_app(self) -> dict[str, Any]:
        """Stop the application and return its summary (calls by state/cohort/version)."""
        return self.app.stop(self.diagnostics)

    def rolled_back(self) -> tuple[float, dict[str, Any]]:
        """Wait for the rollback, let the application serve 1.5 s more, and stop it; returns the
        seconds the rollback took from the application's start and the application's summary."""
        seconds = eventually(
            lambda: self.state() == "rolled_back",
            timeout=90,
            what="the rollback",
            between=self.app.check_running,
            diagnostics=self.diagnostics,
        )
        # The router the test holds long-polls the control plane: every unit is back on stable.
        assert {self.router.select(PROMPT, f"user-{i}").version for i in range(500)} == {1}
        time.sleep(1.5)  # the application keeps serving, on the stable version only
        return seconds, self.stop_app()


def _app_environment(
    llm_url: str, service: str, collector: Collector, stop_file: Path, *, judge: bool
) -> dict[str, str]:
    # With the judge, its late scores leave as log records, so logs are exported too.
    judging = (
        {
            "OTEL_LOGS_EXPORTER": "otlp",
            "OTEL_BLRP_SCHEDULE_DELAY": "200",
            "OTEL_PROMPT_CANARY_JUDGE_ENDPOINT": llm_url,
            "OTEL_PROMPT_CANARY_JUDGE_MODEL": JUDGE_MODEL,
            "OTEL_PROMPT_CANARY_JUDGE_SAMPLE_RATE": str(JUDGE_SAMPLE_RATE),
        }
        if judge
        else {"OTEL_LOGS_EXPORTER": "none"}
    )
    return app_environment(
        llm_url=llm_url,
        control_plane=service,
        stop_file=stop_file,
        rate=100,
        max_seconds=240,
        OTEL_SERVICE_NAME="e2e-support-bot",
        # In-app reporting is on (every 10 s, and at exit), as an application on the documented
        # fleet path runs it: the control plane ignores these reports, the Collector's came first.
        OTEL_PROMPT_CANARY_TOKEN=REPORT_TOKEN,
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_METRICS_EXPORTER="otlp",
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_EXPORTER_OTLP_ENDPOINT=collector.http_endpoint,
        OTEL_BSP_SCHEDULE_DELAY="200",
        OTEL_METRIC_EXPORT_INTERVAL="5000",
        **judging,
    )


@contextmanager
def canary_loop(
    tmp_path: Path, binary: Path, *, healthy: bool, controller: bool, judge: bool = False
) -> Iterator[Loop]:
    """Start every part, with a rollout of the canary prompt under :data:`POLICY`.

    With ``judge``, the rollout's policy is :data:`JUDGE_POLICY`, the application samples its
    answers to the LLM judge, and the canary's answers are long-winded but valid JSON.
    """
    if judge:
        behaviour, _ = demo_behaviour(
            stable_prompt=STABLE_SYSTEM, canary_prompt=CANARY_SYSTEM, break_rate=0.0
        )
        behaviour.add(Rule(reply=grade_long_answers_lower, model=JUDGE_MODEL))
    else:
        behaviour, _ = demo_behaviour(
            stable_prompt=STABLE_SYSTEM, canary_prompt=CANARY_SYSTEM, healthy=healthy
        )
    settings = ServiceSettings(
        token=TOKEN,
        report_token=REPORT_TOKEN,
        webhook_secret=WEBHOOK_SECRET,
        controller=controller,
        controller_interval_seconds=0.5,
        time_scale=TIME_SCALE,
    )
    with ExitStack() as stack:
        store = stack.enter_context(open_store(tmp_path / "registry.db"))
        llm = stack.enter_context(running_simulated_llm(behaviour))
        service = stack.enter_context(running_server(store, settings))
        http = stack.enter_context(httpx.Client(base_url=service, timeout=10))
        rollout_id = start_canary_rollout(http, policy=JUDGE_POLICY if judge else POLICY)

        backend_url, backend = stack.enter_context(otlp_receiver())
        collector = stack.enter_context(
            running_collector(
                binary,
                tmp_path / "collector",
                control_plane_url=service,
                secret=WEBHOOK_SECRET,
                forward_to=backend_url,
            )
        )
        router = stack.enter_context(PromptRouter(service, initial_timeout=10, long_poll_wait=20))
        assert router.route(PROMPT) is not None

        stop_file = tmp_path / "stop-app"
        environment = _app_environment(llm.base_url, service, collector, stop_file, judge=judge)
        app = stack.enter_context(running_app(environment, tmp_path, stop_file))
        yield Loop(
            store=store,
            service=service,
            http=http,
            rollout_id=rollout_id,
            collector=collector,
            backend=backend,
            router=router,
            app=app,
        )


def _forwarded_llm_spans(backend: Received) -> list[dict[str, Any]]:
    """Attributes of the LLM call spans the Collector forwarded to the backend."""
    return [
        a
        for a in (attributes(span.attributes) for span in backend.spans())
        if a.get("gen_ai.prompt.name") == PROMPT
    ]


def _check_forwarded(loop: Loop, summary: dict[str, Any], *, stable_after: str) -> None:
    """Fail open: every LLM call span reached the backend, with its attributes unchanged.

    ``stable_after`` is the stable version once the rollout has ended (rolled back or promoted).
    """
    calls = sum(summary["calls"].values())
    eventually(
        lambda: len(_forwarded_llm_spans(loop.backend)) >= calls,
        timeout=15,
        what=f"the {calls} LLM call spans forwarded to the backend",
        interval=0.1,
        diagnostics=lambda: f"forwarded {len(_forwarded_llm_spans(loop.backend))}; {summary}",
    )
    forwarded = _forwarded_llm_spans(loop.backend)
    assert len(forwarded) == calls, (len(forwarded), summary)
    for span in forwarded:
        assert isinstance(span["prompt_canary.check.json_valid"], bool)
        if "prompt_canary.rollout.id" not in span:  # routed after the rollout ended
            assert (span["prompt_canary.cohort"], span["gen_ai.prompt.version"]) == ("stable", stable_after)
            continue
        assert span["prompt_canary.rollout.id"] == loop.rollout_id
        assert span["gen_ai.prompt.version"] == {"stable": "1", "canary": "2"}[span["prompt_canary.cohort"]]
    tagged = sum(1 for span in forwarded if "prompt_canary.rollout.id" in span)
    assert tagged >= sum(
        n for key, n in summary["calls"].items() if not key.startswith(("rolled_back/", "promoted/"))
    )


def _check_counted_once(loop: Loop, summary: dict[str, Any], *, logged: bool = True) -> None:
    """The statistics are the Collector's; the application's reports of the same calls reached the
    control plane (its credential let them in) and were acknowledged as ignored, not counted.

    ``logged``: the application's log goes to its stderr (not exported), where its reporter says
    once why its reports are not counted.
    """
    origin = loop.alerts.report_origin(loop.rollout_id)
    assert origin is not None, loop.diagnostics()
    assert (origin.origin.value, origin.first_source) == ("collector", SOURCE)
    assert origin.ignored_origin.value == "application"
    # Every application report was ignored: at least the one it sends at exit, with its calls.
    assert origin.ignored_reports >= 1, loop.diagnostics()
    assert origin.last_ignored_source is not None and "e2e-support-bot@" in origin.last_ignored_source
    rollout_calls = sum(n for key, n in summary["calls"].items() if key.startswith("ramping/"))
    assert origin.ignored_samples >= rollout_calls  # a json_valid and token samples per call
    # No call counted twice: at most one json_valid sample per span of the rollout (both paths
    # counted would make about two).
    json_valid = "prompt_canary.check.json_valid"
    counted = loop.alerts.rollout_snapshot(loop.rollout_id)
    n = sum(getattr(counted, cohort)[json_valid].n for cohort in ("stable", "canary"))
    spans = [
        s for s in _forwarded_llm_spans(loop.backend) if s.get("prompt_canary.rollout.id") == loop.rollout_id
    ]
    assert 0 < n <= len(spans), (n, len(spans), summary)
    if logged:
        assert "does not count this application's reports" in loop.app.stderr_tail(20_000)


def test_the_collector_rolls_back_a_regression_and_the_router_sees_it(
    tmp_path: Path, collector_binary: Path
) -> None:
    with canary_loop(tmp_path, collector_binary, healthy=False, controller=False) as loop:
        seconds, summary = loop.rolled_back()
        verdicts = loop.collector.metric("otelcol_processor_promptcanary_verdicts", action="rollback")
        delivered = loop.collector.metric("otelcol_processor_promptcanary_deliveries", kind="alert")
        recorded = loop.collector.metric("otelcol_processor_promptcanary_spans_recorded")
        assert loop.collector.stop() == 0, loop.collector.log_tail()
        _check_forwarded(loop, summary, stable_after="1")
        _check_counted_once(loop, summary)

        route = loop.store.get_route(PROMPT)
        history = loop.store.history(PROMPT)
        alerts = loop.alerts.list_alerts(PROMPT)

    print(f"rolled back {seconds:.1f} s after the application started; calls: {summary['calls']}")
    assert summary["errors"] == 0, summary
    calls: dict[str, int] = summary["calls"]
    assert calls.get("ramping/canary/2", 0) >= POLICY["statistics"]["warmup_samples"], calls
    # Once the application's router saw the rollback, no call went to the canary version.
    assert calls.get("rolled_back/stable/1", 0) > 0, calls
    assert not [k for k in calls if k.startswith("rolled_back/") and not k.endswith("/1")], calls

    assert (route.state.value, route.canary_weight_bp) == ("rolled_back", 0)
    assert [r.action.value for r in history] == ["start", "rollback"]
    rollback = history[-1]
    assert rollback.actor == f"collector {SOURCE}"
    assert "json_valid.relative" in rollback.reason
    evidence: Any = rollback.evidence
    assert evidence["source"] == "collector"
    alert = evidence["alert"]
    assert (alert["type"], alert["source"], alert["action"]) == ("prompt_canary.alert", SOURCE, "rollback")
    assert (alert["prompt"], alert["rollout_id"], alert["rule"]) == (
        PROMPT,
        loop.rollout_id,
        "json_valid.relative",
    )
    proof = alert["evidence"]
    assert proof["signal"] == "prompt_canary.check.json_valid"
    assert proof["critical"] is True
    canary, stable = proof["cohorts"]["canary"], proof["cohorts"]["stable"]
    assert (canary["version"], stable["version"]) == ("2", "1")
    assert stable["successes"] == stable["n"] >= 20
    assert canary["successes"] < canary["n"]
    assert proof["bound"] < -POLICY["rules"][0]["margin"]
    assert proof["statistic"] > proof["statistic_threshold"]

    (decision,) = alerts
    assert (decision.source, decision.outcome.value, decision.action.value) == (
        "collector",
        "applied",
        "rollback",
    )
    assert decision.audit_id == rollback.id

    assert verdicts == 1
    assert delivered >= 1
    assert recorded >= calls.get("ramping/canary/2", 0)


def test_a_healthy_canary_is_promoted_on_the_collectors_reports(
    tmp_path: Path, collector_binary: Path
) -> None:
    with canary_loop(tmp_path, collector_binary, healthy=True, controller=True) as loop:
        shown: dict[str, Any] = {}

        def origin_shown() -> bool:
            # While the rollout is active, its verdict names the origin its statistics come from.
            answer = loop.http.get(f"/v1/prompts/{PROMPT}/rollout/verdict")
            if answer.status_code == 200 and answer.json()["report_origin"] is not None:
                shown.update(answer.json()["report_origin"])
            return bool(shown)

        eventually(origin_shown, timeout=60, what="the verdict naming its statistics' origin")
        seconds = eventually(
            lambda: loop.state() == "promoted",
            timeout=120,
            what="the promotion",
            between=loop.app.check_running,
            diagnostics=loop.diagnostics,
        )
        assert {loop.router.select(PROMPT, f"user-{i}").version for i in range(500)} == {2}
        summary = loop.stop_app()
        verdicts = loop.collector.metric("otelcol_processor_promptcanary_verdicts")
        reports = loop.collector.metric("otelcol_processor_promptcanary_deliveries", kind="report")
        assert loop.collector.stop() == 0, loop.collector.log_tail()
        _check_forwarded(loop, summary, stable_after="2")
        _check_counted_once(loop, summary)

        history = loop.store.history(PROMPT)
        alerts = loop.alerts.list_alerts(PROMPT)
        (totals,) = loop.alerts.rollout_reports(loop.rollout_id)

    print(f"promoted {seconds:.1f} s after the application started; calls: {summary['calls']}")
    assert summary["errors"] == 0, summary
    assert [r.action.value for r in history] == ["start", "advance", "advance", "promote"]
    min_samples = POLICY["ramp"]["min_samples"]
    for record, percent in zip(history[1:], (25, 50, 100), strict=True):
        assert record.actor == "controller"
        evidence: Any = record.evidence
        verdict = evidence["verdict"]
        assert verdict["canary_percent"] == percent
        assert verdict["breached"] == [] and verdict["ready"] is True
        assert verdict["canary_samples"] >= min_samples
        if percent < 100:
            assert verdict["stable_samples"] >= min_samples
        assert evidence["elapsed_seconds"] >= POLICY["ramp"]["min_duration_seconds"]
    assert alerts == []
    assert verdicts == 0
    assert (shown["origin"], shown["first_source"]) == ("collector", SOURCE)
    # The controller judged what the Collector reported: the rollout's totals are those reports.
    assert reports >= 3
    assert totals.window_seconds == 1
    json_valid = "prompt_canary.check.json_valid"
    canary_n = sum(s.n for s in totals.canary[json_valid].values())
    stable_n = sum(s.n for s in totals.stable[json_valid].values())
    assert canary_n >= 3 * min_samples and stable_n >= 2 * min_samples
    # A healthy canary: every answer was valid JSON, as in the stable cohort.
    canary_valid = sum(getattr(s, "successes", 0) for s in totals.canary[json_valid].values())
    assert canary_valid == canary_n


def _judge_records(backend: Received) -> list[tuple[bytes, dict[str, Any]]]:
    """(trace id, attributes) of the LLM judge's late results the Collector forwarded."""
    return [
        (record.trace_id, a)
        for record in backend.log_records("gen_ai.evaluation.result")
        if (a := attributes(record.attributes)).get("gen_ai.evaluation.name") == "judge"
    ]


def test_the_collector_rolls_back_on_the_llm_judges_late_scores(
    tmp_path: Path, collector_binary: Path
) -> None:
    with canary_loop(tmp_path, collector_binary, healthy=False, controller=False, judge=True) as loop:
        seconds, summary = loop.rolled_back()
        late = loop.collector.metric("otelcol_processor_promptcanary_log_records_recorded")
        verdicts = loop.collector.metric("otelcol_processor_promptcanary_verdicts", action="rollback")
        assert loop.collector.stop() == 0, loop.collector.log_tail()
        _check_forwarded(loop, summary, stable_after="1")
        _check_counted_once(loop, summary, logged=False)
        eventually(
            lambda: len(_judge_records(loop.backend)) >= late,
            timeout=15,
            what="the judge's log records forwarded to the backend",
            interval=0.1,
        )

        history = loop.store.history(PROMPT)
        (decision,) = loop.alerts.list_alerts(PROMPT)

    print(f"rolled back {seconds:.1f} s after the application started; calls: {summary['calls']}")
    assert summary["errors"] == 0, summary
    calls: dict[str, int] = summary["calls"]
    assert calls.get("rolled_back/stable/1", 0) > 0, calls
    assert not [k for k in calls if k.startswith("rolled_back/") and not k.endswith("/1")], calls
    # The JSON check stayed healthy in both cohorts: only the judge's grade tells them apart.
    spans = _forwarded_llm_spans(loop.backend)
    assert spans and all(span["prompt_canary.check.json_valid"] is True for span in spans)
    assert not [k for span in spans for k in span if k.startswith("prompt_canary.score.judge")]

    # The judge's scores left the application as log records of the calls' rollout and trace,
    # and passed through the Collector unchanged.
    records = _judge_records(loop.backend)
    tagged = [
        (trace_id, a) for trace_id, a in records if a.get("prompt_canary.rollout.id") == loop.rollout_id
    ]
    # The processor also counts the late results of calls made after the rollback, which have no
    # rollout (they feed drift monitoring of the live version): it counted at least the tagged ones.
    assert late >= len(tagged) >= 2 * JUDGE_POLICY["statistics"]["warmup_samples"], (len(tagged), late)
    span_traces = {span.trace_id for span in loop.backend.spans()}
    for trace_id, a in tagged:
        assert trace_id in span_traces
        expected = {"canary": ("2", 0.5), "stable": ("1", 0.9)}[a["prompt_canary.cohort"]]
        assert (a["gen_ai.prompt.version"], a["gen_ai.evaluation.score.value"]) == expected
        assert a["gen_ai.prompt.name"] == PROMPT

    assert [r.action.value for r in history] == ["start", "rollback"]
    rollback = history[-1]
    assert rollback.actor == f"collector {SOURCE}"
    assert "judge.relative" in rollback.reason
    alert: Any = rollback.evidence
    alert = alert["alert"]
    assert (alert["source"], alert["rollout_id"], alert["action"], alert["rule"]) == (
        SOURCE,
        loop.rollout_id,
        "rollback",
        "judge.relative",
    )
    proof = alert["evidence"]
    assert proof["signal"] == "prompt_canary.score.judge" and proof["kind"] == "mean"
    canary, stable = proof["cohorts"]["canary"], proof["cohorts"]["stable"]
    assert (canary["version"], stable["version"]) == ("2", "1")
    assert (canary["estimate"], stable["estimate"]) == (pytest.approx(0.5), pytest.approx(0.9))
    assert min(canary["n"], stable["n"]) >= JUDGE_POLICY["statistics"]["warmup_samples"]
    assert proof["bound"] < -JUDGE_POLICY["rules"][0]["margin"]
    assert proof["statistic"] > proof["statistic_threshold"]
    assert (decision.source, decision.outcome.value, decision.audit_id) == (
        "collector",
        "applied",
        rollback.id,
    )
    assert verdicts == 1
