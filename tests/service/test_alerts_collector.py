"""``POST /v1/alerts/collector``: Standard Webhooks signatures, idempotency, refusals change nothing."""

from __future__ import annotations

import base64
import copy
import json
import re
import time
from collections.abc import Callable
from typing import Any

import jsonschema
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from otel_prompt_canary.loop import SqlLoopStore
from otel_prompt_canary.registry import SqlRegistry
from otel_prompt_canary.service import ServiceSettings
from otel_prompt_canary.service.app import create_app
from otel_prompt_canary.service.payloads import CollectorAlert
from tests.service.loop_factories import (
    SCHEMAS,
    WEBHOOK_KEY,
    collector_alert,
    loop_settings,
    post_collector,
    rollout,
    signed,
    standard_signature,
    state_of,
)
from tests.service.service_factories import error_of
from tests.support.auth import AUTH, TOKEN

SCHEMA = json.loads((SCHEMAS / "collector-alert.schema.json").read_text())


@pytest.fixture
def settings() -> ServiceSettings:
    return loop_settings()


def test_a_signed_rollback_rolls_the_canary_back_once(client: TestClient, registry: SqlRegistry) -> None:
    route = rollout(client)
    payload = collector_alert(rollout_id=route["rollout_id"])
    jsonschema.validate(payload, SCHEMA)
    response = post_collector(client, payload)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["received"], answer["applied"]) == (1, 1)
    (decision,) = answer["decisions"]
    assert decision["outcome"] == "applied"
    assert decision["rollout_id"] == route["rollout_id"]
    assert registry.get_route("greeter").state == "rolled_back"

    last = registry.history("greeter")[-1]
    assert (last.action, last.actor) == ("rollback", "collector gateway-0")
    assert decision["audit_id"] == last.id
    assert "canary JSON validity is proven worse" in last.reason
    assert last.evidence["alert"] == payload  # type: ignore[index]

    # A retry (same id, a later timestamp) is a duplicate: acknowledged, nothing changes.
    before = state_of(client)[:2]
    again = post_collector(client, payload, timestamp=int(time.time()) + 5)
    assert again.status_code == 200
    (dup,) = again.json()["decisions"]
    assert dup["outcome"] == "duplicate"
    assert f"duplicate of alert #{decision['id']}" in dup["reason"]
    assert state_of(client)[:2] == before
    assert [a["outcome"] for a in client.get("/v1/alerts", params={"prompt": "greeter"}).json()] == [
        "applied",
        "duplicate",
    ]


def test_pause_then_rollback_and_alert_is_recorded(client: TestClient, registry: SqlRegistry) -> None:
    route = rollout(client)
    rid = route["rollout_id"]
    outcomes = [
        post_collector(client, collector_alert(rollout_id=rid, action=a, rule=r)).json()["decisions"][0][
            "outcome"
        ]
        for a, r in (("alert", "tokens.absolute"), ("pause", "judge.relative"), ("pause", "other.relative"))
    ]
    assert outcomes == ["recorded", "applied", "ignored"]  # the second pause: already paused
    assert registry.get_route("greeter").state == "paused"
    rolled = post_collector(client, collector_alert(rollout_id=rid, action="rollback")).json()
    assert rolled["decisions"][0]["outcome"] == "applied"
    assert registry.get_route("greeter").state == "rolled_back"


def test_alerts_about_other_rollouts_are_recorded_and_ignored(
    client: TestClient, registry: SqlRegistry
) -> None:
    route = rollout(client)
    unknown = post_collector(client, collector_alert(rollout_id="ro-unknown")).json()["decisions"][0]
    assert unknown["outcome"] == "ignored"
    assert "unknown rollout 'ro-unknown'" in unknown["reason"]
    assert registry.get_route("greeter").state == "ramping"

    client.post("/v1/prompts/greeter/rollout/promote", json={"reason": "fine"}, headers=AUTH)
    late = post_collector(client, collector_alert(rollout_id=route["rollout_id"])).json()["decisions"][0]
    assert late["outcome"] == "ignored"
    assert "has finished (promoted)" in late["reason"]
    assert registry.get_route("greeter").state == "promoted"
    assert [a.outcome for a in SqlLoopStore(registry).list_alerts("greeter")] == ["ignored", "ignored"]


