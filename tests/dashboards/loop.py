"""A canary rollout watched by a real Prometheus that alerts through a real Alertmanager.

Every part is real and on loopback:

- the simulated LLM speaks the OpenAI API; under the canary prompt it breaks the JSON of every
  refund and billing answer and writes longer answers (unless ``healthy``); one call in a hundred
  fails with HTTP 503 in both cohorts alike; as the LLM judge, it grades the longer answers lower;
- the control plane (SQLite, its own controller off, so that only an alert can stop the rollout)
  holds a rollout of version 2 at 50%;
- the application (``tests/collector/canary_app.py``) runs under ``opentelemetry-instrument`` with
  ``OTEL_METRICS_EXPORTER=prometheus``: the instrumentor this project registers records the
  ``prompt_canary.*`` metrics in an SDK MeterProvider whose reader is
  ``opentelemetry-exporter-prometheus``, served on 127.0.0.1; it routes with a ``PromptRouter``
  long-polling the control plane and calls the real ``openai`` SDK; besides the default checks,
  the ``output_tokens`` score and the sampled LLM judge run, so that scores are recorded too;
- Prometheus scrapes it every second and evaluates dashboards/prometheus/prompt-canary.rules.yml
  every second, with the durations of :func:`~tests.dashboards.support.fast_rules` (or the rules
  a scenario gives);
- Alertmanager runs dashboards/alertmanager/alertmanager.yml pointed at the control plane.
"""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from otel_prompt_canary.demo import demo_behaviour
from otel_prompt_canary.demo.behaviour import ModelRequest, Reply, Rule
from otel_prompt_canary.demo.simulated_llm import running_simulated_llm
from otel_prompt_canary.loop import SqlLoopStore
from otel_prompt_canary.registry import SqlRegistry, open_store
from otel_prompt_canary.service import ServiceSettings
from tests.dashboards.support import (
    RULES,
    PrometheusApi,
    alertmanager_config,
    fast_rules,
)
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
from tests.support.auth import ALERTMANAGER_TOKEN, TOKEN
from tests.support.loopback import free_port, running_server
from tests.support.services import alertmanager_server, prometheus_server

#: Calls per second of the application; the rollout sends half of them to the canary.
APP_RATE = 60
#: The alert that asks for a rollback when a check fails far more often on the canary.
ROLLBACK_ALERT = "PromptCanaryCheckFailuresFarAboveStable"

PROMETHEUS_CONFIG = """\
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: ['*.rules.yml']
alerting:
  alertmanagers:
    - static_configs:
        - targets: ['{alertmanager}']
scrape_configs:
  - job_name: support-bot
    static_configs:
      - targets: ['127.0.0.1:{app_port}']
"""


def _one_call_in_a_hundred(request: ModelRequest) -> bool:
    """True for "Where is my package n?" with n % 100 == 10 (n = 10, 110, 210...): 1% of all calls."""
    match = re.search(r"package (\d+)\?$", request.user)
    return match is not None and int(match.group(1)) % 100 == 10


@dataclass
class CanaryLoop:
    """The running parts of one scenario."""

    store: SqlRegistry
    service: str
    rollout_id: str
    prometheus: PrometheusApi
    metrics_url: str
    app: AppProcess

    @property
    def alerts(self) -> SqlLoopStore:
        """The control plane's alert log and reports, in the same database."""
        return SqlLoopStore(self.store)

    def route_state(self) -> str:
        return self.store.get_route(PROMPT).state.value

    def scrape(self) -> str:
        """The application's Prometheus exposition, as Prometheus scrapes it."""
        with urllib.request.urlopen(self.metrics_url, timeout=10) as answer:
            text: str = answer.read().decode()
            return text

    def stop_app(self) -> dict[str, Any]:
        """Stop the application; its summary: calls by ``<routing state>/<cohort>/<version>``."""
        return self.app.stop(self.diagnostics)

    def diagnostics(self) -> str:
        return "\n".join(
            [
                f"route: {self.store.get_route(PROMPT)}",
                f"alerts (control plane): {self.alerts.list_alerts(PROMPT)}",
                f"alerts (Prometheus): {self.prometheus.alerts()}",
                f"app stderr: {self.app.stderr_tail()}",
            ]
        )


