"""The router against the real control plane (``prompt-canary serve``'s app) on loopback."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from otel_prompt_canary.registry import PromptSpec, open_store
from otel_prompt_canary.routing import PromptRouter
from tests.routing.fakes import eventually
from tests.support.services import free_port

uvicorn = pytest.importorskip("uvicorn")
service = pytest.importorskip("otel_prompt_canary.service")

TOKEN = "routing-suite-token-0123456789"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    registry = open_store(tmp_path / "registry.db")
    registry.push(PromptSpec(name="support", template="v1 {{ q }}"))
    registry.push(PromptSpec(name="support", template="v2 {{ q }}"))
    app = service.create_app(registry, service.ServiceSettings(token=TOKEN))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    eventually(lambda: server.started, timeout=10)
    yield f"http://127.0.0.1:{server.config.port}"
    server.should_exit = True
    thread.join(10)
    registry.close()


def test_rollout_and_rollback_through_the_control_plane(
    served: str, make_router: Callable[..., PromptRouter]
) -> None:
    url = served
    router = make_router(url)
    assert router.select("support", "u1").render(q="x") == "v1 x"

    with httpx.Client(
        base_url=url,
        headers={"Authorization": f"Bearer {TOKEN}", "X-Prompt-Canary-Actor": "test"},
    ) as writer:
        started = writer.post("/v1/prompts/support/rollouts", json={"version": 2, "ramp": [50, 100]})
        assert started.status_code == 201, started.text
        rollout_id = started.json()["rollout_id"]
        eventually(lambda: router.select("support", "u1").rollout_id == rollout_id, timeout=2)
        keys = [f"user-{i}" for i in range(2000)]
        assert {router.select("support", k).version for k in keys} == {1, 2}

        rolled = writer.post("/v1/prompts/support/rollout/rollback", json={"reason": "worse"})
        assert rolled.status_code == 200, rolled.text
        took = eventually(lambda: router.select("support", "u1").rollout_id is None, timeout=2)
        assert took < 1.0
        assert {router.select("support", k).version for k in keys} == {1}
        assert router.status().rolled_back == {rollout_id}
