"""``POST /v1/alerts/alertmanager`` and ``/v1/alerts/grafana``: labels, credentials, idempotency."""

from __future__ import annotations

import copy
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from otel_prompt_canary.loop import SqlLoopStore
from otel_prompt_canary.registry import SqlRegistry
from otel_prompt_canary.service import ServiceSettings
from otel_prompt_canary.service.app import create_app
from tests.service.loop_factories import (
    AM_AUTH,
    GRAFANA_SECRET,
    alertmanager_payload,
    basic_auth,
    grafana_headers,
    grafana_payload,
    loop_settings,
    prometheus_alert,
    rollout,
    state_of,
)
from tests.service.service_factories import error_of, two_versions
from tests.support.auth import AUTH


@pytest.fixture
def settings() -> ServiceSettings:
    return loop_settings()


def post_am(client: TestClient, *alerts: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    return client.post(
        "/v1/alerts/alertmanager", json=alertmanager_payload(*alerts), headers=headers or AM_AUTH
    )


def post_grafana(client: TestClient, *alerts: dict[str, Any], timestamp: int | None = None) -> Any:
    body = json.dumps(grafana_payload(*alerts)).encode()
    return client.post("/v1/alerts/grafana", content=body, headers=grafana_headers(body, timestamp=timestamp))


def outcomes(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [d["outcome"] for d in response.json()["decisions"]]


# -- Alertmanager -----------------------------------------------------------------------------------


def test_a_firing_alert_rolls_back_and_its_repeats_are_duplicates(
    client: TestClient, registry: SqlRegistry
) -> None:
    rollout(client)
    alert = prometheus_alert()
    response = post_am(client, alert)
    assert outcomes(response) == ["applied"]
    assert registry.get_route("greeter").state == "rolled_back"
    last = registry.history("greeter")[-1]
    assert (last.action, last.actor) == ("rollback", "alertmanager")
    assert "alertmanager alert 'CanaryJsonValidity' firing since" in last.reason
    assert "canary JSON validity below stable" in last.reason
    evidence: Any = last.evidence
    assert evidence["source"] == "alertmanager"
    assert evidence["alert"]["receiver"] == "prompt-canary"
    assert evidence["alert"]["alert"]["labels"]["action"] == "rollback"

    # Alertmanager repeats a firing alert (repeat_interval) and retries: one decision, ever.
    for _ in range(3):
        assert outcomes(post_am(client, alert)) == ["duplicate"]
    # Resolved after the rollback: recorded, the canary stays rolled back.
    resolved = prometheus_alert(status="resolved", starts_at=alert["startsAt"])
    assert outcomes(post_am(client, resolved)) == ["recorded"]
    assert registry.get_route("greeter").state == "rolled_back"
    assert [r.action for r in registry.history("greeter")] == ["start", "rollback"]


def test_resolved_and_alert_actions_change_no_routing(client: TestClient, registry: SqlRegistry) -> None:
    rollout(client)
    got = outcomes(
        post_am(
            client,
            prometheus_alert(status="resolved"),
            prometheus_alert(action="alert", fingerprint="aaaa"),
            prometheus_alert(action="pause", fingerprint="bbbb"),
        )
    )
    assert got == ["recorded", "recorded", "applied"]
    assert registry.get_route("greeter").state == "paused"


def test_an_alert_older_than_the_rollout_is_about_an_earlier_one(
    client: TestClient, registry: SqlRegistry
) -> None:
    route = rollout(client)
    earlier = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    response = post_am(client, prometheus_alert(starts_at=earlier))
    assert outcomes(response) == ["ignored"]
    assert "it is about an earlier rollout" in response.json()["decisions"][0]["reason"]
    assert registry.get_route("greeter").state == "ramping"
    # Naming the rollout explicitly binds the alert to it, whenever it fired.
    bound = prometheus_alert(starts_at=earlier, fingerprint="cccc", rollout_id=route["rollout_id"])
    assert outcomes(post_am(client, bound)) == ["applied"]


def test_alternative_label_names(client: TestClient, registry: SqlRegistry) -> None:
    route = rollout(client)
    alert = prometheus_alert(prompt_canary_rollout_id=route["rollout_id"])
    del alert["labels"]["prompt"]
    alert["labels"]["gen_ai_prompt_name"] = "greeter"
    assert outcomes(post_am(client, alert)) == ["applied"]
    assert SqlLoopStore(registry).list_alerts("greeter")[0].rollout_id == route["rollout_id"]


def test_no_rollout_or_a_finished_one_is_ignored(client: TestClient, registry: SqlRegistry) -> None:
    two_versions(client, AUTH)
    assert outcomes(post_am(client, prometheus_alert())) == ["ignored"]
    assert "has no rollout" in SqlLoopStore(registry).list_alerts("greeter")[-1].reason
    rollout_id = client.post(
        "/v1/prompts/greeter/rollouts", json={"version": 2, "reason": "r"}, headers=AUTH
    ).json()["rollout_id"]
    client.post("/v1/prompts/greeter/rollout/rollback", json={"reason": "by hand"}, headers=AUTH)
    got = post_am(client, prometheus_alert(fingerprint="dddd"))
    assert outcomes(got) == ["ignored"]
    assert f"rollout {rollout_id} has finished (rolled_back)" in got.json()["decisions"][0]["reason"]


@pytest.mark.parametrize(
    ("mutate", "status", "message"),
    [
        (lambda a: a["labels"].pop("prompt"), 422, "body.alerts.1.labels: no 'prompt' label"),
        (lambda a: a["labels"].pop("action"), 422, "no 'action' label"),
        (
            lambda a: a["labels"].update(action="promote"),
            422,
            "'promote' is not an action an alert can ask for",
        ),
        (lambda a: a["labels"].update(prompt="no such/prompt"), 422, "labels.prompt: invalid prompt name"),
        (lambda a: a["labels"].update(prompt="nope"), 404, "unknown prompt 'nope'"),
        (lambda a: a.update(status="pending"), 422, "body.alerts.1.status"),
        (lambda a: a.update(labels=["prompt"]), 422, "body.alerts.1.labels"),
        (lambda a: a.update(startsAt="yesterday"), 422, "body.alerts.1.startsAt"),
    ],
)
def test_unclear_alerts_are_refused_whole(client: TestClient, mutate: Any, status: int, message: str) -> None:
    rollout(client)
    before = state_of(client)
    bad = prometheus_alert(fingerprint="eeee")
    mutate(bad)
    # The first alert is fine: the whole payload is refused all the same.
    response = post_am(client, prometheus_alert(), bad)
    assert response.status_code == status, response.text
    assert message in error_of(response)[1]
    assert state_of(client) == before


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"version": "3"}, "unsupported Alertmanager webhook version '3'"),
        ({"alerts": []}, "body.alerts"),
        ({"status": None}, "body.status"),
    ],
)
def test_payload_refusals(client: TestClient, change: dict[str, Any], message: str) -> None:
    rollout(client)
    before = state_of(client)
    payload = alertmanager_payload(prometheus_alert()) | change
    response = client.post("/v1/alerts/alertmanager", json=payload, headers=AM_AUTH)
    assert response.status_code == 422
    assert message in error_of(response)[1]
    assert state_of(client) == before


