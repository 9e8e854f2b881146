"""``/v1/prompts/{name}/rollout*``: the state machine over HTTP; refusals change nothing."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from otel_prompt_canary.registry import SqlRegistry
from tests.service.service_factories import error_of, started, two_versions
from tests.support.auth import AUTH

POLICY = {
    "signals": [{"name": "format_valid", "kind": "proportion", "harmful": "decrease"}],
    "rules": [{"signal": "format_valid", "type": "absolute", "threshold": 0.95, "action": "rollback"}],
}


def test_start_answers_the_route(client: TestClient) -> None:
    two_versions(client, AUTH)
    response = client.post(
        "/v1/prompts/greeter/rollouts",
        json={
            "version": 2,
            "ramp": [5, 50, 100],
            "reason": "shorter",
            "policy": POLICY,
        },
        headers=AUTH,
    )
    assert response.status_code == 201
    route = response.json()
    assert set(route) >= {
        "prompt",
        "stable_version",
        "canary_version",
        "canary_weight_bp",
        "rollout_id",
        "state",
        "step",
        "revision",
    }
    assert route["prompt"] == "greeter"
    assert route["stable_version"] == 1
    assert route["canary_version"] == 2
    assert route["canary_weight_bp"] == 500
    assert route["state"] == "ramping"
    assert route["step"] == 0
    assert route["revision"] == 2
    assert route["ramp"] == [5.0, 50.0, 100.0]

    status = client.get("/v1/prompts/greeter/rollout").json()
    assert status["route"] == route
    assert status["rollout"]["rollout_id"] == route["rollout_id"]
    assert status["rollout"]["candidate_version"] == 2
    assert status["rollout"]["baseline_version"] == 1
    stored = status["rollout"]["policy"]
    assert stored["ramp"]["steps"] == [5.0, 50.0, 100.0]
    assert stored["signals"] == [
        {"name": "format_valid", "kind": "proportion", "harmful": "decrease"}
        | {"critical": False, "must_have_data": False}
    ]


def test_rollout_status_without_any_rollout(client: TestClient) -> None:
    two_versions(client, AUTH)
    status = client.get("/v1/prompts/greeter/rollout").json()
    assert status["rollout"] is None
    assert status["route"]["state"] == "idle"
    response = client.get("/v1/prompts/greeter/rollout", params={"rollout_id": "nope"})
    assert response.status_code == 404
    assert error_of(response)[0] == "NotFoundError"


def test_full_lifecycle(client: TestClient, registry: SqlRegistry) -> None:
    route = started(client, AUTH, ramp="10,100")
    rollout_id = route["rollout_id"]

    def act(action: str, **body: Any) -> dict[str, Any]:
        response = client.post(
            f"/v1/prompts/greeter/rollout/{action}", json={"reason": action} | body, headers=AUTH
        )
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    assert act("advance", expected_revision=2)["canary_weight_bp"] == 10_000
    assert act("pause", rollout_id=rollout_id)["state"] == "paused"
    assert act("resume", evidence={"note": "checked by hand"})["state"] == "ramping"
    promoted = act("promote")
    assert promoted["state"] == "promoted"
    assert promoted["stable_version"] == 2
    assert promoted["canary_version"] is None
    assert promoted["revision"] == 6

    history = client.get("/v1/prompts/greeter/rollout/history").json()
    assert [h["action"] for h in history] == ["start", "advance", "pause", "resume", "promote"]
    assert history[3]["evidence"] == {"note": "checked by hand"}
    assert [h["to_revision"] for h in history] == [2, 3, 4, 5, 6]
    newest = client.get("/v1/prompts/greeter/rollout/history", params={"limit": 2}).json()
    assert [h["action"] for h in newest] == ["resume", "promote"]

    ended = client.get("/v1/prompts/greeter/rollout").json()["rollout"]
    assert ended["state"] == "promoted"
    assert ended["ended_at"] is not None


def test_rollback(client: TestClient) -> None:
    started(client, AUTH)
    response = client.post(
        "/v1/prompts/greeter/rollout/rollback",
        json={"reason": "format validity fell", "evidence": {"fail": 31, "n": 400}},
        headers=AUTH,
    )
    assert response.status_code == 200
    route = response.json()
    assert route["state"] == "rolled_back"
    assert route["canary_weight_bp"] == 0
    assert route["canary_version"] is None


@pytest.mark.parametrize(
    ("body", "status", "type_", "message"),
    [
        ({"version": 2, "reason": "r", "ramp": "1,50,20"}, 422, "InvalidInputError", "strictly increasing"),
        (
            {"version": 2, "reason": "r", "ramp": "1,5,abc"},
            422,
            "InvalidInputError",
            "invalid ramp '1,5,abc'",
        ),
        (
            {"version": 2, "reason": "r", "ramp": [1, 50]},
            422,
            "InvalidInputError",
            "the last step must be 100",
        ),
        (
            {"version": 2, "reason": "r", "ramp": [0, 100]},
            422,
            "InvalidInputError",
            "every step must be in (0, 100]",
        ),
        ({"version": 0, "reason": "r"}, 422, "InvalidInputError", "body.version"),
        ({"version": "two", "reason": "r"}, 422, "InvalidInputError", "body.version"),
        ({}, 422, "InvalidInputError", "body.reason: Field required"),
        # The version may be left out only to promote the one stable in another environment.
        ({"reason": "r"}, 422, "InvalidInputError", "give 'version', or 'from_environment'"),
        (
            {"version": 2, "reason": "r", "colour": "red"},
            422,
            "InvalidInputError",
            "body.colour: unknown field",
        ),
        ({"version": 2, "reason": "r", "policy": [1]}, 422, "InvalidInputError", "body.policy"),
        ({"version": 9, "reason": "r"}, 404, "NotFoundError", "has no version 9"),
        ({"version": 1, "reason": "r"}, 422, "InvalidInputError", "already the stable version"),
        ({"version": 2}, 422, "InvalidInputError", "body.reason: Field required"),
        (
            {"version": 2, "reason": ""},
            422,
            "InvalidInputError",
            "body.reason: String should have at least 1",
        ),
        (
            {"version": 2, "reason": "  "},
            422,
            "InvalidInputError",
            "give a reason: it is recorded in the audit log",
        ),
        ({"version": 2, "reason": "r", "expected_revision": 5}, 409, "RevisionMismatchError", "not 5"),
    ],
)
def test_start_refusals_change_nothing(
    client: TestClient,
    registry: SqlRegistry,
    body: dict[str, Any],
    status: int,
    type_: str,
    message: str,
) -> None:
    two_versions(client, AUTH)
    before = registry.get_route("greeter")
    response = client.post("/v1/prompts/greeter/rollouts", json=body, headers=AUTH)
    assert response.status_code == status, response.text
    got_type, got_message = error_of(response)
    assert got_type == type_
    assert message in got_message
    assert registry.get_route("greeter") == before
    assert registry.history("greeter") == []


def test_start_on_unknown_prompt_is_404(client: TestClient) -> None:
    response = client.post("/v1/prompts/nope/rollouts", json={"version": 1, "reason": "r"}, headers=AUTH)
    assert response.status_code == 404
    assert error_of(response) == ("NotFoundError", "unknown prompt 'nope'")


def test_second_start_while_active_is_409(client: TestClient, registry: SqlRegistry) -> None:
    started(client, AUTH)
    client.post("/v1/prompts", json={"name": "greeter", "template": "v3"}, headers=AUTH)
    response = client.post("/v1/prompts/greeter/rollouts", json={"version": 3, "reason": "r"}, headers=AUTH)
    assert response.status_code == 409
    type_, message = error_of(response)
    assert type_ == "IllegalTransitionError"
    assert "promote or roll it back first" in message
    assert registry.get_route("greeter").canary_version == 2


@pytest.mark.parametrize(
    ("action", "body", "status", "type_", "message"),
    [
        ("resume", {"reason": "go"}, 409, "IllegalTransitionError", "resume is allowed from: paused"),
        ("advance", {"reason": "x", "expected_revision": 1}, 409, "RevisionMismatchError", "not 1"),
        ("pause", {"reason": "x", "rollout_id": "other"}, 409, "ConflictError", "not the current rollout"),
        ("advance", {}, 422, "InvalidInputError", "body.reason: Field required"),
        ("advance", {"reason": ""}, 422, "InvalidInputError", "body.reason"),
        ("advance", {"reason": "   "}, 422, "InvalidInputError", "give a reason"),
        ("advance", {"reason": "x", "extra": 1}, 422, "InvalidInputError", "body.extra: unknown field"),
        ("jump", {"reason": "x"}, 422, "InvalidInputError", "path.action: Input should be 'advance'"),
        ("start", {"reason": "x"}, 422, "InvalidInputError", "path.action"),
        ("history", {"reason": "x"}, 422, "InvalidInputError", "path.action"),
    ],
)
def test_transition_refusals_change_nothing(
    client: TestClient,
    registry: SqlRegistry,
    action: str,
    body: dict[str, Any],
    status: int,
    type_: str,
    message: str,
) -> None:
    started(client, AUTH)
    before = registry.get_route("greeter")
    history = registry.history("greeter")
    response = client.post(f"/v1/prompts/greeter/rollout/{action}", json=body, headers=AUTH)
    assert response.status_code == status, response.text
    got_type, got_message = error_of(response)
    assert got_type == type_
    assert message in got_message
    assert registry.get_route("greeter") == before
    assert registry.history("greeter") == history


def test_advance_past_the_last_step_is_409(client: TestClient) -> None:
    started(client, AUTH, ramp="100")
    response = client.post("/v1/prompts/greeter/rollout/advance", json={"reason": "x"}, headers=AUTH)
    assert response.status_code == 409
    assert "promote it instead" in error_of(response)[1]


def test_history_errors(client: TestClient) -> None:
    assert client.get("/v1/prompts/nope/rollout/history").status_code == 404
    two_versions(client, AUTH)
    assert client.get("/v1/prompts/greeter/rollout/history").json() == []
    response = client.get("/v1/prompts/greeter/rollout/history", params={"limit": 0})
    assert response.status_code == 422
    assert "query.limit" in error_of(response)[1]


def test_revert_undoes_a_promotion_in_one_audited_transition(
    client: TestClient, registry: SqlRegistry
) -> None:
    route = started(client, AUTH)
    refused = client.post("/v1/prompts/greeter/rollout/revert", json={"reason": "too early"}, headers=AUTH)
    assert refused.status_code == 409
    assert error_of(refused) == (
        "IllegalTransitionError",
        "cannot revert prompt 'greeter': its rollout is ramping (revision 2); revert is allowed from: "
        "promoted (an active rollout is undone with rollback)",
    )
    client.post("/v1/prompts/greeter/rollout/promote", json={"reason": "good"}, headers=AUTH)
    promoted = registry.get_route("greeter")
    for body, status, expected in [
        ({"reason": "x", "to_version": 9}, 404, ("NotFoundError", "prompt 'greeter' has no version 9")),
        (
            {"reason": "x", "to_version": 2},
            422,
            ("InvalidInputError", "version 2 of 'greeter' is already the stable version: nothing to revert"),
        ),
        ({"reason": "x", "to_version": 0}, 422, ("InvalidInputError", "body.to_version: Input should be")),
        ({}, 422, ("InvalidInputError", "body.reason: Field required")),
        (
            {"reason": "x", "expected_revision": 1},
            409,
            ("RevisionMismatchError", "routing flag of 'greeter' is at revision 3, not 1"),
        ),
    ]:
        response = client.post("/v1/prompts/greeter/rollout/revert", json=body, headers=AUTH)
        assert response.status_code == status, response.text
        got_type, got_message = error_of(response)
        assert (got_type, got_message[: len(expected[1])]) == expected
    assert registry.get_route("greeter") == promoted
    reverted = client.post(
        "/v1/prompts/greeter/rollout/revert",
        json={"reason": "complaints", "expected_revision": promoted.revision},
        headers={**AUTH, "X-Prompt-Canary-Actor": "oncall"},
    )
    assert reverted.status_code == 200, reverted.text
    body = reverted.json()
    assert (body["state"], body["stable_version"], body["canary_version"], body["rollout_id"]) == (
        "rolled_back",
        1,
        None,
        route["rollout_id"],
    )
    (record,) = client.get("/v1/prompts/greeter/rollout/history", params={"limit": 1}).json()
    assert (record["action"], record["actor"], record["evidence"]) == (
        "revert",
        "oncall",
        {"from_version": 2, "to_version": 1},
    )


def test_a_version_to_go_back_to_is_refused_with_another_action(
    client: TestClient, registry: SqlRegistry
) -> None:
    started(client, AUTH)
    before = registry.get_route("greeter")
    response = client.post(
        "/v1/prompts/greeter/rollout/advance", json={"reason": "x", "to_version": 1}, headers=AUTH
    )
    assert response.status_code == 422
    assert error_of(response) == (
        "InvalidInputError",
        "a version to go back to applies to revert only, not to advance",
    )
    assert registry.get_route("greeter") == before