@dataclass
class Regression:
    """A regressing canary that Prometheus and Alertmanager rolled back.

    Prometheus, Alertmanager and the control plane still run; the application has stopped.
    """

    loop: CanaryLoop
    #: Unix time at which Prometheus first reported the rollback alert firing: both cohorts had
    #: traffic in every rate window then.
    fired_at: float
    #: Seconds from the application's start to the alert firing, and to the rollback.
    fired_after: float
    rolled_back_after: float
    #: The application's Prometheus exposition, read just after the rollback.
    scrape: str
    #: The application's calls by ``<routing state>/<cohort>/<version>``; it stopped after the scrape.
    calls: dict[str, int]


def _app_environment(llm_url: str, service: str, metrics_port: int, stop_file: Path) -> dict[str, str]:
    return app_environment(
        llm_url=llm_url,
        control_plane=service,
        stop_file=stop_file,
        rate=APP_RATE,
        max_seconds=180,
        OTEL_SERVICE_NAME="support-bot",
        # Prometheus and Alertmanager judge these calls: no in-app reports to the control plane.
        OTEL_PROMPT_CANARY_REPORT_INTERVAL="0",
        OTEL_TRACES_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        OTEL_METRICS_EXPORTER="prometheus",
        OTEL_EXPORTER_PROMETHEUS_HOST="127.0.0.1",
        OTEL_EXPORTER_PROMETHEUS_PORT=str(metrics_port),
        OTEL_PROMPT_CANARY_CHECKS="json_valid,max_output_tokens,truncation,refusal,output_tokens",
        OTEL_PROMPT_CANARY_JUDGE_ENDPOINT=llm_url,
        OTEL_PROMPT_CANARY_JUDGE_MODEL=JUDGE_MODEL,
        OTEL_PROMPT_CANARY_JUDGE_SAMPLE_RATE="0.25",
    )


@contextmanager
def canary_loop(
    workdir: Path, *, healthy: bool, rule_files: Mapping[str, str] | None = None, break_rate: float = 1.0
) -> Iterator[CanaryLoop]:
    """Start every part; the application is calling when the block begins.

    ``rule_files`` (name ending in ``.rules.yml`` -> text) are what Prometheus evaluates; by default
    the shipped rules with :func:`~tests.dashboards.support.fast_rules`. ``break_rate`` is the share
    of refund and billing answers whose JSON an unhealthy canary breaks (0: its answers are only
    longer, and graded lower by the judge).
    """
    if rule_files is None:
        rule_files = {"prompt-canary.rules.yml": fast_rules(RULES.read_text())}
    workdir.mkdir(parents=True, exist_ok=True)
    behaviour, _ = demo_behaviour(
        stable_prompt=STABLE_SYSTEM, canary_prompt=CANARY_SYSTEM, break_rate=break_rate, healthy=healthy
    )
    behaviour.add(Rule(reply=Reply.failure(503, "overloaded", retryable=False), when=_one_call_in_a_hundred))
    behaviour.add(Rule(reply=grade_long_answers_lower, model=JUDGE_MODEL))
    settings = ServiceSettings(token=TOKEN, alertmanager_token=ALERTMANAGER_TOKEN, controller=False)
    token_file = workdir / "alertmanager-token"
    token_file.write_text(ALERTMANAGER_TOKEN)
    with ExitStack() as stack:
        store = stack.enter_context(open_store(workdir / "registry.db"))
        llm = stack.enter_context(running_simulated_llm(behaviour))
        service = stack.enter_context(running_server(store, settings))
        http = stack.enter_context(httpx.Client(base_url=service, timeout=10))
        rollout_id = start_canary_rollout(http, ramp=[50, 100])

        alertmanager = stack.enter_context(alertmanager_server(alertmanager_config(service, token_file)))
        app_port = free_port()
        prometheus_url = stack.enter_context(
            prometheus_server(
                PROMETHEUS_CONFIG.format(
                    alertmanager=alertmanager.removeprefix("http://"), app_port=app_port
                ),
                dict(rule_files),
            )
        )
        prometheus = PrometheusApi(prometheus_url)
        stack.callback(prometheus.close)

        stop_file = workdir / "stop-app"
        environment = _app_environment(llm.base_url, service, app_port, stop_file)
        app = stack.enter_context(running_app(environment, workdir, stop_file))
        yield CanaryLoop(
            store=store,
            service=service,
            rollout_id=rollout_id,
            prometheus=prometheus,
            metrics_url=f"http://127.0.0.1:{app_port}/metrics",
            app=app,
        )
