"""``POST /v1/feedback``: a user's feedback, named by the answer's feedback key, counted once.

Keys are made here with the same :class:`FeedbackKeys` an application's router uses, under the
reporting credential; every refusal is checked to leave the rollout's statistics as they were.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from otel_prompt_canary.feedback import FeedbackKeys
from otel_prompt_canary.loop import SqlLoopStore
from otel_prompt_canary.registry import SqlRegistry
from otel_prompt_canary.service import ServiceSettings
from otel_prompt_canary.service.app import create_app
from tests.service.loop_factories import WEBHOOK_KEY, loop_settings, rollout, signed
from tests.service.service_factories import error_of
from tests.support.auth import AUTH, REPORT_AUTH, REPORT_TOKEN, TOKEN

FEEDBACK = "prompt_canary.score.user_feedback"
DAY = 86_400


@pytest.fixture
def settings() -> ServiceSettings:
    return loop_settings(report_token=REPORT_TOKEN)


@pytest.fixture
def started(client: TestClient) -> str:
    """The rollout of version 2 of ``greeter`` (version 1 stable); returns its id."""
    rollout_id: str = rollout(client)["rollout_id"]
    return rollout_id


def key(
    rollout_id: str,
    *,
    cohort: str = "canary",
    version: int | None = None,
    prompt: str = "greeter",
    credential: str | None = REPORT_TOKEN,
    age: float = 0.0,
) -> str:
    version = version if version is not None else (2 if cohort == "canary" else 1)
    return FeedbackKeys([credential]).mint(prompt, version, cohort, rollout_id, now=time.time() - age)


def post(client: TestClient, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    return client.post("/v1/feedback", json=body, headers=REPORT_AUTH if headers is None else headers)


def statistics(registry: SqlRegistry, rollout_id: str) -> dict[str, Any]:
    return SqlLoopStore(registry).rollout_snapshot(rollout_id).model_dump(mode="json")


def test_a_feedback_counts_once_in_its_rollout_and_cohort(
    client: TestClient, registry: SqlRegistry, started: str
) -> None:
    canary = key(started)
    answer = post(client, {"key": canary, "score": 0.25})
    assert answer.status_code == 200, answer.text
    receipt = answer.json()
    assert (receipt["outcome"], receipt["rollout_id"], receipt["samples"]) == ("merged", started, 1)
    assert receipt["report_id"].startswith("pcf_")
    # The same feedback again (a retry, a double click): its id is the same, it counts once.
    assert post(client, {"key": canary, "score": 0.25}).json()["outcome"] == "duplicate"
    # A bool with a name is a check; with an explicit id each piece of feedback counts.
    stable = key(started, cohort="stable")
    for _ in range(2):
        body = {"key": stable, "score": True, "name": "thumbs_up", "id": "pcf_" + uuid.uuid4().hex}
        assert post(client, body).json()["outcome"] == "merged"
    assert post(client, {"key": stable, "score": False}, headers=AUTH).json()["outcome"] == "merged"
    assert statistics(registry, started) == {
        "canary": {FEEDBACK: {"kind": "mean", "n": 1, "sum": "250000", "sum_sq": "62500000000"}},
        "stable": {
            "prompt_canary.check.thumbs_up": {"kind": "proportion", "n": 2, "successes": 2},
            FEEDBACK: {"kind": "mean", "n": 1, "sum": "0", "sum_sq": "0"},
        },
    }


def _altered(text: str) -> str:
    prefix, payload, tag = text.split(".")
    flipped = payload[:10] + ("A" if payload[10] != "A" else "B") + payload[11:]
    return ".".join((prefix, flipped, tag))


@pytest.mark.parametrize(
    ("make", "status", "message"),
    [
        (
            lambda r: {"key": key(r, credential="someone-elses-token-0123"), "score": 1},
            422,
            "does not verify",
        ),
        (lambda r: {"key": _altered(key(r)), "score": 1}, 422, "does not verify"),
        (lambda r: {"key": key(r, credential=None), "score": 1}, 422, "does not verify"),
        (lambda r: {"key": key(r, age=8 * DAY), "score": 1}, 422, "the feedback key expired"),
        (lambda r: {"key": key(r, age=-DAY), "score": 1}, 422, "in the future"),
        (lambda r: {"key": "chatcmpl-123", "score": 1}, 422, "not a feedback key"),
        (lambda r: {"key": key(r) + "x", "score": 1}, 422, "does not verify"),
        (lambda r: {"key": "pcfk.!!.??", "score": 1}, 422, "not base64url"),
        (lambda r: {"key": key(r), "score": 1.5}, 422, "feedback score must be in [0, 1]"),
        (lambda r: {"key": key(r), "score": -0.1}, 422, "feedback score must be in [0, 1]"),
        (lambda r: {"key": key(r), "score": "1"}, 422, "body.score"),
        (lambda r: {"key": key(r), "score": None}, 422, "body.score"),
        (lambda r: {"key": key(r), "score": 1, "name": "Thumbs Up"}, 422, "invalid feedback name"),
        (lambda r: {"key": key(r), "score": 1, "id": "pcf_xyz"}, 422, "body.id"),
        (lambda r: {"key": key(r), "score": 1, "extra": 1}, 422, "unknown field"),
        (lambda r: {"score": 1}, 422, "body.key"),
        (lambda r: {"key": key("ro-unknown"), "score": 1}, 404, "has no rollout 'ro-unknown'"),
        (lambda r: {"key": key(r, prompt="nope"), "score": 1}, 404, "nope"),
        (lambda r: {"key": key(r, version=7), "score": 1}, 409, "serves version 2 there"),
        (lambda r: {"key": key(r, cohort="stable", version=2), "score": 1}, 409, "serves version 1 there"),
    ],
)
def test_bad_feedback_is_refused_and_changes_nothing(
    client: TestClient, registry: SqlRegistry, started: str, make: Any, status: int, message: str
) -> None:
    answer = post(client, make(started))
    assert answer.status_code == status, answer.text
    assert message in error_of(answer)[1]
    assert statistics(registry, started) == {"stable": {}, "canary": {}}


def test_feedback_for_a_rollout_that_has_ended_is_a_conflict(
    client: TestClient, registry: SqlRegistry, started: str
) -> None:
    given = key(started)
    rolled = client.post("/v1/prompts/greeter/rollout/rollback", json={"reason": "enough"}, headers=AUTH)
    assert rolled.status_code == 200, rolled.text
    answer = post(client, {"key": given, "score": 0.0})
    assert answer.status_code == 409
    assert f"rollout {started} of 'greeter' has ended (rolled_back)" in error_of(answer)[1]
    assert statistics(registry, started) == {"stable": {}, "canary": {}}


def test_the_reporting_credential_reports_and_does_nothing_else(
    client: TestClient, registry: SqlRegistry, started: str
) -> None:
    body = {"key": key(started), "score": 1}
    assert post(client, body, headers={}).status_code == 401
    wrong = post(client, body, headers={"Authorization": "Bearer not-the-token-0123456789"})
    assert (wrong.status_code, error_of(wrong)[1]) == (401, "invalid bearer token")
    # It may not write anything else: not a prompt, not a transition (a known principal: 403).
    assert (
        client.post("/v1/prompts", json={"name": "x", "template": "y"}, headers=REPORT_AUTH).status_code
        == 403
    )
    rollback = client.post("/v1/prompts/greeter/rollout/rollback", json={"reason": "r"}, headers=REPORT_AUTH)
    assert rollback.status_code == 403
    assert client.get("/v1/routes/greeter").json()["state"] == "ramping"
    assert statistics(registry, started) == {"stable": {}, "canary": {}}


def test_a_signed_feedback_carries_its_id_as_webhook_id(client: TestClient, started: str) -> None:
    feedback_id = "pcf_" + uuid.uuid4().hex
    body = {"key": key(started), "score": 1, "id": feedback_id}
    content, headers = signed(body, key=WEBHOOK_KEY)
    assert client.post("/v1/feedback", content=content, headers=headers).json()["outcome"] == "merged"
    other = {**body, "id": "pcf_" + uuid.uuid4().hex}
    content, headers = signed(other, key=WEBHOOK_KEY, message_id=feedback_id)
    answer = client.post("/v1/feedback", content=content, headers=headers)
    assert answer.status_code == 422
    assert "is not the webhook-id" in error_of(answer)[1]


def test_the_key_lifetime_is_the_control_planes_setting(registry: SqlRegistry) -> None:
    settings = loop_settings(report_token=REPORT_TOKEN, feedback_key_lifetime_seconds=120)
    with TestClient(create_app(registry, settings)) as client:
        rollout_id = rollout(client)["rollout_id"]
        assert post(client, {"key": key(rollout_id, age=60), "score": 1}).status_code == 200
        old = post(client, {"key": key(rollout_id, age=180), "score": 1})
        assert old.status_code == 422
        assert "keys are valid for 0.00138889 days" in error_of(old)[1]


def test_without_a_token_keys_are_unsigned_and_accepted(registry: SqlRegistry) -> None:
    # Development: writes are open, and keys made without a credential are the only ones there are.
    with TestClient(create_app(registry, ServiceSettings(insecure_dev=True, controller=False))) as client:
        rollout_id = rollout(client)["rollout_id"]
        answer = post(client, {"key": key(rollout_id, credential=None), "score": 1}, headers={})
        assert answer.json()["outcome"] == "merged"
    assert TOKEN  # the suites' write token is another credential: its keys are refused above
