"""A console form posted without the console's session cookie is refused before its body is read.

Every form of the console, sign-in included, comes with a session cookie; a post without one is not
from a console page. Over a raw socket to the real server: the client asks ``Expect: 100-continue``
and sends no body, so a server that reads the body answers ``100 Continue`` first, and one that
refuses before reading answers the refusal at once.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from otel_prompt_canary.registry import SqlRegistry
from otel_prompt_canary.service import ServiceSettings
from otel_prompt_canary.service.console.session import COOKIE_NAME
from tests.support.auth import TOKEN
from tests.support.loopback import running_server


@pytest.fixture
def url(registry: SqlRegistry) -> Iterator[str]:
    settings = ServiceSettings(token=TOKEN, controller=False, read_timeout_seconds=60)
    with running_server(registry, settings) as base:
        yield base


def _first_answer(url: str, path: str, cookie: str | None) -> bytes:
    """The first line the server answers to a form post that waits for ``100 Continue``."""
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n"
        "Expect: 100-continue\r\n" + (f"Cookie: {COOKIE_NAME}={cookie}\r\n" if cookie else "") + "\r\n"
    )
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as conn:
        conn.sendall(head.encode())
        answer = b""
        while b"\r\n" not in answer:
            chunk = conn.recv(4096)
            if not chunk:
                break
            answer += chunk
    return answer.split(b"\r\n", 1)[0]


@pytest.mark.parametrize("path", ["/console/sign-in", "/console/prompts/greeter/rollout/rollback"])
def test_a_console_form_without_a_session_is_refused_unread(url: str, path: str) -> None:
    assert _first_answer(url, path, None) == b"HTTP/1.1 403 Forbidden"
    refused = httpx.post(f"{url}{path}", data={"token": TOKEN})
    assert refused.status_code == 403
    assert "posted without the console's session cookie" in refused.json()["error"]["message"]


def test_a_console_form_with_a_session_cookie_is_read_and_left_to_the_console(url: str) -> None:
    # Its body is read (the console then checks the session, the CSRF token and the origin).
    assert _first_answer(url, "/console/sign-in", "anything") == b"HTTP/1.1 100 Continue"
