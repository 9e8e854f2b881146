"""The public faces of the service package and of the HTTP client stay as documented."""

from __future__ import annotations

import subprocess
import sys

import otel_prompt_canary.client as client
import otel_prompt_canary.service as service


def test_service_public_names() -> None:
    assert sorted(service.__all__) == ["RolloutController", "ServiceSettings", "create_app"]


def test_client_public_names() -> None:
    assert sorted(client.__all__) == [
        "ACTOR_HEADER",
        "RemoteRegistry",
        "RoutesPage",
        "is_remote",
        "open_registry",
    ]


def test_client_and_cli_do_not_import_the_server_stack() -> None:
    code = (
        "import sys, otel_prompt_canary.client, otel_prompt_canary.cli; "
        "heavy = sorted(m for m in ('fastapi', 'starlette', 'uvicorn') if m in sys.modules); "
        "print(','.join(heavy))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
