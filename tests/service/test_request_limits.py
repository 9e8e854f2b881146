"""Request hygiene over real sockets: credentials before the body, deadlines, and the caps.

Each test speaks raw HTTP/1.1 where a client library would not misbehave the way an attacker does
(a body that stops half-way, headers that never end, connections that never send anything).
"""

from __future__ import annotations

import json
import select
import socket
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from otel_prompt_canary.registry import PromptSpec, SqlRegistry
from otel_prompt_canary.service import ServiceSettings
from tests.cli.cli_helpers import process_environment, serving
from tests.support.auth import AUTH, TOKEN
from tests.support.loopback import running_server
from tests.support.memory import peak_kib, resident_kib
from tests.support.waiting import eventually

SPEC = {"name": "greeter", "template": "Hello {{ name }}"}


def _connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    return socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=60)


def _read_answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """The status, headers (lower-case names) and body of the answer on ``sock``."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"the connection closed before an answer: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "the connection closed in the middle of the answer"
        body += chunk
    return int(lines[0].split()[1]), headers, body


def _closed(sock: socket.socket) -> bool:
    """Whether the server closed ``sock`` (after its answer)."""
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def _error_type(body: bytes) -> str:
    error_type: str = json.loads(body)["error"]["type"]
    return error_type


@contextmanager
def _server(registry: SqlRegistry, **limits: object) -> Iterator[str]:
    with running_server(registry, ServiceSettings(token=TOKEN, **limits)) as url:  # type: ignore[arg-type]
        yield url


def test_stalled_anonymous_bodies_are_refused_unread_and_hold_no_memory(tmp_path: Path) -> None:
    """300 connections each announce a 1 MiB body, send a quarter of it and stall, without
    credentials: each is answered 401 and closed, and the server does not keep what they sent."""
    started: list[subprocess.Popen[str]] = []
    env = process_environment(OTEL_PROMPT_CANARY_TOKEN=TOKEN)
    db = str(tmp_path / "stalled.db")
    with serving("--registry", db, "--read-timeout", "2", env=env, started=started) as (url, _):
        pid = started[0].pid
        before = resident_kib(pid)
        head = (
            b"POST /v1/prompts HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1048576\r\n\r\n"
        )
        with ExitStack() as stack:
            sockets = [stack.enter_context(_connect(url)) for _ in range(300)]
            for sock in sockets:
                sock.sendall(head + b"x" * (256 * 1024))
            for sock in sockets:
                status, headers, body = _read_answer(sock)
                assert status == 401, body
                assert _error_type(body) == "AuthenticationError"
                assert headers["connection"] == "close"
                assert _closed(sock)
        growth_mib = (peak_kib(pid) - before) / 1024
        # Before the guard checked credentials first, the same 300 connections held 307 MB (the
        # bodies, 300 MiB in all). The peak still counts what the event loop read off each socket
        # before its answer (up to one 256 KiB read each, ~60 MiB measured), then freed.
        assert growth_mib < 128, f"the server grew by {growth_mib:.0f} MiB"
        assert httpx.get(f"{url}/v1/prompts", timeout=30).json() == []


def test_a_stalled_body_is_cut_at_the_read_deadline(registry: SqlRegistry) -> None:
    with _server(registry, read_timeout_seconds=1) as url, _connect(url) as sock:
        sock.sendall(
            b"POST /v1/prompts HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {TOKEN}\r\nContent-Length: 100\r\n\r\n".encode()
            + b'{"name": "gr'
        )
        status, headers, body = _read_answer(sock)
        assert (status, _error_type(body)) == (408, "RequestTimeoutError")
        assert "did not arrive within 1 s" in json.loads(body)["error"]["message"]
        assert headers["connection"] == "close" and _closed(sock)
        assert httpx.get(f"{url}/v1/prompts").json() == []


def test_headers_that_never_end_are_cut_at_the_read_deadline(registry: SqlRegistry) -> None:
    with _server(registry, read_timeout_seconds=1) as url, _connect(url) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        status, _, body = _read_answer(sock)
        assert (status, _error_type(body)) == (408, "RequestTimeoutError")
        assert _closed(sock)


def test_an_anonymous_client_waiting_for_100_continue_is_answered_at_once(registry: SqlRegistry) -> None:
    with _server(registry) as url, _connect(url) as sock:
        sock.sendall(
            b"POST /v1/prompts HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 500000\r\nExpect: 100-continue\r\n\r\n"
        )
        status, headers, _ = _read_answer(sock)
        assert status == 401 and headers["www-authenticate"] == "Bearer"


def test_connections_beyond_the_cap_are_answered_503_with_retry_after(registry: SqlRegistry) -> None:
    with _server(registry, max_connections=6, max_long_polls=2, read_timeout_seconds=60) as url:
        with ExitStack() as stack:
            idle = [stack.enter_context(_connect(url)) for _ in range(6)]

            def refused() -> bool:
                answer = httpx.get(f"{url}/healthz", timeout=30)
                if answer.status_code != 503:
                    return False
                assert answer.headers["Retry-After"] == "1"
                assert answer.json()["error"]["type"] == "CapacityError"
                return True

            eventually(refused, timeout=30, what="a connection over the cap answered 503")
            assert len(idle) == 6
        eventually(
            lambda: httpx.get(f"{url}/healthz", timeout=30).status_code == 200,
            timeout=30,
            what="connections accepted again once the idle ones closed",
        )


def test_long_polls_beyond_the_cap_are_answered_503_while_plain_reads_go_on(registry: SqlRegistry) -> None:
    with _server(registry, max_long_polls=2) as url, httpx.Client(base_url=url, timeout=60) as http:
        assert http.post("/v1/prompts", json=SPEC, headers=AUTH).status_code == 201
        etag = http.get("/v1/routes").headers["ETag"]
        request = (
            f"GET /v1/routes?wait=30 HTTP/1.1\r\nHost: 127.0.0.1\r\nIf-None-Match: {etag}\r\n\r\n"
        ).encode()
        with ExitStack() as stack:
            polls = [stack.enter_context(_connect(url)) for _ in range(3)]
            for sock in polls:
                sock.sendall(request)
            # Two park; whichever arrives third is answered at once.
            answered, _, _ = select.select(polls, [], [], 60)
            assert len(answered) == 1, "one long-poll, and only one, is refused"
            status, headers, body = _read_answer(answered[0])
            assert (status, headers["retry-after"], _error_type(body)) == (503, "1", "CapacityError")
            parked = [sock for sock in polls if sock is not answered[0]]
            assert http.get("/v1/routes", headers={"If-None-Match": etag}).status_code == 304
            other = {"name": "other", "template": "Bye {{ name }}"}
            assert http.post("/v1/prompts", json=other, headers=AUTH).status_code == 201
            for sock in parked:  # a new route: both parked polls answer
                assert _read_answer(sock)[0] == 200
        new_etag = http.get("/v1/routes").headers["ETag"]
        again = http.get("/v1/routes", params={"wait": 1}, headers={"If-None-Match": new_etag})
        assert again.status_code == 304


@pytest.mark.parametrize("store_backend", ["postgres"])  # a read blocked by a lock needs PostgreSQL
def test_a_request_over_its_deadline_is_answered_503(registry: SqlRegistry, store_target: str) -> None:
    import psycopg

    registry.push(PromptSpec.model_validate(SPEC))
    with _server(registry, request_timeout_seconds=1) as url, httpx.Client(base_url=url, timeout=60) as http:
        with psycopg.connect(store_target.replace("+psycopg", "")) as conn:
            conn.execute("LOCK TABLE prompt_versions IN ACCESS EXCLUSIVE MODE")
            answer = http.get("/v1/prompts")
            assert answer.status_code == 503, answer.text
            assert answer.headers["Retry-After"] == "1"
            assert answer.json()["error"]["type"] == "RequestTimeoutError"
            conn.rollback()  # the lock goes; the blocked read finishes in its thread
        eventually(lambda: http.get("/v1/prompts").status_code == 200, what="reads served again")
        assert [p["name"] for p in http.get("/v1/prompts").json()] == ["greeter"]
