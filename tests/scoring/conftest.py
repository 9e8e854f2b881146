"""Fixtures of the scoring suite: a fake OpenAI-compatible endpoint and workers that are shut down."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from otel_prompt_canary.scoring import ScoringPlan, ScoringWorker
from tests.scoring.fakes import FakeOpenAI


def _scoring_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("prompt-canary-scoring")]


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI().start()
    yield server
    server.stop()


@pytest.fixture
def make_worker() -> Iterator[Callable[..., ScoringWorker]]:
    """Build workers that are shut down (and checked to leave no thread) at the end of the test."""
    workers: list[ScoringWorker] = []

    def make(on_result: Any, **kwargs: Any) -> ScoringWorker:
        worker = ScoringWorker(on_result, **kwargs)
        workers.append(worker)
        return worker

    yield make
    for worker in workers:
        worker.shutdown(5)
    for thread in _scoring_threads():
        thread.join(5)
    assert _scoring_threads() == [], "a scoring worker left its thread running"


@pytest.fixture
def plans() -> Iterator[list[ScoringPlan]]:
    """A list to put plans in; each is closed at the end of the test."""
    made: list[ScoringPlan] = []
    yield made
    for plan in made:
        plan.close(5)