@pytest.mark.parametrize(
    ("headers", "ok", "message"),
    [
        (AUTH, True, ""),  # the write token
        (basic_auth(), True, ""),
        (basic_auth(password="wrong-password-0123"), False, "invalid basic credentials"),
        ({"Authorization": "Bearer wrong-token-0123456789"}, False, "invalid bearer token"),
        ({"Authorization": "Digest abc"}, False, "unsupported authorization scheme 'digest'"),
        ({"Authorization": "Basic %%%"}, False, "malformed basic credentials"),
        ({"X-Other": "1"}, False, "missing credentials: give Alertmanager's webhook_configs an http_config"),
    ],
)
def test_alertmanager_credentials(
    client: TestClient, registry: SqlRegistry, headers: dict[str, str], ok: bool, message: str
) -> None:
    rollout(client)
    before = state_of(client)
    response = post_am(client, prometheus_alert(), headers=headers)
    if ok:
        assert outcomes(response) == ["applied"]
        return
    assert response.status_code == 401
    assert message in error_of(response)[1]
    assert state_of(client) == before


def test_basic_auth_needs_configuring(registry: SqlRegistry) -> None:
    settings = loop_settings(alertmanager_basic_auth=None)
    with TestClient(create_app(registry, settings)) as c:
        rollout(c)
        response = post_am(c, prometheus_alert(), headers=basic_auth())
        assert response.status_code == 401
        assert "--alertmanager-basic-auth" in error_of(response)[1]


