"""The top-level public surface is small and deliberate: changing it must change this test."""

from __future__ import annotations

import otel_prompt_canary
import otel_prompt_canary.registry


def test_top_level_names() -> None:
    assert set(otel_prompt_canary.__all__) == {
        "AuthenticationError",
        "ConflictError",
        "IllegalTransitionError",
        "InvalidInputError",
        "NotFoundError",
        "PromptCanaryError",
        "PromptRouter",
        "RegistryUnavailableError",
        "RevisionMismatchError",
        "Selection",
        "TemplateError",
        "TooLargeError",
        "__version__",
        "current_selection",
    }
    for name in otel_prompt_canary.__all__:
        assert getattr(otel_prompt_canary, name) is not None


def test_registry_names() -> None:
    assert set(otel_prompt_canary.registry.__all__) == {
        "DEFAULT_MAX_TEMPLATE_BYTES",
        "DEFAULT_RAMP",
        "Action",
        "AuditRecord",
        "BlastRadius",
        "Environment",
        "Message",
        "OutputContract",
        "PromptDiff",
        "PromptSpec",
        "PromptSummary",
        "PromptVersion",
        "PushResult",
        "Registry",
        "Rollout",
        "RolloutState",
        "Route",
        "SqlRegistry",
        "diff_versions",
        "open_store",
        "parse_ramp",
        "validate_environment_name",
        "validate_prompt_name",
    }
    for name in otel_prompt_canary.registry.__all__:
        assert getattr(otel_prompt_canary.registry, name) is not None


def test_errors_form_one_tree() -> None:
    for name in otel_prompt_canary.__all__:
        obj = getattr(otel_prompt_canary, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, otel_prompt_canary.PromptCanaryError)


def test_importing_the_package_does_not_load_the_server_or_sql_stack() -> None:
    import subprocess
    import sys

    code = (
        "import sys, otel_prompt_canary; "
        "print(sorted(m for m in ('fastapi', 'uvicorn', 'sqlalchemy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
