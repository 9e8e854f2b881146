"""Feedback from anywhere: a third process, holding only the answers' feedback keys, rolls a canary back.

The application (its own process, under ``opentelemetry-instrument``) answers through a router on
the control plane; each LLM call span carries the call's feedback key, and the test collects them
from the OTLP receiver, as a web front end would store each answer's key. A third process, which
has neither a router nor the calls, records the users' verdicts with those keys
(``record_feedback(key, thumbs_up, name="thumbs_up")``): the canary's answers get thumbs down. Its
in-app report carries them to the control plane, whose controller judges a policy watching only
that feedback, and rolls the canary back.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from otel_prompt_canary.demo.behaviour import Behaviour
from otel_prompt_canary.demo.simulated_llm import running_simulated_llm
from otel_prompt_canary.loop import SqlLoopStore
from otel_prompt_canary.registry import SqlRegistry
from otel_prompt_canary.service import ServiceSettings
from tests.instrumentation.otlp_receiver import otlp_receiver
from tests.reporting.support import keys_of_calls, reporting_app, route_state
from tests.support.app_process import PROMPT, app_environment, run_instrumented, start_canary_rollout
from tests.support.auth import REPORT_TOKEN, TOKEN
from tests.support.loopback import running_server
from tests.support.waiting import eventually

pytestmark = pytest.mark.timeout(300)

FEEDBACK_APP = Path(__file__).with_name("feedback_app.py")
THUMBS_UP = "prompt_canary.check.thumbs_up"
PER_COHORT = 40
#: A policy on users' feedback alone; no step is ever ready, so only a rule can end the rollout.
POLICY: dict[str, Any] = {
    "ramp": {"steps": [50, 100], "min_duration_seconds": 86_400, "min_samples": 1_000_000},
    "signals": [{"name": "thumbs_up", "kind": "proportion", "harmful": "decrease"}],
    "rules": [
        {"signal": "thumbs_up", "type": "relative", "margin": 0.1, "action": "rollback", "critical": True}
    ],
    "statistics": {"target_samples": 100, "warmup_samples": 20},
}


@pytest.fixture
def store_backend() -> str:
    """SQLite: the suite's end-to-end test runs the control plane on PostgreSQL."""
    return "sqlite"


def test_feedback_recorded_in_a_third_process_rolls_the_canary_back(
    tmp_path: Path, registry: SqlRegistry
) -> None:
    settings = ServiceSettings(token=TOKEN, report_token=REPORT_TOKEN, controller_interval_seconds=0.5)
    with (
        running_server(registry, settings) as url,
        httpx.Client(base_url=url, timeout=10) as http,
        running_simulated_llm(Behaviour()) as llm,
        otlp_receiver() as (endpoint, backend),
    ):
        rollout_id = start_canary_rollout(http, policy=POLICY)
        with reporting_app(
            tmp_path, "answers", llm_url=llm.base_url, control_plane=url, otlp_endpoint=endpoint
        ) as app:
            eventually(
                lambda: min(len(keys) for keys in keys_of_calls(backend).values()) >= PER_COHORT,
                timeout=90,
                what=f"{PER_COHORT} answers of each cohort",
                between=app.check_running,
                diagnostics=app.stderr_tail,
            )
            app.stop(app.stderr_tail)
        keys = keys_of_calls(backend)
        verdicts = [(key, True) for key in keys["stable"][:PER_COHORT]]
        verdicts += [(key, False) for key in keys["canary"][:PER_COHORT]]
        forged = keys["canary"][-1][:-3] + "abc"
        feedback_file = tmp_path / "feedback.json"
        feedback_file.write_text(json.dumps([*verdicts, (forged, False)]))
        assert route_state(http) == "ramping"  # the answers alone decided nothing

        environment = app_environment(
            llm_url=llm.base_url,
            control_plane=url,
            stop_file=tmp_path / "unused",
            rate=1,
            max_seconds=60,
            APP_FEEDBACK_FILE=str(feedback_file),
            OTEL_PROMPT_CANARY_REGISTRY=url,
            OTEL_PROMPT_CANARY_TOKEN=REPORT_TOKEN,
            OTEL_PROMPT_CANARY_FINGERPRINT="false",  # no router of any kind: the keys say it all
            OTEL_TRACES_EXPORTER="none",
            OTEL_METRICS_EXPORTER="none",
            OTEL_LOGS_EXPORTER="none",
        )
        output = run_instrumented(FEEDBACK_APP, environment)
        assert json.loads(output.strip().splitlines()[-1]) == {"recorded": 2 * PER_COHORT, "refused": 1}

        eventually(
            lambda: route_state(http) == "rolled_back",
            timeout=60,
            what="the rollback on users' feedback",
            diagnostics=lambda: http.get(f"/v1/prompts/{PROMPT}/rollout/verdict").text,
        )
        history = http.get(f"/v1/prompts/{PROMPT}/rollout/history").json()
    snapshot = SqlLoopStore(registry).rollout_snapshot(rollout_id)
    assert history[-1]["action"] == "rollback" and history[-1]["actor"] == "controller"
    assert "thumbs_up.relative" in history[-1]["reason"]
    assert (snapshot.stable[THUMBS_UP].n, snapshot.stable[THUMBS_UP].successes) == (PER_COHORT, PER_COHORT)  # type: ignore[union-attr]
    assert (snapshot.canary[THUMBS_UP].n, snapshot.canary[THUMBS_UP].successes) == (PER_COHORT, 0)  # type: ignore[union-attr]
