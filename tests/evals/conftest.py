"""Fixtures of the evaluation suite: the simulated LLM playing the support model and the judge, a
registry holding the three versions of support-bot (tests/evals/golden.py), its golden set, and
the settings that point an evaluation at the simulated LLM."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from otel_prompt_canary.demo.behaviour import Behaviour
from otel_prompt_canary.demo.simulated_llm import SimulatedLLM, running_simulated_llm
from otel_prompt_canary.evals import Dataset, EvalSettings, JudgeEndpoint, SqlEvalStore, read_dataset
from otel_prompt_canary.registry import PromptSpec, SqlRegistry
from otel_prompt_canary.yaml_documents import load_yaml
from tests.evals.golden import SPEC_V1, SPEC_V2, SPEC_V3, dataset_yaml, support_behaviour


@pytest.fixture(scope="session")
def llm() -> Iterator[SimulatedLLM]:
    """One simulated LLM for the session; each test starts from the support model."""
    with running_simulated_llm(Behaviour()) as server:
        yield server


@pytest.fixture
def behaviour(llm: SimulatedLLM) -> Iterator[Behaviour]:
    yield support_behaviour(llm.behaviour)
    support_behaviour(llm.behaviour)


@pytest.fixture
def prompts(registry: SqlRegistry) -> SqlRegistry:
    """The test's store with support-bot@1 (stable), @2 (breaks billing) and @3 (equivalent)."""
    for text in (SPEC_V1, SPEC_V2, SPEC_V3):
        registry.push(PromptSpec.model_validate(load_yaml(text)))
    return registry


@pytest.fixture
def store(prompts: SqlRegistry) -> SqlEvalStore:
    return SqlEvalStore(prompts)


@pytest.fixture
def golden(store: SqlEvalStore) -> Dataset:
    """The golden set, pushed: twelve cases, each with a reference for the judge."""
    return store.push_dataset(read_dataset(dataset_yaml(), source="support-golden.yaml")).dataset


@pytest.fixture
def settings(llm: SimulatedLLM, behaviour: Behaviour) -> EvalSettings:
    """An evaluation against the simulated LLM, the judge included, with short retry pauses."""
    return EvalSettings(
        base_url=llm.base_url,
        api_key="test-key",
        judge=JudgeEndpoint(base_url=llm.base_url, model="sim-judge", api_key="test-key"),
        backoff_seconds=0.01,
        concurrency=4,
    )
