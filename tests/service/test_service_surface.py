"""The public faces of the service package and of the HTTP client stay as documented."""

from __future__ import annotations

import subprocess
import sys

import otel_prompt_canary.loop as loop
import otel_prompt_canary.routing.control_plane as control_plane
import otel_prompt_canary.routing.remote as remote
import otel_prompt_canary.service as service
import otel_prompt_canary.service.app as app


def test_service_public_names() -> None:
    # The package's face is its settings (no HTTP stack to import); the application is in .app.
    assert sorted(service.__all__) == ["ServiceSettings"]
    assert app.__all__ == ["create_app"]


def test_loop_public_names() -> None:
    assert sorted(loop.__all__) == [
        "ActiveRollout",
        "AlertAction",
        "AlertNotice",
        "AlertOutcome",
        "AlertRecord",
        "AlertStatus",
        "Assessment",
        "Decision",
        "LoopStore",
        "ReportOrigin",
        "ReportOutcome",
        "ReportReceipt",
        "RolloutController",
        "RolloutOrigin",
        "RolloutPolicy",
        "SqlLoopStore",
        "active_rollouts",
        "assess",
        "resolve_rollout_policy",
        "start_rollout",
    ]
    for name in loop.__all__:
        assert getattr(loop, name) is not None


def test_client_public_names() -> None:
    assert sorted(remote.__all__) == ["RemoteRegistry", "is_remote", "open_registry"]
    assert sorted(control_plane.__all__) == [
        "Answer",
        "ControlPlaneClient",
        "DEFAULT_MAX_ANSWER_BYTES",
        "is_remote",
    ]


def test_client_and_cli_do_not_import_the_server_stack() -> None:
    code = (
        "import sys, otel_prompt_canary.routing.remote, otel_prompt_canary.cli; "
        "heavy = sorted(m for m in ('fastapi', 'starlette', 'uvicorn') if m in sys.modules); "
        "print(','.join(heavy))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
