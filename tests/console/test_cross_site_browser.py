"""A link from another site opens the console signed in, in headless Chromium: the signed-in
session's cookie is ``SameSite=Lax`` (a browser sends it on a top-level navigation from elsewhere),
and the sign-in form's cookie lives apart from it, so a page served without the session never
replaces it (a forced sign-out by any cross-site link, before)."""

from __future__ import annotations

from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlsplit

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.console.console_fixtures import OMAR, Console
from tests.support.browser import field, page_text, wait_for, wait_for_text
from tests.support.loopback import http_server


@pytest.fixture
def elsewhere(console: Console) -> Iterator[str]:
    """A page of another site (``localhost``, not the console's ``127.0.0.1``) linking to the console."""
    target = f"{console.url}/console/prompts/greeter"

    class Links(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = f'<html><body><a id="go" href="{target}">the greeter prompt</a></body></html>'.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    with http_server(Links) as url:
        yield url.replace("127.0.0.1", "localhost")


def _signed_in_as(browser: WebDriver, principal: str) -> bool:
    text = page_text(browser)
    return "Sign out" in text and principal in text and "Sign in with a credential" not in text


def test_a_link_from_another_site_keeps_the_person_signed_in(
    browser: WebDriver, console: Console, elsewhere: str
) -> None:
    console.push("greeter", "Greet {{ name }}.")
    assert urlsplit(elsewhere).hostname != urlsplit(console.url).hostname  # two sites
    browser.get(f"{console.url}/console/sign-in")
    wait_for_text(browser, "Sign in with a credential")
    field(browser, "token").send_keys(OMAR.token)
    browser.find_element(By.CSS_SELECTOR, "form[action='/console/sign-in'] button[type=submit]").click()
    wait_for(browser, lambda: _signed_in_as(browser, "omar"), what="omar signed in")

    # A person follows a link to the console from a page of another site.
    browser.get(elsewhere)
    browser.find_element(By.ID, "go").click()
    wait_for(browser, lambda: browser.current_url.startswith(console.url), what="the console's page")
    wait_for_text(browser, "greeter")
    assert _signed_in_as(browser, "omar"), page_text(browser)[:2000]
    # And the session is still there afterwards, when the person types the console's address.
    browser.get(f"{console.url}/console/")
    wait_for_text(browser, "Prompts")
    assert _signed_in_as(browser, "omar"), page_text(browser)[:2000]
