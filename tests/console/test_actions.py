"""The console's actions: each changes the routing flag as the API would, records the signed-in
principal in the audit trail, and is refused (logged, nothing changed) without its CSRF token, from
another site, or beyond the principal's roles and environments."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from otel_prompt_canary.service.console.session import COOKIE_NAME
from tests.console.console_client import ConsolePerson, Page
from tests.console.console_fixtures import ALICE, OMAR, RHEA, RITA, SAM, Console

ACCESS_LOG = "otel_prompt_canary.service.access"


def two_versions(console: Console, name: str = "greeter") -> None:
    console.push(name, "Greet {{ name }} warmly.")
    console.push(name, "Greet {{ name }} briefly.", model="gpt-4.1-mini")


def confirm(person: ConsolePerson, name: str, action: str, environment: str = "production") -> Page:
    """The confirmation page of ``action`` (reached from the rollout page's button)."""
    rollout = person.get(f"/console/prompts/{name}/rollout", environment=environment)
    link = next(href for href in rollout.links if f"action={action}" in href)
    page = person.get(link.split("?")[0], **dict(p.split("=", 1) for p in link.split("?")[1].split("&")))
    assert page.status == 200, page.text
    return page


def act(
    person: ConsolePerson, name: str, action: str, environment: str = "production", **values: str
) -> Page:
    page = confirm(person, name, action, environment)
    return person.submit(
        page, f"/console/prompts/{name}/rollout/{action}", reason=f"{action} from the console", **values
    )


def last_record(console: Console, name: str, environment: str = "production") -> dict[str, Any]:
    return console.history(name, environment)[-1]


def test_a_rollout_started_moved_and_rolled_back_from_the_console(console: Console) -> None:
    two_versions(console)
    console.approve("greeter", 2)
    person = console.signed_in(OMAR)
    review = person.get("/console/prompts/greeter/versions/2")
    page = person.submit(
        review, "/console/prompts/greeter/rollouts", reason="a briefer greeting", ramp="5,50,100"
    )
    assert page.status == 200, page.text
    route = console.route("greeter")
    assert (route["state"], route["canary_version"], route["canary_weight_bp"]) == ("ramping", 2, 500)
    record = last_record(console, "greeter")
    assert (record["action"], record["principal"], record["actor"]) == ("start", "omar", "omar")
    assert record["reason"].startswith("a briefer greeting")
    assert "Rollout of greeter in production" in page.text and "5%" in page.main

    page = act(person, "greeter", "advance")
    assert console.route("greeter")["canary_weight_bp"] == 5000
    assert (last_record(console, "greeter")["action"], last_record(console, "greeter")["principal"]) == (
        "advance",
        "omar",
    )
    assert "advance from the console" in page.main

    act(person, "greeter", "pause")
    assert console.route("greeter")["state"] == "paused"
    act(person, "greeter", "resume")
    assert console.route("greeter")["state"] == "ramping"
    page = act(person, "greeter", "rollback")
    route = console.route("greeter")
    assert (route["state"], route["canary_weight_bp"], route["stable_version"]) == ("rolled_back", 0, 1)
    record = last_record(console, "greeter")
    assert (record["action"], record["principal"], record["reason"]) == (
        "rollback",
        "omar",
        "rollback from the console",
    )
    # The page shows the end of the rollout, and offers no more actions.
    assert "rolled_back" in page.main
    assert not [href for href in page.links if "/rollout/confirm" in href]


def test_revert_undoes_a_promotion(console: Console) -> None:
    two_versions(console)
    console.start("greeter", 2, ramp="100")
    response = console.api.post("/v1/prompts/greeter/rollout/promote", json={"reason": "promote"})
    assert response.status_code == 200, response.text
    assert console.route("greeter")["state"] == "promoted"
    person = console.signed_in(OMAR)
    act(person, "greeter", "revert")
    route = console.route("greeter")
    assert (route["state"], route["stable_version"]) == ("rolled_back", 1)
    assert last_record(console, "greeter")["principal"] == "omar"


def test_a_revert_from_the_console_goes_around_no_review(console: Console) -> None:
    two_versions(console)
    console.push("greeter", "Greet {{ name }} in verse.")  # version 3: never reviewed
    console.start("greeter", 2, ramp="100")
    assert console.api.post("/v1/prompts/greeter/rollout/promote", json={"reason": "go"}).status_code == 200
    before = console.route("greeter")
    person = console.signed_in(OMAR)
    answer = act(person, "greeter", "revert", to_version="3")
    assert answer.status == 409, answer.text
    assert "never been stable there and is not approved" in answer.main
    assert console.route("greeter") == before
    # A version that was stable before needs no review to go back to.
    act(person, "greeter", "revert", to_version="1")
    assert (console.route("greeter")["state"], console.route("greeter")["stable_version"]) == (
        "rolled_back",
        1,
    )


def test_an_action_on_a_flag_that_moved_since_the_confirmation_is_refused(console: Console) -> None:
    two_versions(console)
    console.start("greeter", 2)
    person = console.signed_in(OMAR)
    page = confirm(person, "greeter", "advance")
    # Someone else advances meanwhile: the person confirmed what they saw, not what is now.
    assert console.api.post("/v1/prompts/greeter/rollout/pause", json={"reason": "hold"}).status_code == 200
    before = console.route("greeter")
    answer = person.submit(page, "/console/prompts/greeter/rollout/advance", reason="go on")
    assert answer.status == 409
    assert "revision" in answer.main
    assert console.route("greeter") == before


def test_starting_a_rollout_of_an_unapproved_version_is_refused_with_what_is_missing(
    console: Console,
) -> None:
    two_versions(console)
    person = console.signed_in(OMAR)
    review = person.get("/console/prompts/greeter/versions/2")
    page = person.submit(review, "/console/prompts/greeter/rollouts", reason="try")
    assert page.status == 409
    assert "needs 1 approval by someone other than its author alice; it has 0" in page.main
    assert console.route("greeter")["state"] == "idle"


def test_reviews_from_the_console(console: Console, caplog: pytest.LogCaptureFixture) -> None:
    two_versions(console)
    # The author may not approve her own version.
    alice = console.signed_in(ALICE)
    review = alice.get("/console/prompts/greeter/versions/2")
    with caplog.at_level(logging.WARNING, logger=ACCESS_LOG):
        page = alice.submit(review, "/console/prompts/greeter/versions/2/reviews", verdict="approve")
    assert page.status == 403
    assert "principal 'alice' may not approve version 2 of greeter: it is its author" in page.main
    assert any("alice" in r.getMessage() and "its author" in r.getMessage() for r in caplog.records)

    rita = console.signed_in(RITA)
    review = rita.get("/console/prompts/greeter/versions/2")
    page = rita.submit(review, "/console/prompts/greeter/versions/2/reviews", verdict="request_changes")
    assert page.status == 422
    assert "a request for changes needs a comment" in page.main
    page = rita.submit(
        review, "/console/prompts/greeter/versions/2/reviews", verdict="request_changes", comment="too curt"
    )
    assert page.status == 200
    assert "Changes requested by rita." in page.main and "too curt" in page.main
    page = rita.submit(
        page, "/console/prompts/greeter/versions/2/reviews", verdict="approve", comment="ok now"
    )
    assert "Approved by rita: it may roll out." in page.main
    reviews = console.api.get("/v1/prompts/greeter/versions/2/reviews").json()
    assert [(r["principal"], r["verdict"], r["comment"]) for r in reviews] == [
        ("rita", "request_changes", "too curt"),
        ("rita", "approve", "ok now"),
    ]
    prompt = rita.get("/console/prompts/greeter")
    assert "approved by rita" in prompt.main


@pytest.mark.parametrize(
    ("who", "action", "environment", "role"),
    [
        (RHEA, "advance", "production", "operate"),
        (RITA, "rollback", "production", "operate"),
        (SAM, "rollback", "production", "operate"),  # an operator of staging only
    ],
)
def test_a_role_beyond_its_scope_is_refused_and_nothing_changes(
    console: Console,
    caplog: pytest.LogCaptureFixture,
    who: Any,
    action: str,
    environment: str,
    role: str,
) -> None:
    two_versions(console)
    console.start("greeter", 2)
    admin = console.signed_in()
    page = confirm(admin, "greeter", action)
    form = page.form(f"/console/prompts/greeter/rollout/{action}")
    person = console.signed_in(who)
    csrf = person.get("/console/").form("/console/sign-out").fields["csrf_token"]
    before = console.route("greeter")
    with caplog.at_level(logging.WARNING, logger=ACCESS_LOG):
        answer = person.post(form.action, {**form.fields, "csrf_token": csrf, "reason": "try"})
    assert answer.status == 403
    assert f"principal {who.principal!r} may not start or move rollouts in environment {environment!r}" in (
        answer.main
    )
    assert f"that needs the role {role!r}" in answer.main
    assert console.route("greeter") == before
    assert any(who.principal in r.getMessage() and "may not" in r.getMessage() for r in caplog.records)
    # Nor does the page offer what the person may not do.
    assert not [href for href in person.get("/console/prompts/greeter/rollout").links if "confirm" in href]


def test_an_operator_of_staging_acts_in_staging(console: Console) -> None:
    two_versions(console)
    console.start("greeter", 2, environment="staging")
    person = console.signed_in(SAM)
    act(person, "greeter", "rollback", environment="staging")
    assert console.route("greeter", "staging")["state"] == "rolled_back"
    assert console.history("greeter", "staging")[-1]["principal"] == "sam"
    assert console.route("greeter", "production")["state"] == "idle"


def test_a_reviewer_cannot_start_a_rollout(console: Console) -> None:
    two_versions(console)
    console.approve("greeter", 2, by=RITA)
    admin_form = (
        console.signed_in()
        .get("/console/prompts/greeter/versions/2")
        .form("/console/prompts/greeter/rollouts")
    )
    rita = console.signed_in(RITA)
    assert not [f for f in rita.get("/console/prompts/greeter/versions/2").forms if "rollouts" in f.action]
    csrf = rita.get("/console/").form("/console/sign-out").fields["csrf_token"]
    page = rita.post(admin_form.action, {**admin_form.fields, "csrf_token": csrf, "reason": "go"})
    assert page.status == 403
    assert "principal 'rita' may not start or move rollouts" in page.main
    assert console.route("greeter")["state"] == "idle"


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"csrf_token": None}, "the form carried no CSRF token"),
        ({"csrf_token": "0" * 64}, "the form's CSRF token is not this session's"),
        ({"origin": "https://evil.example"}, "the form was posted from another site (https://evil.example)"),
        ({"origin": None}, "the form post named no Origin or Referer"),
    ],
)
def test_a_forged_form_post_is_refused_logged_and_changes_nothing(
    console: Console, caplog: pytest.LogCaptureFixture, change: dict[str, Any], why: str
) -> None:
    two_versions(console)
    console.start("greeter", 2)
    person = console.signed_in(OMAR)
    form = confirm(person, "greeter", "rollback").form("/console/prompts/greeter/rollout/rollback")
    fields = {**form.fields, "reason": "forged"}
    if "csrf_token" in change:
        if change["csrf_token"] is None:
            del fields["csrf_token"]
        else:
            fields["csrf_token"] = change["csrf_token"]
    before = console.route("greeter")
    with caplog.at_level(logging.WARNING, logger=ACCESS_LOG):
        page = person.post(form.action, fields, origin=change.get("origin", "same"))
    assert page.status == 403
    assert why in page.main
    assert console.route("greeter") == before
    assert len(console.history("greeter")) == 1  # the start only
    assert any(why in r.getMessage() and "omar" in r.getMessage() for r in caplog.records)


