"""Signing in and out of the console, and the session cookie: signed, expiring, HttpOnly,
SameSite=Strict, Secure off loopback; forged and expired sessions go back to the sign-in form."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from otel_prompt_canary.registry.sql import open_store
from otel_prompt_canary.service.app import create_app
from otel_prompt_canary.service.console.session import COOKIE_NAME, SESSION_SECONDS, Session, SessionKeeper
from otel_prompt_canary.service.principals import Principal, Role
from otel_prompt_canary.service.settings import ServiceSettings
from tests.console.console_client import Page
from tests.console.console_fixtures import OMAR, RHEA, Console, console_settings
from tests.support.auth import REPORT_TOKEN, TOKEN

ACCESS_LOG = "otel_prompt_canary.service.access"


def test_the_root_leads_to_the_sign_in_form(console: Console) -> None:
    person = console.person()
    page = person.get("/")
    assert page.status == 401
    assert str(page.response.url) == f"{console.url}/console/"
    assert "Sign in" in page.text
    form = page.form("/console/sign-in")
    assert form.method == "post"
    assert set(form.fields) == {"csrf_token", "next", "token"}
    assert form.fields["token"] == ""


def test_signing_in_opens_the_console_as_the_principal_and_signing_out_closes_it(console: Console) -> None:
    person = console.person()
    page = person.sign_in(OMAR.token)
    assert page.status == 200
    assert page.main.startswith("Prompts")
    assert "omar" in page.text and "Sign out" in page.text
    # The token travels in the form's body only: no URL the browser visited holds it.
    visited = [str(r.url) for r in page.response.history] + [str(page.response.url)]
    assert all(OMAR.token not in url for url in visited)

    cookie = next(c for c in person.client.cookies.jar if c.name == COOKIE_NAME)
    assert OMAR.token not in cookie.value
    assert cookie.path == "/console"
    assert not cookie.secure  # plain http on loopback
    assert cookie.has_nonstandard_attr("HttpOnly")

    page = person.sign_out()
    assert page.status == 200
    assert "You are signed out." in page.text
    assert person.get("/console/").status == 401


def test_the_cookie_is_http_only_strict_and_expires(console: Console) -> None:
    person = console.person()
    form_page = person.get("/console/sign-in")
    form = form_page.form("/console/sign-in")
    response = person.client.post(
        f"{console.url}/console/sign-in",
        data={**form.fields, "token": OMAR.token},
        headers={"Origin": console.url},
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/console/"
    header = response.headers["set-cookie"]
    attributes = {part.strip().split("=")[0].lower() for part in header.split(";")[1:]}
    assert {"httponly", "path", "samesite", "max-age"} <= attributes
    assert "samesite=strict" in header.lower()
    assert f"max-age={SESSION_SECONDS}" in header.lower()
    assert "secure" not in attributes


@pytest.mark.parametrize(
    ("base_url", "insecure_dev", "secure"),
    [
        ("http://canary.example.com", False, True),  # plain http off loopback: only https may carry it
        ("https://canary.example.com", False, True),
        ("http://127.0.0.1", False, False),
        ("http://canary.example.com", True, False),  # a development service on plain http
    ],
)
def test_the_cookie_is_secure_unless_on_loopback_or_development_http(
    tmp_path: Path, base_url: str, insecure_dev: bool, secure: bool
) -> None:
    settings = ServiceSettings(token=TOKEN, insecure_dev=insecure_dev)
    with (
        open_store(tmp_path / "r.db") as registry,
        TestClient(create_app(registry, settings), base_url=base_url) as client,
    ):
        # The sign-in form's own (anonymous) session cookie carries the same attributes.
        response = client.get("/console/sign-in")
        attributes = [p.strip().lower() for p in response.headers["set-cookie"].split(";")]
        assert ("secure" in attributes) is secure
        assert "httponly" in attributes
        assert "samesite=strict" in attributes


def test_a_wrong_credential_is_refused_and_logged(console: Console, caplog: pytest.LogCaptureFixture) -> None:
    person = console.person()
    with caplog.at_level(logging.WARNING, logger=ACCESS_LOG):
        page = person.sign_in("not-a-token-of-this-control-plane")
    assert page.status == 401
    assert "that credential is not one of this control plane's" in page.text
    assert person.get("/console/").status == 401
    assert any("unknown credential" in r.getMessage() for r in caplog.records)


def test_a_credential_without_a_reading_role_cannot_use_the_console(console: Console) -> None:
    page = console.person().sign_in(REPORT_TOKEN)
    assert page.status == 403
    assert "principal 'reporter' may not use the console: that needs the role 'read'" in page.text


def test_a_reader_signs_in(console: Console) -> None:
    page = console.person().sign_in(RHEA.token)
    assert page.status == 200
    assert "rhea" in page.text


def test_a_forged_session_goes_back_to_the_sign_in_form(
    console: Console, caplog: pytest.LogCaptureFixture
) -> None:
    person = console.signed_in(OMAR)
    cookie = next(c for c in person.client.cookies.jar if c.name == COOKIE_NAME)
    # Another principal's name with the old signature: the signature no longer matches.
    forged = SessionKeeper(ServiceSettings(token="another-token-0123456789abcdef"))
    request_cookie = forged_cookie(forged, Principal("omar", frozenset({Role.ADMIN})))
    person.client.cookies.clear()
    person.client.cookies.set(COOKIE_NAME, request_cookie, domain=cookie.domain, path="/console")
    with caplog.at_level(logging.WARNING, logger=ACCESS_LOG):
        page = person.get("/console/")
    assert page.status == 401
    assert "your session was not valid (forged or from another server): sign in again" in page.text
    assert any("forged" in r.getMessage() for r in caplog.records)

    # A cookie altered by a byte is forged too.
    person.client.cookies.clear()
    altered = cookie.value[:-2] + ("A" if cookie.value[-2] != "A" else "B") + cookie.value[-1]
    person.client.cookies.set(COOKIE_NAME, altered, domain=cookie.domain, path="/console")
    page = person.get("/console/")
    assert page.status == 401
    assert "not valid" in page.text


def test_an_expired_session_goes_back_to_the_sign_in_form(console: Console, tmp_path: Path) -> None:
    person = console.signed_in(OMAR)
    cookie = next(c for c in person.client.cookies.jar if c.name == COOKIE_NAME)
    keeper = SessionKeeper(console_settings(tmp_path))
    old = Session(
        id="s1",
        principal=Principal("omar", frozenset({Role.OPERATE})),
        issued_at=time.time() - SESSION_SECONDS - 5,
    )
    person.client.cookies.clear()
    person.client.cookies.set(COOKIE_NAME, dump(keeper, old), domain=cookie.domain, path="/console")
    page = person.get("/console/prompts/x")
    assert page.status == 401
    assert "your session expired: sign in again" in page.text
    # Signing in again goes back where the person was going.
    assert page.form("/console/sign-in").fields["next"] == "/console/prompts/x"


def test_a_fresh_session_of_the_same_key_is_accepted(console: Console, tmp_path: Path) -> None:
    # The check above fails for the session's age, not for its signature: the same key, fresh, passes.
    person = console.person()
    keeper = SessionKeeper(console_settings(tmp_path))
    fresh = Session(id="s2", principal=Principal("omar", frozenset({Role.OPERATE})), issued_at=time.time())
    person.client.cookies.set(COOKIE_NAME, dump(keeper, fresh), domain="127.0.0.1", path="/console")
    page = person.get("/console/")
    assert page.status == 200
    assert "omar" in page.text


def test_signing_in_without_the_forms_session_is_refused(console: Console) -> None:
    person = console.person()
    form = person.get("/console/sign-in").form("/console/sign-in")
    person.client.cookies.clear()  # cookies off, or the form's session expired
    page = person.post("/console/sign-in", {**form.fields, "token": TOKEN})
    assert page.status == 403
    assert "the sign-in form expired (or cookies are off)" in page.text


def test_the_sign_in_form_refuses_a_cross_site_post(console: Console) -> None:
    person = console.person()
    form = person.get("/console/sign-in").form("/console/sign-in")
    page = person.post("/console/sign-in", {**form.fields, "token": TOKEN}, origin="https://evil.example")
    assert page.status == 403
    assert "the form was posted from another site (https://evil.example)" in page.text
    assert person.get("/console/").status == 401


def test_after_signing_in_the_person_goes_where_they_were_going_but_never_off_site(console: Console) -> None:
    person = console.person()
    form = person.get("/console/sign-in", next="/console/audit").form("/console/sign-in")
    assert form.fields["next"] == "/console/audit"
    page = person.submit(
        Page.of(person.client.get(f"{console.url}/console/sign-in?next=/console/audit")),
        "/console/sign-in",
        token=TOKEN,
    )
    assert str(page.response.url).startswith(f"{console.url}/console/audit")
    other = console.person()
    elsewhere = other.get("/console/sign-in", next="//evil.example/")
    assert elsewhere.form("/console/sign-in").fields["next"] == "/console/"


def forged_cookie(keeper: SessionKeeper, principal: Principal) -> str:
    return dump(keeper, Session(id="forged", principal=principal, issued_at=time.time()))


def dump(keeper: SessionKeeper, session: Session) -> str:
    """A cookie ``keeper`` would set for ``session`` (read back from the response it sets it on)."""
    from starlette.requests import Request
    from starlette.responses import Response

    scope = {"type": "http", "scheme": "http", "server": ("127.0.0.1", 80), "path": "/", "headers": []}
    response = Response()
    keeper.store(Request(scope), response, session)
    header = response.headers["set-cookie"]
    return header.split(";")[0].split("=", 1)[1]
