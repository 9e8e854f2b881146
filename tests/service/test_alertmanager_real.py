"""A real Prometheus Alertmanager (Debian's package) drives a rollback that a router observes.

Alertmanager runs on 127.0.0.1 with a webhook receiver pointing at the control plane (bearer
credentials); an alert posted to its API v2 with labels ``prompt`` and ``action`` reaches our
receiver, which rolls the canary back, and a :class:`PromptRouter` long-polling the service sees it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from loop_factories import AM_TOKEN, loop_settings
from service_factories import AUTH, text_spec
from tests.support.services import alertmanager_server

from otel_prompt_canary import PromptRouter
from otel_prompt_canary.registry import open_store
from otel_prompt_canary.service.testing import running_server

CONFIG = """\
route:
  receiver: prompt-canary
  group_by: ['...']          # no grouping: one notification per alert
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: prompt-canary
    webhook_configs:
      - url: {url}/v1/alerts/alertmanager
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials: {token}
"""


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> float:
    begin = time.monotonic()
    while not condition():
        if time.monotonic() - begin > timeout:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)
    return time.monotonic() - begin


def test_an_alertmanager_alert_rolls_back_what_the_router_routes(tmp_path: Path) -> None:
    with (
        open_store(tmp_path / "registry.db") as store,
        running_server(store, loop_settings()) as service,
        httpx.Client(base_url=service, timeout=10) as http,
    ):
        for template in ("Greet {{ name }} warmly.", "Greet {{ name }} briefly."):
            assert (
                http.post("/v1/prompts", json=text_spec("greeter", template), headers=AUTH).status_code == 201
            )
        started = http.post(
            "/v1/prompts/greeter/rollouts", json={"version": 2, "ramp": [50, 100]}, headers=AUTH
        )
        assert started.status_code == 201

        with PromptRouter(service, initial_timeout=10, long_poll_wait=20) as router:
            route = router.route("greeter")
            assert route is not None and route.state == "ramping"
            assert {router.select("greeter", f"user-{i}").version for i in range(200)} == {1, 2}

            with alertmanager_server(CONFIG.format(url=service, token=AM_TOKEN)) as alertmanager:
                alert: dict[str, Any] = {
                    "labels": {"alertname": "CanaryJsonValidity", "prompt": "greeter", "action": "rollback"},
                    "annotations": {"summary": "canary JSON validity is below stable"},
                    "startsAt": datetime.now(UTC).isoformat(),
                    "generatorURL": "http://prometheus.invalid/graph",
                }
                posted = httpx.post(f"{alertmanager}/api/v2/alerts", json=[alert], timeout=10)
                assert posted.status_code == 200, posted.text

                def rolled_back() -> bool:
                    seen = router.route("greeter")
                    return seen is not None and seen.state == "rolled_back"

                wait_for(rolled_back)
                # Every unit, canary or not before, now gets the stable version.
                assert {router.select("greeter", f"user-{i}").version for i in range(200)} == {1}

                (decision,) = store.list_alerts("greeter")
                assert (decision.source, decision.outcome, decision.action) == (
                    "alertmanager",
                    "applied",
                    "rollback",
                )
                evidence: Any = decision.alert
                assert evidence["receiver"] == "prompt-canary"
                assert evidence["alert"]["fingerprint"]
                last = store.history("greeter")[-1]
                assert (last.action, last.actor, last.id) == ("rollback", "alertmanager", decision.audit_id)

                # Resolving the alert is recorded, and never re-enables the canary.
                alert["endsAt"] = datetime.now(UTC).isoformat()
                assert (
                    httpx.post(f"{alertmanager}/api/v2/alerts", json=[alert], timeout=10).status_code == 200
                )
                wait_for(lambda: any(a.status == "resolved" for a in store.list_alerts("greeter")))
                resolved = [a for a in store.list_alerts("greeter") if a.status == "resolved"]
                assert [a.outcome for a in resolved] == ["recorded"]
                assert store.get_route("greeter").state == "rolled_back"
                assert [r.action for r in store.history("greeter")] == ["start", "rollback"]
