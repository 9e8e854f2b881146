"""Signing out ends a console session for good, on every replica sharing the database; sessions
ended or expired are pruned when someone signs in; a rollout of another environment is not found
(404) from a page of this one, whether read, polled, confirmed or acted on."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from otel_prompt_canary.registry import schema as t
from otel_prompt_canary.registry.sql import open_store
from otel_prompt_canary.service.console.session import COOKIE_NAME
from tests.console.console_client import ConsolePerson
from tests.console.console_fixtures import OMAR, SAM, Console, console_settings
from tests.support.loopback import running_server

ACCESS_LOG = "otel_prompt_canary.service.access"


def _session_cookie(person: ConsolePerson) -> str:
    return next(c.value for c in person.client.cookies.jar if c.name == COOKIE_NAME and c.path == "/console")


def _with_cookie(console: Console, value: str) -> ConsolePerson:
    """Another browser presenting ``value`` as its session cookie (a copy saved earlier)."""
    person = console.person()
    person.client.cookies.set(COOKIE_NAME, value, domain="127.0.0.1", path="/console")
    return person


def test_a_cookie_saved_before_signing_out_no_longer_signs_in(
    console: Console, caplog: pytest.LogCaptureFixture
) -> None:
    person = console.signed_in(OMAR)
    saved = _session_cookie(person)
    assert _with_cookie(console, saved).get("/console/").status == 200  # the copy works while signed in
    page = person.sign_out()
    assert "You are signed out." in page.text
    with caplog.at_level(logging.WARNING, logger=ACCESS_LOG):
        page = _with_cookie(console, saved).get("/console/prompts/greeter")
    assert page.status == 401
    assert "your session ended when you signed out: sign in again" in page.text
    assert "omar" not in page.text
    assert any("signed out" in r.getMessage() for r in caplog.records)
    # A form posted with the saved cookie (and a token of its page from before) changes nothing.
    console.push("greeter", "one {{ x }}")
    console.push("greeter", "two {{ x }}")
    console.start("greeter", 2)
    again = console.signed_in(OMAR)
    form = again.get("/console/prompts/greeter/rollout/confirm", action="pause").form(
        "/console/prompts/greeter/rollout/pause"
    )
    page = _with_cookie(console, saved).post(form.action, {**form.fields, "reason": "with the old cookie"})
    assert page.status == 401
    assert console.route("greeter")["state"] == "ramping"


def test_signing_out_on_one_replica_ends_the_session_on_the_other(tmp_path: Path) -> None:
    settings = console_settings(tmp_path)
    with (
        open_store(tmp_path / "shared.db") as registry,
        running_server(registry, settings) as first,
        running_server(registry, settings) as second,
        httpx.Client(timeout=30) as one,
        httpx.Client(timeout=30) as other,
    ):
        person = ConsolePerson(one, first)
        assert person.sign_in(OMAR.token).status == 200
        saved = _session_cookie(person)
        elsewhere = ConsolePerson(other, second)
        other.cookies.set(COOKIE_NAME, saved, domain="127.0.0.1", path="/console")
        assert elsewhere.get("/console/").status == 200  # the other replica reads the same session
        person.sign_out()
        page = elsewhere.get("/console/")
        assert page.status == 401
        assert "your session ended when you signed out" in page.text


def test_signing_in_prunes_the_sessions_ended_or_expired(console: Console) -> None:
    def rows() -> int:
        with console.registry.database.read() as conn:
            return int(conn.execute(select(func.count()).select_from(t.console_sessions)).scalar_one())

    first = console.signed_in(OMAR)
    first.sign_out()
    second = console.signed_in(SAM)
    assert rows() == 1  # the ended one was deleted when Sam signed in
    with console.registry.database.read() as conn:
        assert conn.execute(select(t.console_sessions.c.principal)).scalar_one() == "sam"
    assert second.get("/console/", environment="staging").status == 200


def _production_rollout(console: Console) -> str:
    console.push("greeter", "one {{ x }}")
    console.push("greeter", "two {{ x }}")
    console.start("greeter", 2, environment="production")
    rollout_id: str = console.route("greeter", "production")["rollout_id"]
    return rollout_id


def test_a_rollout_of_production_is_not_found_from_a_staging_page(console: Console) -> None:
    rollout_id = _production_rollout(console)
    sam = console.signed_in(SAM)  # operates staging only
    assert sam.get("/console/prompts/greeter/rollout", environment="production").status == 403
    for path, params in (
        ("/console/prompts/greeter/rollout", {}),
        ("/console/prompts/greeter/rollout/live", {}),
        ("/console/prompts/greeter/rollout/confirm", {"action": "pause"}),
    ):
        page = sam.get(path, environment="staging", rollout_id=rollout_id, **params)
        assert page.status == 404, (path, page.text)
        assert f"prompt 'greeter' has no rollout '{rollout_id}' in environment staging" in page.text
        assert "v1 → v2" not in page.text and "production" not in page.main
    # An action naming it from staging is not found either, and changes nothing.
    page = sam.get("/console/prompts/greeter", environment="staging")
    form = next(f for f in page.forms if "csrf_token" in f.fields)  # the session's token
    page = sam.post(
        "/console/prompts/greeter/rollout/pause?environment=staging",
        {"csrf_token": form.fields["csrf_token"], "reason": "from staging", "rollout_id": rollout_id},
    )
    assert page.status == 404, page.text
    assert console.route("greeter", "production")["state"] == "ramping"
    # Someone who may read production sees it there.
    omar = console.signed_in(OMAR)
    page = omar.get("/console/prompts/greeter/rollout", environment="production", rollout_id=rollout_id)
    assert page.status == 200 and rollout_id in page.text
