"""Rollout policies: validated at start (422, nothing written), stored in full, served on /v1/policies."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from otel_prompt_canary.analysis import DEFAULT_POLICY, load_policy
from otel_prompt_canary.loop.start import policy_document, resolve_rollout_policy
from otel_prompt_canary.registry import SqlRegistry
from tests.service.service_factories import error_of, two_versions
from tests.support.auth import AUTH

SIGNALS = [{"name": "json_valid", "kind": "proportion", "harmful": "decrease"}]
RULES = [{"signal": "json_valid", "type": "relative", "margin": 0.01, "action": "rollback"}]


def policy(**extra: Any) -> dict[str, Any]:
    return {"signals": SIGNALS, "rules": RULES, **extra}


def start(client: TestClient, **body: Any) -> Any:
    return client.post(
        "/v1/prompts/greeter/rollouts", json={"version": 2, "reason": "r", **body}, headers=AUTH
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"policy": {"signals": SIGNALS}}, "invalid policy: rules: Field required"),
        (
            {"policy": policy(rules=[{"signal": "judge", "type": "relative", "action": "pause"}])},
            "names unknown signal 'judge'",
        ),
        ({"policy": policy(alpha=0.9)}, "alpha: Input should be less than or equal to 0.5"),
        (
            {"policy": policy(ramp={"steps": [10, 100]}), "ramp": "5,100"},
            "the ramp 5,100 disagrees with the policy's ramp.steps 10,100",
        ),
        ({"policy": policy(ramp={"steps": [10, 50]})}, "the last ramp step must be 100"),
        ({"policy": policy(), "ramp": [50, 20, 100]}, "steps must be strictly increasing"),
    ],
)
def test_a_policy_that_cannot_be_decided_is_refused_and_nothing_changes(
    client: TestClient, registry: SqlRegistry, body: dict[str, Any], message: str
) -> None:
    two_versions(client, AUTH)
    before = registry.get_route("greeter")
    response = start(client, **body)
    assert response.status_code == 422, response.text
    kind, text = error_of(response)
    assert kind == "InvalidInputError"
    assert message in text
    assert registry.get_route("greeter") == before
    assert registry.history("greeter") == []


def test_without_a_policy_the_default_policy_is_stored(client: TestClient, registry: SqlRegistry) -> None:
    two_versions(client, AUTH)
    route = start(client, ramp="20,100").json()
    assert route["ramp"] == [20.0, 100.0]
    stored = registry.get_rollout("greeter").policy
    assert stored is not None
    assert load_policy(stored) == DEFAULT_POLICY.model_copy(
        update={"ramp": DEFAULT_POLICY.ramp.model_copy(update={"steps": (20.0, 100.0)})}
    )
    # The audit record of the start names the policy that applied.
    assert registry.history("greeter")[0].evidence == {"policy": stored}


@pytest.mark.parametrize(
    ("body", "ramp"),
    [
        ({"policy": policy(ramp={"steps": [10, 50, 100]})}, [10.0, 50.0, 100.0]),  # from the policy
        ({"policy": policy(ramp={"steps": [10, 50, 100]}), "ramp": "10,50,100"}, [10.0, 50.0, 100.0]),
        ({"policy": policy(), "ramp": [2, 100]}, [2.0, 100.0]),  # the ramp fills the policy's steps
        ({"policy": policy()}, [1.0, 5.0, 20.0, 50.0, 100.0]),  # neither: the default ramp
    ],
)
def test_the_ramp_and_the_policy_agree(
    client: TestClient, registry: SqlRegistry, body: dict[str, Any], ramp: list[float]
) -> None:
    two_versions(client, AUTH)
    response = start(client, **body)
    assert response.status_code == 201, response.text
    assert response.json()["ramp"] == ramp
    stored = registry.get_rollout("greeter").policy
    assert stored is not None
    assert stored["ramp"]["steps"] == ramp  # type: ignore[index]
    assert stored["rules"][0]["id"] == "json_valid.relative"  # type: ignore[index]


def test_the_stored_document_reads_back_to_the_same_policy() -> None:
    resolved = resolve_rollout_policy(policy(ramp={"steps": [5, 100], "min_samples": 7}))
    assert load_policy(resolved.document) == resolved.policy
    assert policy_document(resolved.policy) == resolved.document
    assert None not in resolved.document.values()


def test_policies_of_active_rollouts_with_an_etag(client: TestClient, registry: SqlRegistry) -> None:
    two_versions(client, AUTH)
    empty = client.get("/v1/policies")
    assert empty.status_code == 200
    assert empty.json() == {"policies": {}}

    route = start(client, policy=policy(ramp={"steps": [10, 50, 100]})).json()
    first = client.get("/v1/policies")
    body = first.json()
    # Exactly the document the Collector processor parses: one key, policies by prompt.
    assert set(body) == {"policies"}
    assert body["policies"] == {"greeter": registry.get_rollout("greeter").policy}
    etag = first.headers["ETag"]
    assert client.get("/v1/policies", headers={"If-None-Match": etag}).status_code == 304

    detail = client.get("/v1/policies", params={"include": "rollouts"})
    assert detail.headers["ETag"] != etag
    (entry,) = detail.json()["rollouts"]
    assert entry["prompt"] == "greeter"
    assert entry["rollout_id"] == route["rollout_id"]
    assert (entry["stable_version"], entry["canary_version"], entry["step"]) == (1, 2, 0)
    assert entry["state"] == "ramping"
    assert entry["policy"] == body["policies"]["greeter"]
    started = entry["step_started_at"]

    client.post("/v1/prompts/greeter/rollout/advance", json={"reason": "fine"}, headers=AUTH)
    moved = client.get("/v1/policies", params={"include": "rollouts"}, headers={"If-None-Match": etag})
    assert moved.status_code == 200
    (entry,) = moved.json()["rollouts"]
    assert entry["step"] == 1
    assert entry["step_started_at"] > started

    client.post("/v1/prompts/greeter/rollout/rollback", json={"reason": "bad"}, headers=AUTH)
    assert client.get("/v1/policies").json() == {"policies": {}}


def test_policies_query_is_validated(client: TestClient) -> None:
    response = client.get("/v1/policies", params={"include": "everything"})
    assert response.status_code == 422
    assert "query.include" in error_of(response)[1]
