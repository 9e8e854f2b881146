"""Fixtures of the dashboards suite: one regressing canary, run once and read by several tests."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.dashboards.loop import ROLLBACK_ALERT, Regression, canary_loop
from tests.support.waiting import eventually


@pytest.fixture(scope="session")
def regression(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Regression]:
    with canary_loop(tmp_path_factory.mktemp("regression"), healthy=False) as loop:
        began = time.monotonic()

        def firing() -> bool:
            return any(
                a["labels"]["alertname"] == ROLLBACK_ALERT and a["state"] == "firing"
                for a in loop.prometheus.alerts()
            )

        fired_after = eventually(
            firing,
            timeout=45,
            what=f"{ROLLBACK_ALERT} firing in Prometheus",
            between=loop.app.check_running,
            diagnostics=loop.diagnostics,
        )
        fired_at = time.time()
        eventually(
            lambda: loop.route_state() == "rolled_back",
            timeout=30,
            what="the rollback",
            between=loop.app.check_running,
            diagnostics=loop.diagnostics,
        )
        rolled_back_after = time.monotonic() - began
        time.sleep(1.0)  # a second of calls under the rolled-back route
        scrape = loop.scrape()
        # The application is not needed any more: Prometheus holds what the tests query.
        summary = loop.stop_app()
        yield Regression(loop, fired_at, fired_after, rolled_back_after, scrape, summary["calls"])