def test_another_sessions_csrf_token_is_refused(console: Console) -> None:
    two_versions(console)
    console.start("greeter", 2)
    mallory_form = confirm(console.signed_in(OMAR), "greeter", "rollback").form(
        "/console/prompts/greeter/rollout/rollback"
    )
    victim = console.signed_in(OMAR)
    page = victim.post(mallory_form.action, {**mallory_form.fields, "reason": "not mine"})
    assert page.status == 403
    assert "the form's CSRF token is not this session's" in page.main
    assert console.route("greeter")["state"] == "ramping"


def test_an_action_without_a_session_goes_to_the_sign_in_form(console: Console) -> None:
    two_versions(console)
    console.start("greeter", 2)
    form = confirm(console.signed_in(OMAR), "greeter", "rollback").form(
        "/console/prompts/greeter/rollout/rollback"
    )
    # Someone with a cookie that is no session posts the form of another's page.
    stranger = console.person()
    stranger.client.cookies.set(COOKIE_NAME, "not-a-session", domain="127.0.0.1", path="/console")
    page = stranger.post(form.action, {**form.fields, "reason": "anonymous"})
    assert page.status == 401
    assert "Sign in" in page.main
    # Someone with no cookie at all is refused before the console reads the form.
    page = console.person().post(form.action, {**form.fields, "reason": "anonymous"})
    assert page.status == 403
    assert console.route("greeter")["state"] == "ramping"


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"reason": ""}, "a reason is required"),
        ({"expected_revision": "x"}, "expected_revision must be a whole number"),
    ],
)
def test_bad_input_is_refused_with_a_precise_message(
    console: Console, fields: dict[str, str], why: str
) -> None:
    two_versions(console)
    console.start("greeter", 2)
    person = console.signed_in(OMAR)
    form = confirm(person, "greeter", "advance").form("/console/prompts/greeter/rollout/advance")
    before = console.route("greeter")
    page = person.post(form.action, {**form.fields, "reason": "ok", **fields})
    assert page.status == 422
    assert why in page.main
    assert console.route("greeter") == before


