"""The control plane on a real uvicorn server (127.0.0.1, ephemeral port): the routes long-poll,
several replicas on one store, and :class:`RemoteRegistry` end to end."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from otel_prompt_canary.errors import (
    AuthenticationError,
    ConflictError,
    IllegalTransitionError,
    InvalidInputError,
    NotFoundError,
    RegistryUnavailableError,
    RevisionMismatchError,
    TooLargeError,
)
from otel_prompt_canary.registry import Action, PromptSpec, Registry, SqlRegistry, open_store
from otel_prompt_canary.routing.remote import RemoteRegistry, open_registry
from otel_prompt_canary.service import ServiceSettings
from tests.routing.fakes import Canned, Received, canned_server
from tests.service.service_factories import text_spec
from tests.support.auth import AUTH, TOKEN
from tests.support.loopback import free_port, running_server, silent_server

#: The server's re-read of the store for other replicas' writes: the slowest it allows.
STORE_POLL_SECONDS = 10


@pytest.fixture
def server(registry: SqlRegistry) -> Iterator[str]:
    with running_server(registry, ServiceSettings(token=TOKEN, store_poll_seconds=STORE_POLL_SECONDS)) as url:
        yield url


@pytest.fixture
def http(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, timeout=10) as client:
        yield client


def _push_two(http: httpx.Client, name: str = "greeter") -> None:
    for template in ("Greet {{ name }} warmly.", "Greet {{ name }} briefly."):
        assert http.post("/v1/prompts", json=text_spec(name, template), headers=AUTH).status_code == 201


class _Poll(threading.Thread):
    """One long-poll in a thread; records the answer."""

    def __init__(self, url: str, etag: str, wait: float) -> None:
        super().__init__(daemon=True)
        self.url, self.etag, self.wait = url, etag, wait
        self.response: httpx.Response | None = None

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=self.wait + 30) as client:
            self.response = client.get(
                "/v1/routes", params={"wait": self.wait}, headers={"If-None-Match": self.etag}
            )


def test_long_poll_answers_at_once_when_a_route_changes(server: str, http: httpx.Client) -> None:
    _push_two(http)
    etag = http.get("/v1/routes").headers["ETag"]
    # Each poll waits less than the server's first re-read of the store would take: without the
    # write's own notification, none could see the change before its wait ends (then: 304).
    wait = STORE_POLL_SECONDS - 2
    polls = [_Poll(server, etag, wait=wait) for _ in range(20)]
    for poll in polls:
        poll.start()
    time.sleep(0.5)  # every poll is now waiting
    assert all(p.is_alive() for p in polls)

    started = http.post("/v1/prompts/greeter/rollouts", json={"version": 2, "reason": "go"}, headers=AUTH)
    assert started.status_code == 201
    for poll in polls:
        poll.join(timeout=wait + 60)
    for poll in polls:
        assert poll.response is not None
        # 200, not the 304 of a wait that ended: the write itself woke the waiters.
        assert poll.response.status_code == 200
        assert poll.response.headers["ETag"] != etag
        assert poll.response.json()["routes"][0] == started.json()


def test_long_poll_answers_304_after_the_wait(server: str, http: httpx.Client) -> None:
    _push_two(http)
    etag = http.get("/v1/routes").headers["ETag"]
    longer = _Poll(server, etag, wait=30)  # the same revision, sent first, with a longer wait
    longer.start()
    begin = time.monotonic()
    response = http.get("/v1/routes", params={"wait": 1}, headers={"If-None-Match": etag})
    elapsed = time.monotonic() - begin
    assert response.status_code == 304
    assert response.headers["ETag"] == etag
    assert elapsed >= 0.9  # held for its wait...
    assert longer.is_alive()  # ...and answered when that wait ended: the longer one still waits
    assert (
        http.post(
            "/v1/prompts/greeter/rollouts", json={"version": 2, "reason": "r"}, headers=AUTH
        ).status_code
        == 201
    )
    longer.join(timeout=60)
    assert longer.response is not None
    assert longer.response.status_code == 200  # woken by the change, not by its wait


def test_long_poll_ignores_writes_that_change_no_route(server: str, http: httpx.Client) -> None:
    _push_two(http)
    etag = http.get("/v1/routes").headers["ETag"]
    poll = _Poll(server, etag, wait=1.5)
    poll.start()
    time.sleep(0.3)
    # A third version of an existing prompt changes no routing flag.
    http.post("/v1/prompts", json=text_spec(template="Hello {{ name }}."), headers=AUTH)
    poll.join(timeout=10)
    assert poll.response is not None
    assert poll.response.status_code == 304


def test_changes_by_another_replica_are_noticed(store_target: str) -> None:
    # Two replicas on one store (SQLite file, and PostgreSQL as in a fleet): a write through B
    # reaches a long-poll waiting on A through A's periodic re-read of the store.
    store_a, store_b = open_store(store_target), open_store(store_target)
    settings = ServiceSettings(token=TOKEN, store_poll_seconds=0.1)
    try:
        with running_server(store_a, settings) as url_a, running_server(store_b, settings) as url_b:
            with httpx.Client(base_url=url_b) as b:
                _push_two(b)
            with httpx.Client(base_url=url_a) as a:
                etag = a.get("/v1/routes").headers["ETag"]
            poll = _Poll(url_a, etag, wait=30)
            poll.start()
            time.sleep(0.3)
            with httpx.Client(base_url=url_b) as b:
                assert (
                    b.post(
                        "/v1/prompts/greeter/rollouts", json={"version": 2, "reason": "r"}, headers=AUTH
                    ).status_code
                    == 201
                )
            poll.join(timeout=90)
            assert poll.response is not None
            # 200, not the 304 of a wait that ended: A's re-read of the store saw B's write.
            assert poll.response.status_code == 200
            assert poll.response.json()["routes"][0]["state"] == "ramping"
    finally:
        store_a.close()
        store_b.close()


def test_body_limits_over_a_real_socket(server: str, http: httpx.Client) -> None:
    big = text_spec(template="x" * (2 * 1024 * 1024))
    response = http.post("/v1/prompts", json=big, headers=AUTH)
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "TooLargeError"

    def chunks() -> Iterator[bytes]:
        for _ in range(64):
            yield b" " * 32768

    response = http.post("/v1/prompts", content=chunks(), headers=AUTH | {"Content-Type": "application/json"})
    assert response.status_code == 413
    assert "more than 1048576 bytes" in response.json()["error"]["message"]
    assert http.get("/v1/prompts").json() == []


# -- RemoteRegistry -------------------------------------------------------------------------------


@pytest.fixture
def remote(server: str) -> Iterator[RemoteRegistry]:
    with RemoteRegistry(server, token=TOKEN) as client:
        yield client


def test_remote_registry_implements_the_protocol(remote: RemoteRegistry, registry: SqlRegistry) -> None:
    assert isinstance(remote, Registry)
    spec = PromptSpec(name="greeter", template="Greet {{ name }} warmly.")
    pushed = remote.push(spec, author="ana")
    assert pushed.created
    assert pushed.version.author == "admin"  # the principal of the token, whatever the client says
    assert remote.push(spec).created is False
    remote.push(PromptSpec(name="greeter", template="Greet {{ name }} briefly."))

    assert remote.list_prompts() == registry.list_prompts()
    assert remote.list_versions("greeter") == registry.list_versions("greeter")
    assert remote.get_version("greeter") == registry.get_version("greeter", 2)
    assert remote.get_version("greeter", 1) == registry.get_version("greeter", 1)
    assert remote.diff("greeter", 1, 2) == registry.diff("greeter", 1, 2)

    policy = {
        "signals": [{"name": "json_valid", "kind": "proportion", "harmful": "decrease"}],
        "rules": [{"signal": "json_valid", "type": "relative", "action": "rollback"}],
    }
    route = remote.start_rollout("greeter", 2, ramp=(10.0, 100.0), actor="ana", reason="try", policy=policy)
    assert route == registry.get_route("greeter") == remote.get_route("greeter")
    assert remote.list_routes() == registry.list_routes()
    assert remote.get_rollout("greeter") == registry.get_rollout("greeter")
    stored = remote.get_rollout("greeter").policy
    assert stored is not None
    # Stored in full: defaults filled in, the ramp's steps written into the policy.
    assert stored["ramp"] == {"steps": [10.0, 100.0], "min_duration_seconds": 600.0, "min_samples": 100}
    assert stored["rules"] == [
        {"id": "json_valid.relative", "signal": "json_valid", "type": "relative", "margin": 0.0}
        | {"action": "rollback", "critical": False}
    ]

    route = remote.transition(
        "greeter",
        Action.ADVANCE,
        actor="bo",
        reason="fine",
        evidence={"n": 3},
        expected_revision=route.revision,
        rollout_id=route.rollout_id,
    )
    assert route.canary_weight_bp == 10_000
    route = remote.transition("greeter", Action.PROMOTE, actor="bo", reason="good")
    assert route.state == "promoted"
    history = remote.history("greeter")
    assert history == registry.history("greeter")
    assert [(h.action, h.actor) for h in history] == [
        ("start", "ana"),
        ("advance", "bo"),
        ("promote", "bo"),
    ]
    assert history[1].evidence == {"n": 3}
    assert remote.history("greeter", limit=1) == history[-1:]


def test_routes_speak_the_etag_contract(remote: RemoteRegistry, http: httpx.Client) -> None:
    remote.push(PromptSpec(name="greeter", template="Hi {{ name }}"))
    page = http.get("/v1/routes")
    etag = page.headers["ETag"]
    assert etag == f'"{page.json()["revision"]}"'
    assert [r["prompt"] for r in page.json()["routes"]] == ["greeter"]
    assert [r.model_dump(mode="json") for r in remote.list_routes()] == page.json()["routes"]
    assert http.get("/v1/routes", headers={"If-None-Match": etag}).status_code == 304
    begin = time.monotonic()
    held = http.get("/v1/routes", params={"wait": 0.5}, headers={"If-None-Match": etag})
    assert held.status_code == 304
    assert time.monotonic() - begin >= 0.4
    again = http.get("/v1/routes", headers={"If-None-Match": '"stale"'})
    assert (again.status_code, again.json()) == (200, page.json())


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda r: r.get_version("nope"), NotFoundError, "unknown prompt 'nope'"),
        (lambda r: r.get_version("greeter", 7), NotFoundError, "has no version 7"),
        (lambda r: r.get_rollout("greeter"), NotFoundError, "never had a rollout"),
        (lambda r: r.get_route("nope"), NotFoundError, "unknown prompt"),
        (lambda r: r.history("nope"), NotFoundError, "unknown prompt"),
        (
            lambda r: r.transition("greeter", Action.PAUSE, actor="a", reason="x"),
            IllegalTransitionError,
            "cannot pause",
        ),
        (
            lambda r: r.start_rollout("greeter", 2, actor="a", reason="r", expected_revision=9),
            RevisionMismatchError,
            "not 9",
        ),
        (
            lambda r: r.transition("greeter", Action.PAUSE, actor="a", reason="  "),
            InvalidInputError,
            "give a reason",
        ),
        (
            lambda r: r.start_rollout("greeter", 1, actor="a", reason="r"),
            InvalidInputError,
            "already the stable",
        ),
        (lambda r: r.get_version("bad name"), InvalidInputError, "invalid prompt name"),
        (
            lambda r: r.push(PromptSpec(name="greeter", template="y" * 300_000)),
            TooLargeError,
            "over the limit",
        ),
    ],
)
def test_remote_errors_are_the_same_exceptions(
    remote: RemoteRegistry, call: Any, error: type[Exception], message: str
) -> None:
    remote.push(PromptSpec(name="greeter", template="Hi {{ name }}"))
    remote.push(PromptSpec(name="greeter", template="Hello {{ name }}"))
    with pytest.raises(error, match=message):
        call(remote)


def test_remote_writes_without_token_raise_authentication_error(server: str) -> None:
    with RemoteRegistry(server) as anonymous:
        assert anonymous.list_prompts() == []
        with pytest.raises(AuthenticationError, match="missing credentials"):
            anonymous.push(PromptSpec(name="greeter", template="Hi"))
    with (
        RemoteRegistry(server, token="wrong-token-0123456789") as wrong,
        pytest.raises(AuthenticationError, match="invalid bearer token"),
    ):
        wrong.push(PromptSpec(name="greeter", template="Hi"))
    assert "wrong-token" not in repr(wrong)


def test_unreachable_control_plane_is_registry_unavailable() -> None:
    with (
        RemoteRegistry(f"http://127.0.0.1:{free_port()}") as nowhere,
        pytest.raises(RegistryUnavailableError, match="cannot reach the control plane"),
    ):
        nowhere.list_prompts()


def test_silent_control_plane_times_out_as_registry_unavailable() -> None:
    with (
        silent_server() as url,
        RemoteRegistry(url, timeout=0.3) as silent,
        pytest.raises(RegistryUnavailableError, match="did not answer in time"),
    ):
        silent.list_routes()


def test_error_answers_that_are_not_json_still_map() -> None:
    def answer(request: Received) -> Canned:
        if request.path.partition("?")[0].endswith("/versions"):  # the client asks for a page
            return 409, {"Content-Type": "text/html"}, b"<html>conflict</html>"
        return 502, {}, b"bad gateway"

    with canned_server(answer) as (url, _), RemoteRegistry(url) as odd:
        with pytest.raises(ConflictError, match=r"^control plane answered HTTP 409 with an HTML page"):
            odd.list_versions("greeter")
        with pytest.raises(RegistryUnavailableError, match="HTTP 502"):
            odd.list_prompts()


def test_remote_registry_refuses_bad_urls() -> None:
    with pytest.raises(InvalidInputError, match="must start with http"):
        RemoteRegistry("ftp://example")
    with pytest.raises(InvalidInputError, match="timeout must be positive"):
        RemoteRegistry("http://127.0.0.1:1", timeout=0)


def test_open_registry_picks_the_transport(tmp_path: Path, server: str) -> None:
    remote = open_registry(server, token=TOKEN)
    assert isinstance(remote, RemoteRegistry)
    remote.close()
    local = open_registry(tmp_path / "x.db")
    assert isinstance(local, SqlRegistry)
    local.close()
    with pytest.raises(InvalidInputError, match="unsupported registry"):
        open_registry("ftp://example/x")


def test_stopping_the_server_releases_long_polls(registry: SqlRegistry) -> None:
    settings = ServiceSettings(token=TOKEN)
    with running_server(registry, settings) as url:
        with httpx.Client(base_url=url) as client:
            etag = client.get("/v1/routes").headers["ETag"]
        poll = _Poll(url, etag, wait=30)
        poll.start()
        time.sleep(0.3)
    poll.join(timeout=90)
    # An answer, and a 304: a poll the server had not released would have been cut off without one
    # once the 5 s of graceful shutdown ran out, long before its 30 s wait ended.
    assert poll.response is not None
    assert poll.response.status_code == 304