def test_several_signatures_and_the_whsec_key(client: TestClient, registry: SqlRegistry) -> None:
    route = rollout(client)
    body, headers = signed(collector_alert(rollout_id=route["rollout_id"]))
    good = headers["webhook-signature"]
    other = standard_signature(
        b"another-key-0123456789", headers["webhook-id"], int(headers["webhook-timestamp"]), body
    )
    headers["webhook-signature"] = f"v1a,bm90LWNoZWNrZWQ= {other} {good}"
    response = client.post("/v1/alerts/collector", content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert registry.get_route("greeter").state == "rolled_back"


def test_the_write_token_is_accepted_without_a_signature(client: TestClient, registry: SqlRegistry) -> None:
    route = rollout(client)
    response = client.post(
        "/v1/alerts/collector", json=collector_alert(rollout_id=route["rollout_id"]), headers=AUTH
    )
    assert response.status_code == 200
    assert registry.get_route("greeter").state == "rolled_back"


#: A header value computed from the time the request is made (seconds since the epoch), never at
#: collection: a suite that runs for long on a busy machine would send a "future" that has passed.
FromNow = Callable[[int], str]


def _headers(payload: dict[str, Any], **changes: str | FromNow | None) -> tuple[bytes, dict[str, str]]:
    body, headers = signed(payload)
    now = int(time.time())
    for name, value in changes.items():
        key = name.replace("_", "-")
        if value is None:
            headers.pop(key)
        else:
            headers[key] = value if isinstance(value, str) else value(now)
    return body, headers


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"webhook_signature": None}, "missing credentials: sign the request"),
        ({"webhook_id": None}, "missing webhook-id header"),
        ({"webhook_timestamp": None}, "missing webhook-timestamp header"),
        ({"webhook_timestamp": "soon"}, "invalid webhook-timestamp 'soon'"),
        ({"webhook_timestamp": lambda now: str(now - 301)}, "stale webhook-timestamp"),
        ({"webhook_timestamp": lambda now: str(now + 900)}, "far in the future"),
        ({"webhook_signature": "v1," + base64.b64encode(b"x" * 32).decode()}, "no v1 signature matches"),
        ({"webhook_signature": "v2,abc"}, "no 'v1,<base64>' signature"),
        ({"webhook_id": "pca_" + "0" * 32}, "no v1 signature matches"),  # signed for another id
    ],
)
def test_bad_signatures_are_refused_and_change_nothing(
    client: TestClient, changes: dict[str, str | FromNow | None], message: str
) -> None:
    route = rollout(client)
    before = state_of(client)
    body, headers = _headers(collector_alert(rollout_id=route["rollout_id"]), **changes)
    response = client.post("/v1/alerts/collector", content=body, headers=headers)
    assert response.status_code == 401, response.text
    kind, text = error_of(response)
    assert kind == "AuthenticationError"
    assert message in text
    assert state_of(client) == before


def test_a_tampered_body_is_refused(client: TestClient) -> None:
    route = rollout(client)
    before = state_of(client)
    body, headers = signed(collector_alert(rollout_id=route["rollout_id"], action="alert"))
    tampered = body.replace(b'"alert"', b'"rollback"')
    assert client.post("/v1/alerts/collector", content=tampered, headers=headers).status_code == 401
    assert state_of(client) == before


def test_the_webhook_id_must_be_the_body_id(client: TestClient) -> None:
    route = rollout(client)
    before = state_of(client)
    payload = collector_alert(rollout_id=route["rollout_id"])
    response = post_collector(client, payload, message_id="msg_other")
    assert response.status_code == 422
    assert "is not the webhook-id 'msg_other'" in error_of(response)[1]
    assert state_of(client) == before


def test_unknown_prompt_is_404_and_records_nothing(client: TestClient) -> None:
    route = rollout(client)
    before = state_of(client)
    response = post_collector(client, collector_alert(prompt="nope", rollout_id=route["rollout_id"]))
    assert response.status_code == 404
    assert "unknown prompt 'nope'" in error_of(response)[1]
    assert state_of(client) == before


