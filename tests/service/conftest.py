"""Fixtures of the control-plane tests: a real SQLite registry per test and the app in front of it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from service_factories import TOKEN

from otel_prompt_canary.registry import SqlRegistry, open_store
from otel_prompt_canary.service import ServiceSettings, create_app


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[SqlRegistry]:
    store = open_store(tmp_path / "registry.db")
    yield store
    store.close()


@pytest.fixture
def settings() -> ServiceSettings:
    return ServiceSettings(token=TOKEN)


@pytest.fixture
def client(registry: SqlRegistry, settings: ServiceSettings) -> Iterator[TestClient]:
    with TestClient(create_app(registry, settings)) as test_client:
        yield test_client