def test_an_unknown_action_is_refused(console: Console) -> None:
    two_versions(console)
    console.start("greeter", 2)
    person = console.signed_in(OMAR)
    form = confirm(person, "greeter", "advance").form("/console/prompts/greeter/rollout/advance")
    page = person.post("/console/prompts/greeter/rollout/promote-twice", {**form.fields, "reason": "x"})
    assert page.status == 422
    assert "unknown action 'promote-twice'" in page.main


def test_a_version_stable_in_staging_is_promoted_into_production(console: Console) -> None:
    two_versions(console)
    console.start("greeter", 2, environment="staging", ramp="100")
    promoted = console.api.post(
        "/v1/prompts/greeter/rollout/promote", params={"environment": "staging"}, json={"reason": "good"}
    )
    assert promoted.status_code == 200, promoted.text
    person = console.signed_in(OMAR)
    review = person.get("/console/prompts/greeter/versions/2", environment="production")
    assert "v2 is stable in staging: this rollout promotes it from there." in review.main
    assert review.form("/console/prompts/greeter/rollouts").fields["from_environment"] == "staging"
    page = person.submit(review, "/console/prompts/greeter/rollouts", reason="on to production")
    assert page.status == 200, page.main
    route = console.route("greeter", "production")
    assert (route["state"], route["canary_version"]) == ("ramping", 2)
    record = last_record(console, "greeter", "production")
    assert "promoted from staging" in record["reason"] and record["principal"] == "omar"


def test_at_the_last_step_the_console_offers_to_promote(console: Console) -> None:
    two_versions(console)
    console.start("greeter", 2, ramp="50,100")
    person = console.signed_in(OMAR)
    act(person, "greeter", "advance")
    rollout = person.get("/console/prompts/greeter/rollout")
    offered = [h.split("action=")[1].split("&")[0] for h in rollout.links if "/rollout/confirm" in h]
    assert offered == ["promote", "pause", "rollback"]
    act(person, "greeter", "promote")
    route = console.route("greeter")
    assert (route["state"], route["stable_version"], route["canary_version"]) == ("promoted", 2, None)
    assert (last_record(console, "greeter")["action"], last_record(console, "greeter")["principal"]) == (
        "promote",
        "omar",
    )
