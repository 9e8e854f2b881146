"""What only a control plane can refuse: missing tokens, an unreachable URL."""

from __future__ import annotations

from otel_prompt_canary.cli import EXIT_BAD_INPUT, EXIT_FAILURE
from otel_prompt_canary.registry import SqlRegistry
from tests.cli.cli_helpers import ROUTE_FIELDS, Cli
from tests.support.loopback import free_port


def test_writes_without_a_token_fail_with_a_hint(
    server_url: str, served_store: SqlRegistry, specs: tuple[str, str]
) -> None:
    anonymous = Cli(server_url)
    error = anonymous.fails(EXIT_FAILURE, "prompt", "push", specs[0])
    assert error == (
        "missing credentials: writes need the header 'Authorization: Bearer <token>' "
        "(give the token with --token or OTEL_PROMPT_CANARY_TOKEN)"
    )
    assert served_store.list_prompts() == []
    assert anonymous.json("prompt", "list") == []  # reads are open

    wrong = Cli(server_url, token="not-the-right-token-123")
    assert wrong.fails(EXIT_FAILURE, "prompt", "push", specs[0]) == "invalid bearer token"


def test_unreachable_control_plane(specs: tuple[str, str]) -> None:
    port = free_port()
    error = Cli(f"http://127.0.0.1:{port}").fails(EXIT_FAILURE, "prompt", "list")
    assert error.startswith(f"cannot reach the control plane at http://127.0.0.1:{port}")


def test_remote_and_local_agree(remote: Cli, served_store: SqlRegistry, specs: tuple[str, str]) -> None:
    remote.ok("prompt", "push", specs[0])
    remote.ok("prompt", "push", specs[1])
    remote.ok("rollout", "start", "support-bot", "2", "--actor", "ana", "--reason", "r")
    status = remote.json("rollout", "status", "support-bot")
    assert served_store.get_route("support-bot").model_dump(mode="json") == {
        field: status[field] for field in ROUTE_FIELDS
    }
    assert served_store.history("support-bot")[0].actor == "ana"


def test_serve_refuses_a_control_plane_url(server_url: str) -> None:
    error = Cli(server_url).fails(EXIT_BAD_INPUT, "serve", "--insecure-dev")
    assert error == "serve needs a store (a path or a database URL), not the URL of a control plane"
