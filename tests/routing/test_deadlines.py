"""Deadlines and the size cap: a control plane (or a proxy) that drips its answers, or answers with a
body that never ends, costs the router one deadline, or ``max_answer_bytes`` of memory, and never
freezes it.

Every server is real and on loopback: small ``http.server`` handlers for the client, the fake
control plane of :mod:`tests.routing.fakes` for the router. No test here measures how long anything
took: each asserts how a request ended and what the router did next.
"""

from __future__ import annotations

import gzip
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from otel_prompt_canary.errors import RegistryUnavailableError
from otel_prompt_canary.registry.models import RolloutState
from otel_prompt_canary.routing import PromptRouter
from otel_prompt_canary.routing.control_plane import DEFAULT_MAX_ANSWER_BYTES, ControlPlaneClient
from tests.routing.fakes import FakeControlPlane, ramping, rolled_back, route, version
from tests.support.loopback import http_server
from tests.support.waiting import eventually

KEYS = [f"user-{i}" for i in range(2000)]
MiB = 1024 * 1024


class _Server(BaseHTTPRequestHandler):
    """A handler whose answers a test writes byte by byte; it counts what it sent."""

    protocol_version = "HTTP/1.1"
    sent: list[int]
    stop: threading.Event

    def send_slowly(self, data: bytes, every: float) -> None:
        for i in range(len(data)):
            if self.stop.is_set():
                return
            try:
                self.wfile.write(data[i : i + 1])
                self.wfile.flush()
            except OSError:  # the client went away: what it is supposed to do
                return
            self.sent[0] += 1
            time.sleep(every)

    def send_all(self, data: bytes, *, then: bytes = b"", times: int = 0) -> None:
        """Send ``data``, then ``then`` ``times`` times (a long body, made as it goes)."""
        try:
            for i in range(0, len(data), 65536):
                if self.stop.is_set():
                    return
                self.wfile.write(data[i : i + 65536])
                self.sent[0] += min(65536, len(data) - i)
            for _ in range(times):
                if self.stop.is_set():
                    return
                self.wfile.write(then)
                self.sent[0] += len(then)
        except OSError:  # the client went away
            return

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serving(answer: Callable[[_Server], None]) -> Iterator[tuple[str, list[int]]]:
    """Serve ``answer(handler)`` for every GET on 127.0.0.1; yields (base URL, [bytes sent])."""

    class Handler(_Server):
        def do_GET(self) -> None:
            answer(self)

    Handler.sent, Handler.stop = [0], threading.Event()
    try:
        with http_server(Handler, name="misbehaving server") as url:
            yield url, Handler.sent
    finally:
        Handler.stop.set()  # ends a drip still running


HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"


# -- the client --------------------------------------------------------------------------------------


#: How a dripped request ends: at its deadline. (Only a server thread starved for longer than the
#: read timeout, on a very busy machine, could make a single read time out first.)
CUT_OFF = r"did not answer in time \((Deadline: no complete answer within 1 s|ReadTimeout)\)"


def test_a_body_dripped_a_byte_at_a_time_ends_at_the_deadline() -> None:
    # One byte every 50 ms: every read gets data long before its 1 s timeout; without a total
    # deadline the request would last 100,000 x 50 ms.
    def dripped(handler: _Server) -> None:
        handler.send_all(HEAD)
        handler.send_slowly(b"x" * 100_000, every=0.05)

    with serving(dripped) as (url, sent):
        with pytest.raises(RegistryUnavailableError, match=CUT_OFF):
            ControlPlaneClient(url, timeout=1).request("GET", "/v1/routes")
        assert sent[0] < len(HEAD) + 100_000  # cut off while the server was still sending


def test_headers_dripped_a_byte_at_a_time_end_at_the_deadline() -> None:
    with serving(lambda h: h.send_slowly(HEAD, every=0.05)) as (url, sent):
        with pytest.raises(RegistryUnavailableError, match=CUT_OFF):
            ControlPlaneClient(url, timeout=1).request("GET", "/v1/routes")
        assert sent[0] < len(HEAD)