# -- Grafana ----------------------------------------------------------------------------------------


def test_a_signed_grafana_alert(client: TestClient, registry: SqlRegistry) -> None:
    rollout(client)
    alert = prometheus_alert()
    assert outcomes(post_grafana(client, alert)) == ["applied"]
    assert registry.history("greeter")[-1].actor == "grafana"
    assert outcomes(post_grafana(client, alert, timestamp=int(time.time()))) == ["duplicate"]
    assert registry.get_route("greeter").state == "rolled_back"
    evidence: Any = registry.history("greeter")[-1].evidence
    assert evidence["alert"]["alert"]["values"] == {"B": 0.91, "C": 1}  # Grafana's extra fields are kept
    assert evidence["alert"]["org_id"] == 1


def test_grafana_fallback_header_and_bearer(client: TestClient, registry: SqlRegistry) -> None:
    rollout(client)
    body = json.dumps(grafana_payload(prometheus_alert(action="pause"))).encode()
    headers = grafana_headers(body)
    headers["X-Grafana-Alert-Signature"] = headers.pop("X-Grafana-Alerting-Signature")
    assert outcomes(client.post("/v1/alerts/grafana", content=body, headers=headers)) == ["applied"]
    unsigned = grafana_payload(prometheus_alert(fingerprint="ffff"))
    assert outcomes(client.post("/v1/alerts/grafana", json=unsigned, headers=AUTH)) == ["applied"]
    assert registry.get_route("greeter").state == "rolled_back"


@pytest.mark.parametrize(
    ("tweak", "message"),
    [
        ("no-signature", "missing signature: set the contact point's HMAC signature"),
        ("wrong-secret", "invalid signature"),
        ("stale", "stale X-Grafana-Alerting-Signature-Timestamp"),
        ("bad-stamp", "invalid X-Grafana-Alerting-Signature-Timestamp"),
        ("tampered", "invalid signature"),
        ("wrong-with-token", "invalid signature"),
    ],
)
def test_grafana_refusals_change_nothing(client: TestClient, tweak: str, message: str) -> None:
    rollout(client)
    before = state_of(client)
    body = json.dumps(grafana_payload(prometheus_alert())).encode()
    headers = grafana_headers(body, timestamp=int(time.time()))
    if tweak == "no-signature":
        headers = {"content-type": "application/json"}
    elif tweak in ("wrong-secret", "wrong-with-token"):
        headers = grafana_headers(body, secret="another-secret-0123456789")
        if tweak == "wrong-with-token":
            headers |= AUTH
    elif tweak == "stale":
        headers = grafana_headers(body, timestamp=int(time.time()) - 3600)
    elif tweak == "bad-stamp":
        headers["X-Grafana-Alerting-Signature-Timestamp"] = "now"
    elif tweak == "tampered":
        body = body.replace(b"rollback", b"pause")
    response = client.post("/v1/alerts/grafana", content=body, headers=headers)
    assert response.status_code == 401, response.text
    assert message in error_of(response)[1]
    assert state_of(client) == before


