"""The API against its own description: schemathesis generates requests from ``/openapi.json``
(valid ones and invalid ones, with the write token) for every operation, on both stores.

No answer may be a 5xx, and every answer must be one the document describes: its status, its
content type, its headers and its body's schema. The run is fixed (one seed, derandomized) and
bounded (a few examples per operation), so that it takes minutes at most and fails the same way
every time it fails.
"""

from __future__ import annotations

import itertools
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode, checks

from otel_prompt_canary.registry import PromptSpec, SqlRegistry
from otel_prompt_canary.service import ServiceSettings
from otel_prompt_canary.service.app import create_app
from tests.support.auth import AUTH, TOKEN

#: Examples per operation (and per store): enough to reach every parameter's edges.
EXAMPLES = 40
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]


def _api(registry: SqlRegistry) -> Any:
    """The API's description, served by an application in front of a store with one rollout."""
    # The name the document gives as its example, so that the examples reach a real rollout.
    registry.push(PromptSpec(name="support-bot", template="Hello {{ name }}"))
    registry.push(PromptSpec(name="support-bot", template="Hi {{ name }}"))
    registry.start_rollout("support-bot", 2, actor="test", reason="fuzz")
    app = create_app(registry, ServiceSettings(token=TOKEN, controller=False))
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def test_every_answer_is_described_and_none_is_a_server_error(registry: SqlRegistry) -> None:
    failures: list[str] = []
    operations = 0
    for result, mode in itertools.product(_api(registry).get_all_operations(), GenerationMode):
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.explicit, Phase.generate],  # the first failure of each operation is enough
        )
        def call(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=AUTH, checks=CHECKS)

        try:
            call()
        except Unsatisfiable:
            continue  # nothing to make invalid: an operation without parameters or body
        except (Exception, BaseExceptionGroup) as exc:  # every operation runs; reported together
            failures.append(f"{operation.label} ({mode.value}): {exc}")
    assert operations >= 2 * 20
    assert not failures, "\n\n".join(failures)