def test_a_long_poll_has_its_wait_on_top_of_the_deadline() -> None:
    def held(handler: _Server) -> None:
        time.sleep(1.5)  # longer than the timeout, well within timeout + long_poll
        handler.send_all(b'HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n{"ok": true}')

    with serving(held) as (url, _):
        client = ControlPlaneClient(url, timeout=1)
        assert client.request("GET", "/v1/routes", long_poll=60).data == {"ok": True}


def test_a_connection_back_in_the_pool_outlives_the_deadline_of_the_request_it_served() -> None:
    peers: list[int] = []

    def answer(handler: _Server) -> None:
        peers.append(handler.client_address[1])
        handler.send_all(b'HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n{"ok": true}')

    with serving(answer) as (url, _):
        client = ControlPlaneClient(url, timeout=0.3)
        assert client.request("GET", "/a").data == {"ok": True}
        time.sleep(0.6)  # past the first request's deadline
        assert client.request("GET", "/b").data == {"ok": True}
        client.close()
    assert len(peers) == 2 and peers[0] == peers[1]  # one connection, kept open, reused


def _peak_of(call: Callable[[], object]) -> tuple[int, BaseException | None]:
    """The peak of Python memory allocated while ``call()`` ran, and what it raised."""
    tracemalloc.start()
    try:
        call()
    except BaseException as exc:
        raised: BaseException | None = exc
    else:
        raised = None
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak, raised


def test_a_body_without_end_is_refused_at_the_cap_holding_no_more() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
    with serving(lambda h: h.send_all(head + b"[", then=b"1," * 32768, times=1024)) as (url, sent):
        client = ControlPlaneClient(url, max_answer_bytes=MiB)
        peak, raised = _peak_of(lambda: client.request("GET", "/v1/routes"))
        assert isinstance(raised, RegistryUnavailableError)
        assert f"answered GET /v1/routes with more than {MiB} bytes" in str(raised)
        assert "max_answer_bytes" in str(raised)
        assert peak < 4 * MiB  # the cap and a chunk, not the 64 MiB the server had to send
        client.close()
    assert sent[0] < 64 * MiB  # the client hung up long before the end


def test_a_declared_length_over_the_cap_is_refused_before_reading() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 300000000\r\n\r\n"
    with (
        serving(lambda h: h.send_all(head + b"[", then=b"1," * 32768, times=4096)) as (url, sent),
        pytest.raises(RegistryUnavailableError, match=r"\(Content-Length: 300000000\)"),
    ):
        ControlPlaneClient(url).request("GET", "/v1/routes")
    assert sent[0] < 300_000_000
    assert DEFAULT_MAX_ANSWER_BYTES < 300_000_000


def test_the_cap_counts_decompressed_bytes() -> None:
    bomb = gzip.compress(b"[" + b" " * (48 * MiB) + b"]")  # about 50 KB on the wire
    head = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(bomb)
    with serving(lambda h: h.send_all(head + bomb)) as (url, _):
        client = ControlPlaneClient(url, max_answer_bytes=MiB)
        peak, raised = _peak_of(lambda: client.request("GET", "/v1/routes"))
        assert isinstance(raised, RegistryUnavailableError)
        assert "more than 1048576 bytes" in str(raised)
        assert peak < 4 * MiB
        client.close()


@pytest.mark.parametrize("size", [0, -1, 1.5, True])
def test_a_cap_that_is_not_a_positive_integer_is_refused(size: Any) -> None:
    with pytest.raises(ValueError, match="max_answer_bytes must be a positive integer"):
        ControlPlaneClient("http://127.0.0.1:1", max_answer_bytes=size)


# -- the router --------------------------------------------------------------------------------------


def _cohorts(router: PromptRouter) -> set[str]:
    return {router.select("p", k).cohort for k in KEYS}


@pytest.fixture
def rollout(control_plane: FakeControlPlane) -> FakeControlPlane:
    control_plane.add_versions(version("p", 1), version("p", 2))
    control_plane.set_routes(ramping("p", "ro_1", 5000))
    return control_plane


