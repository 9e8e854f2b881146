"""Fixtures of the router suite: routers closed after each test, and a fake control plane."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from otel_prompt_canary.routing import PromptRouter
from tests.routing.fakes import FakeControlPlane


def _route_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("prompt-canary-routes")]


@pytest.fixture
def make_router() -> Iterator[Callable[..., PromptRouter]]:
    """Build routers that are closed (and checked to leave no thread) at the end of the test."""
    routers: list[PromptRouter] = []

    def make(registry: Any, **kwargs: Any) -> PromptRouter:
        kwargs.setdefault("initial_timeout", 5.0)
        router = PromptRouter(registry, **kwargs)
        routers.append(router)
        return router

    yield make
    for router in routers:
        router.close()
    assert _route_threads() == [], "a router left its thread running"


@pytest.fixture
def control_plane() -> Iterator[FakeControlPlane]:
    plane = FakeControlPlane().start()
    yield plane
    plane.stop()