def test_grafana_custom_header_names(registry: SqlRegistry) -> None:
    settings = loop_settings(grafana_signature_header="X-Sig", grafana_timestamp_header="X-Sig-Time")
    with TestClient(create_app(registry, settings)) as c:
        rollout(c)
        body = json.dumps(grafana_payload(prometheus_alert())).encode()
        stamp = str(int(time.time()))
        default = grafana_headers(body, timestamp=int(stamp), secret=GRAFANA_SECRET)
        headers = {
            "content-type": "application/json",
            "X-Sig": default["X-Grafana-Alerting-Signature"],
            "X-Sig-Time": stamp,
        }
        assert outcomes(c.post("/v1/alerts/grafana", content=body, headers=headers)) == ["applied"]


# -- the alert log ----------------------------------------------------------------------------------


def test_the_alert_log_is_queryable(client: TestClient) -> None:
    rollout(client)
    rollout(client, "other")
    alert = prometheus_alert()
    post_am(client, alert)
    post_am(client, alert)
    post_am(client, prometheus_alert("other", fingerprint="1111"))
    everything = client.get("/v1/alerts").json()
    assert [(a["prompt"], a["outcome"]) for a in everything] == [
        ("greeter", "applied"),
        ("greeter", "duplicate"),
        ("other", "applied"),
    ]
    assert [
        a["outcome"] for a in client.get("/v1/alerts", params={"prompt": "greeter", "limit": 1}).json()
    ] == ["duplicate"]
    assert client.get("/v1/alerts", params={"prompt": "nope"}).status_code == 404
    assert client.get("/v1/alerts", params={"prompt": "a b"}).status_code == 422
    rid = everything[2]["rollout_id"]
    assert [a["prompt"] for a in client.get("/v1/alerts", params={"rollout_id": rid}).json()] == ["other"]


# -- fuzzing -----------------------------------------------------------------------------------------

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
_ALERT_FIELDS = ["status", "labels", "annotations", "startsAt", "endsAt", "fingerprint"]
_TOP_FIELDS = ["version", "status", "alerts", "receiver", "groupKey", "truncatedAlerts"]


@st.composite
def _mutated(draw: st.DrawFn, base: dict[str, Any]) -> dict[str, Any]:
    payload = copy.deepcopy(base)
    alert = payload["alerts"][0]
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from(["top", "alert", "label"]))
        if where == "top":
            payload[draw(st.sampled_from(_TOP_FIELDS))] = draw(_JSON)
        elif where == "alert":
            alert[draw(st.sampled_from(_ALERT_FIELDS))] = draw(_JSON)
        elif isinstance(alert.get("labels"), dict):
            alert["labels"][draw(st.sampled_from(["prompt", "action", "rollout_id"]))] = draw(
                st.text(max_size=12)
            )
    return payload


@pytest.fixture
def fuzz_client(client: TestClient) -> TestClient:
    rollout(client)
    return client


@pytest.mark.parametrize("receiver", ["alertmanager", "grafana"])
def test_fuzzed_payloads_are_understood_or_change_nothing(fuzz_client: TestClient, receiver: str) -> None:
    base = alertmanager_payload(prometheus_alert(action="alert"))
    if receiver == "grafana":
        base = grafana_payload(prometheus_alert(action="alert"))

    @given(_mutated(base))
    @hsettings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    def check(payload: dict[str, Any]) -> None:
        before = state_of(fuzz_client)
        body = json.dumps(payload).encode()
        headers = (
            grafana_headers(body)
            if receiver == "grafana"
            else {**AM_AUTH, "content-type": "application/json"}
        )
        response = fuzz_client.post(f"/v1/alerts/{receiver}", content=body, headers=headers)
        assert response.status_code in (200, 404, 422), response.text
        if response.status_code != 200:
            assert state_of(fuzz_client) == before
        else:
            # Never a transition: the fuzzed alerts ask at most to be recorded, or for nothing known.
            assert state_of(fuzz_client)[0] == before[0]

    check()
