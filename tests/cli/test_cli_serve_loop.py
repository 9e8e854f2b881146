"""``prompt-canary serve`` with the alert receivers' secrets and the controller's settings."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from pathlib import Path

import httpx
import pytest

from otel_prompt_canary.cli import EXIT_BAD_INPUT
from otel_prompt_canary.service import server as service_server
from tests.cli.cli_helpers import Cli, process_environment, serving
from tests.support.auth import TOKEN

SECRET = "whsec_" + base64.b64encode(b"cli-webhook-secret-0123456789").decode()


@pytest.mark.usefixtures("no_server")
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--grafana-secret", ""), "refusing an empty grafana_secret (--grafana-secret)"),
        (("--webhook-secret", "  "), "refusing an empty webhook_secret (--webhook-secret)"),
        (("--alertmanager-token", "short"), "the alertmanager_token is too short (5 characters)"),
        (("--alertmanager-basic-auth", "nocolon-0123456789"), "must be 'user:password'"),
        (("--webhook-secret", "whsec_%%%"), "is not valid base64"),
        (("--webhook-secret", "whsec_" + base64.b64encode(b"short").decode()), "too short (5 bytes of key)"),
        (("--grafana-signature-header", "X Bad"), "invalid header name 'X Bad'"),
        (("--time-scale", "0"), "Invalid value for '--time-scale'"),
    ],
)
def test_bad_receiver_settings_are_refused(db_path: str, args: tuple[str, ...], message: str) -> None:
    assert message in Cli(db_path, token=TOKEN).fails(EXIT_BAD_INPUT, "serve", *args)


@pytest.mark.usefixtures("no_server")
def test_empty_secrets_mean_unset_in_development(db_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[object] = []
    monkeypatch.setattr(service_server, "run_server", lambda _r, settings, **_k: seen.append(settings))
    Cli(db_path).ok("serve", "--insecure-dev", "--grafana-secret", "")
    assert getattr(seen[0], "grafana_secret", "missing") is None


def test_a_served_control_plane_takes_signed_reports(tmp_path: Path, specs: tuple[str, str]) -> None:
    db = str(tmp_path / "served.db")
    env = process_environment(OTEL_PROMPT_CANARY_TOKEN=TOKEN, OTEL_PROMPT_CANARY_WEBHOOK_SECRET=SECRET)
    with serving("--registry", db, "--time-scale", "60", env=env) as (url, stderr):
        assert any(line.startswith("warning: --time-scale 60") for line in stderr)
        remote = Cli(url, token=TOKEN)
        remote.ok("prompt", "push", specs[0])
        remote.ok("prompt", "push", specs[1])
        rollout_id = remote.json("rollout", "start", "support-bot", "2", "--reason", "r")["rollout_id"]
        report: dict[str, object] = {
            "id": "pcr_" + uuid.uuid4().hex,
            "type": "prompt_canary.report",
            "source": "gateway-0",
            "prompt": "support-bot",
            "rollout_id": rollout_id,
            "window_seconds": 60,
            "stable": {
                "prompt_canary.check.json_valid": {"60": {"kind": "proportion", "n": 3, "successes": 2}}
            },
            "canary": {},
            "window_start": "1970-01-01T00:01:00.000Z",
            "window_end": "1970-01-01T00:02:00.000Z",
            "created_at": "2026-11-27T04:00:00.000Z",
        }
        body = json.dumps(report).encode()
        stamp = int(time.time())
        key = base64.b64decode(SECRET.removeprefix("whsec_"))
        mac = hmac.new(key, f"{report['id']}.{stamp}.".encode() + body, hashlib.sha256).digest()
        headers = {
            "content-type": "application/json",
            "webhook-id": str(report["id"]),
            "webhook-timestamp": str(stamp),
            "webhook-signature": "v1," + base64.b64encode(mac).decode(),
        }
        answer = httpx.post(f"{url}/v1/reports", content=body, headers=headers, timeout=10)
        assert answer.status_code == 200, answer.text
        assert answer.json()["outcome"] == "merged"
        headers["webhook-signature"] = "v1," + base64.b64encode(b"x" * 32).decode()
        assert httpx.post(f"{url}/v1/reports", content=body, headers=headers, timeout=10).status_code == 401
