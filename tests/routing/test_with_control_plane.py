"""The router against the real control plane (``prompt-canary serve``'s app) on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from otel_prompt_canary.registry import PromptSpec, SqlRegistry
from otel_prompt_canary.routing import PromptRouter
from tests.support.auth import AUTH, TOKEN
from tests.support.loopback import running_server
from tests.support.waiting import eventually

pytest.importorskip("uvicorn")
service = pytest.importorskip("otel_prompt_canary.service")


@pytest.fixture
def served(registry: SqlRegistry) -> Iterator[str]:
    registry.push(PromptSpec(name="support", template="v1 {{ q }}"))
    registry.push(PromptSpec(name="support", template="v2 {{ q }}"))
    with running_server(registry, service.ServiceSettings(token=TOKEN)) as url:
        yield url


def test_rollout_and_rollback_through_the_control_plane(
    served: str, make_router: Callable[..., PromptRouter]
) -> None:
    url = served
    router = make_router(url, long_poll_wait=30)
    assert router.select("support", "u1").render(q="x") == "v1 x"

    with httpx.Client(base_url=url, headers=AUTH | {"X-Prompt-Canary-Actor": "test"}) as writer:
        started = writer.post(
            "/v1/prompts/support/rollouts", json={"version": 2, "ramp": [50, 100], "reason": "r"}
        )
        assert started.status_code == 201, started.text
        rollout_id = started.json()["rollout_id"]
        eventually(lambda: router.select("support", "u1").rollout_id == rollout_id, what="the rollout")
        keys = [f"user-{i}" for i in range(2000)]
        assert {router.select("support", k).version for k in keys} == {1, 2}

        rolled = writer.post("/v1/prompts/support/rollout/rollback", json={"reason": "worse"})
        assert rolled.status_code == 200, rolled.text
        # Seen well before the held request's 30 s wait could end: the server answered it at once.
        eventually(lambda: router.select("support", "u1").rollout_id is None, what="the rollback")
        assert {router.select("support", k).version for k in keys} == {1}
        assert router.status().rolled_back == {rollout_id}
