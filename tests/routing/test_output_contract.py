"""A version's output contract over HTTP: served by the control plane, read by routers and the CLI's
registry client; a control plane from before contracts (no ``output`` field) stays readable."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import httpx
import pytest

from otel_prompt_canary.registry import OutputContract, PromptSpec, SqlRegistry
from otel_prompt_canary.routing import PromptRouter
from otel_prompt_canary.routing.remote import RemoteRegistry
from tests.support.auth import TOKEN
from tests.support.loopback import http_server, running_server

pytest.importorskip("uvicorn")
service = pytest.importorskip("otel_prompt_canary.service")

SCHEMA: dict[str, Any] = {"type": "object", "required": ["answer"]}
CONTRACT = OutputContract(format="json", schema=SCHEMA)


@pytest.fixture
def store_backend() -> str:
    """SQLite: this is about HTTP; the stores keep contracts on both backends (tests/registry)."""
    return "sqlite"


@pytest.fixture
def served(registry: SqlRegistry) -> Iterator[str]:
    with running_server(registry, service.ServiceSettings(token=TOKEN)) as url:
        yield url


def test_the_control_plane_serves_the_contract_and_routers_read_it(
    served: str, make_router: Callable[..., PromptRouter]
) -> None:
    with RemoteRegistry(served, token=TOKEN) as remote:
        plain = remote.push(PromptSpec(name="support", template="Answer {{ q }}."), author="ana")
        declared = remote.push(
            PromptSpec.model_validate(
                {
                    "name": "support",
                    "template": "Answer {{ q }}.",
                    "output": {"format": "json", "schema": SCHEMA},
                }
            ),
            author="ana",
        )
        assert declared.created and declared.version.version == 2
        assert declared.version.output == CONTRACT
        assert plain.version.output is None
        assert [v.output for v in remote.list_versions("support")] == [None, CONTRACT]
        assert remote.get_version("support", 2).output == CONTRACT
        assert remote.get_version("support").output == CONTRACT
        assert "output.format: null -> json" in remote.diff("support", 1, 2).summary
        remote.start_rollout("support", 2, ramp=(100.0,), actor="ana", reason="declare JSON")

    # The version endpoints: the contract as pushed, and no field at all for a version without one.
    assert httpx.get(f"{served}/v1/prompts/support/versions/2").json()["output"] == {
        "format": "json",
        "schema": SCHEMA,
    }
    assert "output" not in httpx.get(f"{served}/v1/prompts/support/versions/1").json()

    router = make_router(served, long_poll_wait=30)
    selection = router.select("support", "user-1")
    assert selection.version == 2 and selection.prompt_version is not None
    assert selection.prompt_version.output == CONTRACT


#: What a control plane from before output contracts answers: routes, and versions with no "output".
OLD_ROUTES = {
    "revision": "r7",
    "routes": [
        {
            "prompt": "support",
            "stable_version": 1,
            "canary_version": None,
            "canary_weight_bp": 0,
            "rollout_id": None,
            "state": "idle",
            "step": 0,
            "revision": 1,
            "ramp": [],
            "updated_at": "2026-01-01T00:00:00Z",
        }
    ],
}
OLD_VERSION = {
    "name": "support",
    "version": 1,
    "content_hash": "sha256:" + "0" * 64,
    "template": "Answer {{ q }}.",
    "messages": None,
    "template_role": "system",
    "variables": ["q"],
    "model": None,
    "config": {},
    "environment": {
        "model_id": None,
        "rag_index_id": None,
        "tool_schema_hash": None,
        "eval_baseline_id": None,
    },
    "commit_message": "",
    "author": "ana",
    "created_at": "2026-01-01T00:00:00Z",
}


class _OldControlPlane(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        bodies: dict[str, Any] = {
            "/v1/routes": OLD_ROUTES,
            "/v1/prompts/support/versions/1": OLD_VERSION,
            "/v1/prompts/support/versions/latest": OLD_VERSION,
            "/v1/prompts/support/versions": [OLD_VERSION],
        }
        body = bodies.get(path)
        payload = json.dumps(
            body if body is not None else {"error": {"type": "NotFoundError", "message": path}}
        )
        self.send_response(200 if body is not None else 404)
        self.send_header("content-type", "application/json")
        self.send_header("ETag", '"r7"')
        self.end_headers()
        self.wfile.write(payload.encode())

    def log_message(self, *args: Any) -> None:
        return


def test_a_control_plane_from_before_contracts_stays_readable(
    make_router: Callable[..., PromptRouter],
) -> None:
    with http_server(_OldControlPlane, name="old control plane") as url:
        router = make_router(url, long_poll_wait=0)
        selection = router.select("support", "user-1")
        assert selection.version == 1 and selection.render(q="x") == "Answer x."
        assert selection.prompt_version is not None and selection.prompt_version.output is None
        with RemoteRegistry(url) as remote:
            assert remote.get_version("support", 1).output is None
            assert [v.output for v in remote.list_versions("support")] == [None]
