"""Fixtures of the loop suite (its test data is in factories.py)."""

from __future__ import annotations

import pytest

from otel_prompt_canary.registry import PromptSpec, SqlRegistry


@pytest.fixture
def store(registry: SqlRegistry) -> SqlRegistry:
    """The test's registry (SQLite and PostgreSQL) with two versions of ``greeter``."""
    registry.push(PromptSpec(name="greeter", template="Greet {{ name }} warmly."))
    registry.push(PromptSpec(name="greeter", template="Greet {{ name }} briefly."))
    return registry