def test_a_dripping_control_plane_costs_one_deadline_and_the_rollback_comes_with_the_next_answer(
    rollout: FakeControlPlane, make_router: Callable[..., PromptRouter]
) -> None:
    router = make_router(rollout.url, long_poll_wait=1, timeout=1)
    assert _cohorts(router) == {"stable", "canary"}
    rollout.drip_seconds = 0.05  # every answer dripped: each read gets a byte, none times out
    rollout.set_routes(rolled_back("p", "ro_1"))
    eventually(
        lambda: "(Deadline: no complete answer within 2 s)" in (router.status().last_error or ""),
        what="the dripped long poll ending at its deadline",
    )
    assert router.route("p").state is RolloutState.RAMPING  # type: ignore[union-attr]
    assert _cohorts(router) == {"stable", "canary"}  # the last known state, while it cannot read

    # The control plane answers again: the next answer carries the rollback.
    rollout.drip_seconds = None
    eventually(lambda: "ro_1" in router.status().rolled_back, timeout=30, what="the rollback")
    assert _cohorts(router) == {"stable"}
    eventually(lambda: router.status().last_error is None)
    answers = rollout.route_answers
    last_dripped = max(i for i, a in enumerate(answers) if a.startswith("dripped "))
    # No failure and no wait in between: the first answer after the last dripped one had it.
    assert answers[last_dripped + 1].startswith("200 "), answers


def test_an_endless_routes_body_is_refused_and_the_router_keeps_its_state(
    rollout: FakeControlPlane, make_router: Callable[..., PromptRouter]
) -> None:
    router = make_router(rollout.url, long_poll_wait=1, max_answer_bytes=MiB)
    assert _cohorts(router) == {"stable", "canary"}
    rollout.endless = True
    rollout.set_routes(rolled_back("p", "ro_1"))  # wakes the parked long poll: it gets the endless body
    eventually(
        lambda: "max_answer_bytes" in (router.status().last_error or ""), what="the body refused at the cap"
    )
    assert f"GET /v1/routes with more than {MiB} bytes" in (router.status().last_error or "")
    assert _cohorts(router) == {"stable", "canary"}
    rollout.endless = False
    eventually(lambda: "ro_1" in router.status().rolled_back, timeout=30, what="the rollback")
    assert _cohorts(router) == {"stable"}
    eventually(lambda: router.status().last_error is None)


def test_a_route_not_applied_in_full_shows_in_last_error(
    control_plane: FakeControlPlane, make_router: Callable[..., PromptRouter]
) -> None:
    control_plane.add_versions(version("p", 1))
    control_plane.set_routes(ramping("p", "ro_1", 5000))  # version 2 is not served yet
    router = make_router(control_plane.url, long_poll_wait=5, initial_timeout=0, fallbacks={"p": "fb"})
    eventually(lambda: router.status().ready)
    eventually(lambda: "cannot apply the route of 'p' yet" in (router.status().last_error or ""))
    assert "no version p@2" in (router.status().last_error or "")
    control_plane.add_versions(version("p", 2))
    eventually(lambda: router.select("p", "u1").rollout_id == "ro_1")
    eventually(lambda: router.status().last_error is None, diagnostics=lambda: str(router.status()))


def test_a_malformed_route_shows_in_last_error(
    control_plane: FakeControlPlane, make_router: Callable[..., PromptRouter]
) -> None:
    control_plane.add_versions(version("p", 1), version("q", 1))
    control_plane.set_routes(ramping("p", "ro_1", 5000), route("q"))

    def rewrite(body: dict[str, Any]) -> dict[str, Any]:
        body["routes"][0] = {"prompt": "p", "canary_weight_bp": "lots"}
        return body

    control_plane.rewrite_body = rewrite
    router = make_router(control_plane.url, long_poll_wait=1, fallbacks={"p": "fallback"})
    assert router.select("p").version == 0
    assert "ignored a malformed route of 'p'" in (router.status().last_error or "")
    control_plane.rewrite_body = None
    control_plane.add_versions(version("p", 2))
    control_plane.set_routes(ramping("p", "ro_1", 5000, revision=3))
    eventually(lambda: router.select("p", "u1").rollout_id == "ro_1")
    eventually(lambda: router.status().last_error is None, diagnostics=lambda: str(router.status()))
