"""Exactly once across a killed application: what the control plane stores is what was reported, once.

A proxy in front of the control plane records every report and its answer. The first application
reports for a while; then the proxy holds the answer to its next report (the control plane has
counted it, the application does not know) and the application is killed (SIGKILL) while it waits:
it never retries that report, and what it had counted since is lost. A second application (the
restart) runs and stops cleanly. The stored totals are then exactly the reports the control plane
counted, each once: none of the killed application's counts came back twice, and every call of the
restarted one is there.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from otel_prompt_canary.demo.behaviour import Behaviour
from otel_prompt_canary.demo.simulated_llm import running_simulated_llm
from otel_prompt_canary.loop import SqlLoopStore
from otel_prompt_canary.registry import SqlRegistry
from otel_prompt_canary.service import ServiceSettings
from tests.instrumentation.otlp_receiver import otlp_receiver
from tests.reporting.support import reporting_app
from tests.support.app_process import start_canary_rollout
from tests.support.auth import REPORT_TOKEN, TOKEN
from tests.support.loopback import running_server
from tests.support.report_proxy import ReportProxy, report_proxy
from tests.support.waiting import eventually

pytestmark = pytest.mark.timeout(300)

JSON_VALID = "prompt_canary.check.json_valid"
#: A rollout that stays as it is while the test runs (the controller is off as well).
STAY = {
    "ramp": {"steps": [50, 100], "min_duration_seconds": 86_400, "min_samples": 1_000_000},
    "signals": [{"name": "json_valid", "kind": "proportion", "harmful": "decrease"}],
    "rules": [{"signal": "json_valid", "type": "relative", "margin": 0.05, "action": "rollback"}],
}


@pytest.fixture
def store_backend() -> str:
    """SQLite: the store's de-duplication is tested on both backends in tests/service."""
    return "sqlite"


@pytest.fixture
def proxied(registry: SqlRegistry) -> Iterator[tuple[ReportProxy, str]]:
    """The control plane behind a report proxy, with a rollout; yields (proxy, rollout id)."""
    settings = ServiceSettings(token=TOKEN, report_token=REPORT_TOKEN, controller=False)
    with running_server(registry, settings) as url, httpx.Client(base_url=url, timeout=10) as http:
        rollout_id = start_canary_rollout(http, policy=STAY)
        with report_proxy(url) as proxy:
            yield proxy, rollout_id


def _from(proxy: ReportProxy, service: str) -> set[str]:
    return {d.source for d in proxy.delivered() if d.source.startswith(f"{service}@")}


def test_a_killed_and_restarted_app_never_double_counts(
    tmp_path: Path, proxied: tuple[ReportProxy, str], registry: SqlRegistry
) -> None:
    proxy, rollout_id = proxied
    behaviour = Behaviour(history=100_000)
    with running_simulated_llm(behaviour) as llm, otlp_receiver() as (endpoint, _):
        settings = {"llm_url": llm.base_url, "control_plane": proxy.url, "otlp_endpoint": endpoint}
        with reporting_app(tmp_path, "first", **settings) as first:
            eventually(
                lambda: len([d for d in proxy.merged() if d.source.startswith("first@")]) >= 2,
                timeout=60,
                what="two reports of the first application",
                between=first.check_running,
                diagnostics=first.stderr_tail,
            )
            proxy.hold(seconds=30, count=1)
            eventually(lambda: any(d.held for d in proxy.delivered()), timeout=30, what="a held report")
            first.process.kill()  # SIGKILL: no exit handler runs, the held report is never retried
            first.process.wait(timeout=10)
        with reporting_app(tmp_path, "second", **settings) as second:
            eventually(
                lambda: _from(proxy, "second"),
                timeout=60,
                what="a report of the restarted application",
                between=second.check_running,
                diagnostics=second.stderr_tail,
            )
            summary = second.stop(second.stderr_tail)
        served = len(behaviour.requests)
    snapshot = SqlLoopStore(registry).rollout_snapshot(rollout_id)

    held = next(d for d in proxy.delivered() if d.held)
    assert held.source.startswith("first@") and held.outcome == "merged"
    counted = [d.report_id for d in proxy.merged()]
    assert len(counted) == len(set(counted)), "a report counted twice"
    assert [d.report_id for d in proxy.delivered()].count(held.report_id) == 1, "the held report came back"
    # The store holds exactly the reports the control plane counted.
    for cohort in ("stable", "canary"):
        stored = getattr(snapshot, cohort)[JSON_VALID].n
        assert stored == proxy.merged_n(cohort, JSON_VALID), cohort
    # The restarted application reported every one of its calls, once; the killed one at most its own.
    [second_source] = _from(proxy, "second")
    [first_source] = _from(proxy, "first")
    second_calls = sum(summary["calls"].values())
    assert summary["errors"] == 0
    assert (
        sum(proxy.merged_n(c, JSON_VALID, source=second_source) for c in ("stable", "canary")) == second_calls
    )
    first_reported = sum(proxy.merged_n(c, JSON_VALID, source=first_source) for c in ("stable", "canary"))
    assert 0 < first_reported <= served - second_calls