def test_signed_without_a_configured_secret_is_refused(registry: SqlRegistry) -> None:
    with TestClient(create_app(registry, ServiceSettings(token=TOKEN))) as c:
        body, headers = signed(collector_alert())
        response = c.post("/v1/alerts/collector", content=body, headers=headers)
        assert response.status_code == 401
        assert "no webhook secret is configured" in error_of(response)[1]


def test_oversized_and_non_json_bodies(client: TestClient) -> None:
    rollout(client)
    before = state_of(client)
    body, headers = signed(b'{"id": "' + b"x" * (2 * 1024 * 1024) + b'"}')
    assert client.post("/v1/alerts/collector", content=body, headers=headers).status_code == 413
    body, headers = signed(b"id=1")
    headers["content-type"] = "application/x-www-form-urlencoded"
    assert client.post("/v1/alerts/collector", content=body, headers=headers).status_code == 415
    assert state_of(client) == before


def test_the_schema_examples_are_understood() -> None:
    for example in SCHEMA["examples"]:
        alert = CollectorAlert.model_validate(example)
        assert alert.notice(example).key == f"collector:{example['id']}"


# -- fuzzing: whatever the schema refuses is refused with 422 and changes nothing --------------------

_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
_FIELDS = sorted(SCHEMA["properties"])


@st.composite
def _mutated(draw: st.DrawFn, base: dict[str, Any]) -> dict[str, Any]:
    payload = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        how = draw(st.sampled_from(["drop", "add", "replace", "evidence", "text"]))
        if how == "drop" and payload:
            payload.pop(draw(st.sampled_from(sorted(payload))))
        elif how == "add":
            payload[draw(st.text(min_size=1, max_size=10))] = draw(_JSON)
        elif how == "replace":
            payload[draw(st.sampled_from(_FIELDS))] = draw(_JSON)
        elif how == "text":
            payload[draw(st.sampled_from(["prompt", "rollout_id", "rule", "source", "action"]))] = draw(
                st.text(max_size=20)
            )
        else:
            payload["evidence"] = draw(
                st.dictionaries(st.sampled_from(["estimate", "kind", "cohorts", "x"]), _JSON)
            )
    return payload


@pytest.fixture
def fuzz_client(client: TestClient) -> tuple[TestClient, str]:
    return client, rollout(client)["rollout_id"]


def test_fuzzed_payloads(fuzz_client: tuple[TestClient, str]) -> None:
    client, rollout_id = fuzz_client
    base = collector_alert(rollout_id=rollout_id, action="pause")

    @given(_mutated(base))
    @hsettings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
    def check(payload: dict[str, Any]) -> None:
        before = state_of(client)
        schema_valid = jsonschema.Draft202012Validator(SCHEMA).is_valid(payload)
        # Signed with the payload's id when a sender could send it as webhook-id (an empty or
        # unprintable one is refused as a credential, 401, before the body is read).
        given = payload.get("id")
        message_id = given if isinstance(given, str) and re.fullmatch(r"pca_[0-9a-f]{32}", given) else "msg_1"
        response = post_collector(client, payload, message_id=message_id)
        if not schema_valid:
            assert response.status_code == 422, (payload, response.text)
        assert response.status_code in (200, 404, 422), response.text
        if response.status_code != 200:
            assert error_of(response)[0] in ("InvalidInputError", "NotFoundError")
            assert state_of(client) == before

    check()


def test_fuzzed_bytes_never_pass(fuzz_client: tuple[TestClient, str]) -> None:
    # Random bytes, correctly signed: never anything but a precise 422.
    client, _ = fuzz_client
    before = state_of(client)

    @given(st.binary(max_size=300))
    @hsettings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    def check(data: bytes) -> None:
        body, headers = signed(data, message_id="msg_1")
        response = client.post("/v1/alerts/collector", content=body, headers=headers)
        assert response.status_code in (413, 422), response.text
        assert error_of(response)[0] in ("InvalidInputError", "TooLargeError")

    check()
    assert state_of(client) == before


def test_key_of_the_standard_webhooks_example_secret() -> None:
    # whsec_ secrets are base64: the key is the decoded bytes.
    settings = loop_settings()
    assert settings.webhook_secret is not None
    assert WEBHOOK_KEY in base64.b64decode(settings.webhook_secret.get_secret_value().removeprefix("whsec_"))
