"""Signing in and out of the console, and its cookies: signed, expiring, HttpOnly, Secure off
loopback, the signed-in session's SameSite=Lax and kept by the control plane, the sign-in form's
apart from it; forged, expired and signed-out sessions go back to the sign-in form."""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from otel_prompt_canary.registry import schema as t
from otel_prompt_canary.registry.console_sessions import ConsoleSessions, StoredSession
from otel_prompt_canary.registry.sql import open_store
from otel_prompt_canary.service.app import create_app
from otel_prompt_canary.service.console.session import COOKIE_NAME, SESSION_SECONDS, SessionKeeper
from otel_prompt_canary.service.principals import token_digest
from otel_prompt_canary.service.settings import ServiceSettings
from tests.console.console_client import ConsolePerson, Page, people_file
from tests.console.console_fixtures import OMAR, RHEA, SAM, Console, Someone, console_settings
from tests.support.auth import REPORT_TOKEN, TOKEN
from tests.support.loopback import running_server

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


def test_the_session_cookie_is_http_only_lax_and_expires_and_replaces_the_forms(console: Console) -> None:
    person = console.person()
    form_page = person.get("/console/sign-in")
    form_cookie = form_page.response.headers["set-cookie"].lower()
    assert "path=/console/sign-in" in form_cookie and "samesite=strict" in form_cookie
    form = form_page.form("/console/sign-in")
    response = person.client.post(
        f"{console.url}/console/sign-in",
        data={**form.fields, "token": OMAR.token},
        headers={"Origin": console.url},
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/console/"
    session, removed = response.headers.get_list("set-cookie")
    attributes = {part.strip().split("=")[0].lower() for part in session.split(";")[1:]}
    assert {"httponly", "path", "samesite", "max-age"} <= attributes
    # Lax: a link from another site opens the console signed in (forms still need their token).
    assert "samesite=lax" in session.lower() and "path=/console;" in session.lower() + ";"
    assert f"max-age={SESSION_SECONDS}" in session.lower()
    assert "secure" not in attributes
    # The sign-in form's own cookie is removed, on its path only.
    assert "max-age=0" in removed.lower() and "path=/console/sign-in" in removed.lower()


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
        if secure and base_url.startswith("http:"):
            return  # the client keeps a Secure cookie off plain http: there is no signing in here
        # The signed-in session's cookie too.
        form = Page.of(response).form("/console/sign-in")
        response = client.post(
            "/console/sign-in",
            data={**form.fields, "token": TOKEN},
            headers={"Origin": base_url},
            follow_redirects=False,
        )
        assert response.status_code == 303, response.text
        session = response.headers.get_list("set-cookie")[0]
        attributes = [p.strip().lower() for p in session.split(";")]
        assert ("secure" in attributes) is secure
        assert "httponly" in attributes and "samesite=lax" in attributes


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
    cookie = session_cookie(person)
    # The id of a real session signed with another key: the signature does not match.
    forged = SessionKeeper(ServiceSettings(token="another-token-0123456789abcdef"))
    replace_cookie(person, forged.cookie_for(stored_session(console, OMAR)))
    with caplog.at_level(logging.WARNING, logger=ACCESS_LOG):
        page = person.get("/console/")
    assert page.status == 401
    assert "your session was not valid (forged or from another server): sign in again" in page.text
    assert any("forged" in r.getMessage() for r in caplog.records)

    # A cookie altered by a byte is forged too.
    replace_cookie(person, cookie[:-2] + ("A" if cookie[-2] != "A" else "B") + cookie[-1])
    page = person.get("/console/")
    assert page.status == 401
    assert "not valid" in page.text


def test_an_expired_session_goes_back_to_the_sign_in_form(console: Console) -> None:
    person = console.signed_in(OMAR)
    assert person.get("/console/prompts/x").status == 404  # signed in: the page of no prompt
    with console.registry.database.transaction() as conn:
        conn.execute(update(t.console_sessions).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    page = person.get("/console/prompts/x")
    assert page.status == 401
    assert "your session expired: sign in again" in page.text
    # Signing in again goes back where the person was going.
    assert page.form("/console/sign-in").fields["next"] == "/console/prompts/x"


def test_a_session_stored_by_another_replica_is_accepted(console: Console, tmp_path: Path) -> None:
    # A session opened by another replica (same database, same write token): its cookie works here.
    keeper = SessionKeeper(console_settings(tmp_path), console.registry)
    session_id = stored_session(console, OMAR, fingerprint=keeper.fingerprint(token_digest(OMAR.token)))
    person = console.person()
    person.client.cookies.set(COOKIE_NAME, keeper.cookie_for(session_id), domain="127.0.0.1", path="/console")
    page = person.get("/console/")
    assert page.status == 200
    assert "omar" in page.text
    # The same cookie for an id the database does not hold is refused: the row is what signs in.
    stranger = console.person()
    stranger.client.cookies.set(COOKIE_NAME, keeper.cookie_for("no-such-session"), domain="127.0.0.1")
    page = stranger.get("/console/")
    assert page.status == 401
    assert "your session has ended (signed out or expired): sign in again" in page.text


def test_a_session_without_its_credential_is_refused(console: Console, tmp_path: Path) -> None:
    # A session stored bound to no credential (or to a token no one holds) names a principal the
    # service cannot vouch for now.
    keeper = SessionKeeper(console_settings(tmp_path), console.registry)
    for fingerprint in (None, keeper.fingerprint(token_digest("a-token-no-one-holds-0123456789"))):
        person = console.person()
        session_id = stored_session(console, OMAR, fingerprint=fingerprint)
        person.client.cookies.set(
            COOKIE_NAME, keeper.cookie_for(session_id), domain="127.0.0.1", path="/console"
        )
        page = person.get("/console/")
        assert page.status == 401
        assert "your credential is no longer valid" in page.text


def _people(folder: Path, *people: dict[str, object]) -> Path:
    folder.mkdir()
    path: Path = people_file(folder, list(people))
    return path


_OMAR = {"principal": "omar", "token": OMAR.token, "roles": ["operate"]}
_SAM = {"principal": "sam", "token": SAM.token, "roles": ["operate"], "environments": ["staging"]}
_RHEA = {"principal": "rhea", "token": RHEA.token, "roles": ["read"]}


@pytest.mark.parametrize(
    ("who", "after", "why"),
    [
        # The credential removed from the file.
        (OMAR, [_RHEA], "your credential is no longer valid (removed or replaced): sign in again"),
        # Its roles changed.
        (OMAR, [_RHEA, _OMAR | {"roles": ["read"]}], "your credential's principal, roles or environments"),
        # Its environments changed.
        (SAM, [_RHEA, _SAM | {"environments": ["production"]}], "roles or environments changed"),
        # Its token now speaks for someone else.
        (OMAR, [_RHEA, _OMAR | {"principal": "omar-2"}], "roles or environments changed"),
    ],
)
def test_a_session_ends_as_soon_as_its_credential_is_removed_or_changes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, who: Someone, after: list[dict[str, object]], why: str
) -> None:
    # The credentials file is read at start-up (the API's and the console's alike): the service
    # restarts with the new file; the session cookie of before (same write token, same key)
    # comes back on the very next request.
    before = _people(tmp_path / "before", _OMAR, _SAM, _RHEA)
    changed = _people(tmp_path / "after", *after)
    token = who.token
    with open_store(tmp_path / "r.db") as registry, httpx.Client(timeout=30) as client:
        with running_server(registry, console_settings(tmp_path, credentials_file=before)) as url:
            person = ConsolePerson(client, url)
            assert person.sign_in(token).status == 200
        # Restarted with the same file: the session goes on.
        with running_server(registry, console_settings(tmp_path, credentials_file=before)) as url:
            person = ConsolePerson(client, url)
            assert person.get("/console/audit", environment="staging").status == 200
        with running_server(registry, console_settings(tmp_path, credentials_file=changed)) as url:
            person = ConsolePerson(client, url)
            with caplog.at_level(logging.WARNING, logger=ACCESS_LOG):
                page = person.get("/console/audit", environment="staging")
            assert page.status == 401
            assert "Sign in" in page.text and why in page.text
            # Signing in again goes back to the page, in its environment.
            assert page.form("/console/sign-in").fields["next"] == "/console/audit?environment=staging"
            refusals = [r.getMessage() for r in caplog.records if r.name == ACCESS_LOG]
            assert any(f"session of {who.principal!r} ended" in m for m in refusals), refusals


def test_signing_in_again_after_a_change_gives_the_new_roles(tmp_path: Path) -> None:
    before = _people(tmp_path / "before", _OMAR, _RHEA)
    changed = _people(tmp_path / "after", _RHEA, _OMAR | {"roles": ["read"]})
    with open_store(tmp_path / "r.db") as registry, httpx.Client(timeout=30) as client:
        with running_server(registry, console_settings(tmp_path, credentials_file=before)) as url:
            assert ConsolePerson(client, url).sign_in(OMAR.token).status == 200
        with running_server(registry, console_settings(tmp_path, credentials_file=changed)) as url:
            person = ConsolePerson(client, url)
            assert person.get("/console/").status == 401
            page = person.sign_in(OMAR.token)
            assert page.status == 200
            assert 'title="read"' in page.html  # the header names the roles held now


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


def session_cookie(person: ConsolePerson) -> str:
    """The signed-in session's cookie of ``person``."""
    return next(c.value for c in person.client.cookies.jar if c.name == COOKIE_NAME and c.path == "/console")


def replace_cookie(person: ConsolePerson, value: str) -> None:
    person.client.cookies.clear()
    person.client.cookies.set(COOKIE_NAME, value, domain="127.0.0.1", path="/console")


def stored_session(console: Console, who: Someone, *, fingerprint: str | None = "unused") -> str:
    """The id of a session of ``who`` stored in the console's database (as another replica would)."""
    session_id = secrets.token_urlsafe(32)
    ConsoleSessions(console.registry.database).open(
        StoredSession.signed_in(
            session_id, who.principal, who.roles, who.environments, credential=fingerprint, lasts=3600
        )
    )
    return session_id
