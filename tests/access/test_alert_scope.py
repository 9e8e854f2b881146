"""An alert credential limited to some environments moves rollouts there only, and the audit record
of what an alert applies names the alert's sender.

Over the real API (uvicorn on loopback) with Alertmanager's payload: an alert's environment is its
named rollout's, else its ``environment`` label, else the default one.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from otel_prompt_canary.registry import SqlRegistry
from otel_prompt_canary.service import ServiceSettings
from tests.service.loop_factories import alertmanager_payload, prometheus_alert
from tests.service.service_factories import text_spec
from tests.support.auth import AUTH, TOKEN, Credential, write_credentials
from tests.support.loopback import running_server

STAGING_ALERTS = Credential("am-staging", ["alert"], environments=["staging"])
ALERTS = Credential("am", ["alert"])
ALERTMANAGER = "/v1/alerts/alertmanager"


@pytest.fixture
def client(registry: SqlRegistry, tmp_path: Path) -> Iterator[httpx.Client]:
    settings = ServiceSettings(
        token=TOKEN,
        environments="staging,production",
        credentials_file=write_credentials(tmp_path, [STAGING_ALERTS, ALERTS]),
        controller=False,
    )
    with running_server(registry, settings) as url, httpx.Client(base_url=url, timeout=30) as http:
        for template in ("Greet {{ name }} warmly.", "Greet {{ name }} briefly."):
            assert (
                http.post("/v1/prompts", json=text_spec(template=template), headers=AUTH).status_code == 201
            )
        for environment in ("staging", "production"):
            started = http.post(
                f"/v1/prompts/greeter/rollouts?environment={environment}",
                json={"version": 2, "reason": f"try it in {environment}"},
                headers=AUTH,
            )
            assert started.status_code == 201, started.text
        yield http


def _alert(fingerprint: str, **labels: str) -> dict[str, Any]:
    # Fired after the rollouts started, so that it is about them.
    later = (datetime.now(UTC) + timedelta(minutes=1)).isoformat().replace("+00:00", "Z")
    return alertmanager_payload(
        prometheus_alert("greeter", "rollback", starts_at=later, fingerprint=fingerprint, **labels)
    )


def _flag(client: httpx.Client, environment: str) -> dict[str, Any]:
    route: dict[str, Any] = client.get(f"/v1/routes/greeter?environment={environment}", headers=AUTH).json()
    return route


def _history(client: httpx.Client, environment: str) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = client.get(
        f"/v1/prompts/greeter/rollout/history?environment={environment}", headers=AUTH
    ).json()
    return records


def test_a_staging_alert_credential_cannot_roll_back_production(client: httpx.Client) -> None:
    production = _flag(client, "production")
    for labels in ({"environment": "production"}, {}):  # the label, else the default environment
        answer = client.post(
            ALERTMANAGER, json=_alert(f"f-{len(labels)}", **labels), headers=STAGING_ALERTS.auth
        )
        assert answer.status_code == 200, answer.text
        (decision,) = answer.json()["decisions"]
        assert (answer.json()["applied"], decision["outcome"]) == (0, "ignored")
        assert decision["reason"] == (
            "principal 'am-staging' may not act on alerts in environment 'production': its alert role "
            "is limited to staging; nothing changes"
        )
        assert _flag(client, "production") == production

    # The production rollout named by its id is in production, whatever the label says.
    rollout_id = production["rollout_id"]
    named = _alert("f-named", environment="staging", rollout_id=rollout_id)
    (decision,) = client.post(ALERTMANAGER, json=named, headers=STAGING_ALERTS.auth).json()["decisions"]
    assert decision["outcome"] == "ignored" and "environment 'production'" in decision["reason"]
    assert _flag(client, "production") == production

    # The log keeps the refusals; the same alert from a sender that may act in production applies.
    logged = client.get("/v1/alerts", params={"prompt": "greeter"}, headers=AUTH).json()
    assert [r["outcome"] for r in logged] == ["ignored", "ignored", "ignored"]
    applied = client.post(ALERTMANAGER, json=_alert("f-1", environment="production"), headers=ALERTS.auth)
    assert applied.json()["applied"] == 1, applied.text
    assert _flag(client, "production")["state"] == "rolled_back"


def test_an_applied_alert_names_its_sender_in_the_audit_record(client: httpx.Client) -> None:
    answer = client.post(ALERTMANAGER, json=_alert("s", environment="staging"), headers=STAGING_ALERTS.auth)
    assert answer.json()["applied"] == 1, answer.text
    assert _flag(client, "staging")["state"] == "rolled_back"
    assert _flag(client, "production")["state"] == "ramping"
    record = _history(client, "staging")[-1]
    assert (record["action"], record["principal"], record["environment"]) == (
        "rollback",
        "am-staging",
        "staging",
    )
