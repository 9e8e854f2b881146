"""A real Prometheus Alertmanager (Debian's package) drives a rollback that a router observes.

Alertmanager runs on 127.0.0.1 with a webhook receiver pointing at the control plane (bearer
credentials); an alert posted to its API v2 with labels ``prompt`` and ``action`` reaches our
receiver, which rolls the canary back, and a :class:`PromptRouter` long-polling the service sees it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from otel_prompt_canary import PromptRouter
from otel_prompt_canary.loop import SqlLoopStore
from otel_prompt_canary.registry import SqlRegistry
from tests.service.loop_factories import loop_settings
from tests.service.service_factories import text_spec
from tests.support.auth import ALERTMANAGER_TOKEN, AUTH
from tests.support.loopback import running_server
from tests.support.services import alertmanager_server
from tests.support.waiting import eventually

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


def test_an_alertmanager_alert_rolls_back_what_the_router_routes(
    registry: SqlRegistry, loop_store: SqlLoopStore
) -> None:
    with (
        running_server(registry, loop_settings()) as service,
        httpx.Client(base_url=service, timeout=10) as http,
    ):
        for template in ("Greet {{ name }} warmly.", "Greet {{ name }} briefly."):
            assert (
                http.post("/v1/prompts", json=text_spec("greeter", template), headers=AUTH).status_code == 201
            )
        started = http.post(
            "/v1/prompts/greeter/rollouts",
            json={"version": 2, "ramp": [50, 100], "reason": "r"},
            headers=AUTH,
        )
        assert started.status_code == 201

        with PromptRouter(service, initial_timeout=10, long_poll_wait=20) as router:
            route = router.route("greeter")
            assert route is not None and route.state == "ramping"
            assert {router.select("greeter", f"user-{i}").version for i in range(200)} == {1, 2}

            with alertmanager_server(CONFIG.format(url=service, token=ALERTMANAGER_TOKEN)) as alertmanager:
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

                eventually(rolled_back, timeout=30, what="the rollback seen by the router")
                # Every unit, canary or not before, now gets the stable version.
                assert {router.select("greeter", f"user-{i}").version for i in range(200)} == {1}

                (decision,) = loop_store.list_alerts("greeter")
                assert (decision.source, decision.outcome, decision.action) == (
                    "alertmanager",
                    "applied",
                    "rollback",
                )
                evidence: Any = decision.alert
                assert evidence["receiver"] == "prompt-canary"
                assert evidence["alert"]["fingerprint"]
                last = registry.history("greeter")[-1]
                assert (last.action, last.actor, last.id) == ("rollback", "alertmanager", decision.audit_id)

                # Resolving the alert is recorded, and never re-enables the canary.
                alert["endsAt"] = datetime.now(UTC).isoformat()
                assert (
                    httpx.post(f"{alertmanager}/api/v2/alerts", json=[alert], timeout=10).status_code == 200
                )
                eventually(
                    lambda: any(a.status == "resolved" for a in loop_store.list_alerts("greeter")),
                    timeout=30,
                    what="the resolved alert in the alert log",
                )
                resolved = [a for a in loop_store.list_alerts("greeter") if a.status == "resolved"]
                assert [a.outcome for a in resolved] == ["recorded"]
                assert registry.get_route("greeter").state == "rolled_back"
                assert [r.action for r in registry.history("greeter")] == ["start", "rollback"]
