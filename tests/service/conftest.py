"""Fixtures of the control-plane tests: the app in front of the test's registry (see tests/conftest.py).

A module whose tests need other settings overrides ``settings``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from otel_prompt_canary.registry import SqlRegistry
from otel_prompt_canary.service import ServiceSettings
from otel_prompt_canary.service.app import create_app
from tests.support.auth import TOKEN


@pytest.fixture
def settings() -> ServiceSettings:
    return ServiceSettings(token=TOKEN)


@pytest.fixture
def client(registry: SqlRegistry, settings: ServiceSettings) -> Iterator[TestClient]:
    with TestClient(create_app(registry, settings)) as test_client:
        yield test_client
