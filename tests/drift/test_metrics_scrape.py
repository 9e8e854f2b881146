"""A real Prometheus scrapes the control plane's drift metrics with the read token, as docs/drift.md
configures it, and the dashboard's drift queries find the signal in alarm and the open alert."""

from __future__ import annotations

from typing import Any

import httpx

from otel_prompt_canary.loop.drift import DriftMonitor
from otel_prompt_canary.registry import SqlRegistry
from otel_prompt_canary.service import ServiceSettings
from tests.drift.factories import CHECK, FAST, Clock, Feeder, push_bot
from tests.support.auth import TOKEN
from tests.support.loopback import running_server
from tests.support.services import prometheus_server
from tests.support.waiting import eventually

READ_TOKEN = "drift-read-token-0123456789"

SCRAPE = """\
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: prompt-canary-drift
    metrics_path: /v1/drift/metrics
    authorization:
      credentials: {token}
    static_configs:
      - targets: ["{target}"]
"""


def test_prometheus_scrapes_the_drift_metrics(registry: SqlRegistry) -> None:
    push_bot(registry)
    clock = Clock()
    feed = Feeder(DriftMonitor(registry, FAST, clock=clock), clock)
    feed.minutes(70, pass_rate=0.99)
    for _ in range(240):
        if feed.minute(pass_rate=0.9):
            break
    settings = ServiceSettings(
        token=TOKEN, read_token=READ_TOKEN, controller=False, drift_interval_seconds=3600
    )
    with running_server(registry, settings) as service:
        assert httpx.get(f"{service}/v1/drift/metrics").status_code == 401  # reads need the read token
        config = SCRAPE.format(token=READ_TOKEN, target=service.removeprefix("http://"))
        with prometheus_server(config) as prometheus:

            def query(expr: str) -> list[dict[str, Any]]:
                answer = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=10).json()
                result: list[dict[str, Any]] = answer["data"]["result"]
                return result

            selector = 'gen_ai_prompt_name="bot"'
            eventually(
                lambda: query(f"prompt_canary_drift_open_alerts{{{selector}}}"), timeout=30, what="a scrape"
            )
            (alarm,) = query(f"prompt_canary_drift_alarm{{{selector}}}")
            assert alarm["metric"]["signal"] == CHECK and alarm["value"][1] == "1"
            (statistic,) = query(
                f"prompt_canary_drift_statistic{{{selector}}} >= prompt_canary_drift_threshold"
            )
            assert float(statistic["value"][1]) >= FAST.threshold
            assert query(f"sum(prompt_canary_drift_open_alerts{{{selector}}})")[0]["value"][1] == "1"
