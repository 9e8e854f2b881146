"""``prompt-canary drift``: status, alerts, acknowledgement and baselines, on a store and a control plane."""

from __future__ import annotations

import pytest

from otel_prompt_canary.loop.drift import DriftMonitor
from otel_prompt_canary.loop.drift_models import DriftAlert
from otel_prompt_canary.registry import SqlRegistry
from otel_prompt_canary.service import ServiceSettings
from tests.cli.cli_helpers import Cli
from tests.drift.factories import CHECK, FAST, Clock, Feeder, push_bot
from tests.support.auth import TOKEN
from tests.support.loopback import running_server


def _alarm(registry: SqlRegistry) -> DriftAlert:
    push_bot(registry)
    clock = Clock()
    feed = Feeder(DriftMonitor(registry, FAST, clock=clock), clock, seed=6)
    feed.minutes(70, pass_rate=0.99, models={"sim-1": 17})
    for _ in range(240):
        if feed.minute(pass_rate=0.9, models={"sim-1": 17}):
            break
    (alert,) = feed.raised
    return alert


@pytest.mark.parametrize("store_backend", ["sqlite"])  # the store is opened by path
def test_on_a_store_status_alerts_and_ack(registry: SqlRegistry, store_target: str) -> None:
    alert = _alarm(registry)
    cli = Cli(store_target)
    overview = cli.ok("drift", "status").stdout
    assert "prompt" in overview and "bot" in overview
    detail = cli.ok("drift", "status", "bot").stdout
    assert "bot@1" in detail and CHECK in detail and "alarm" in detail and "sim-1 (" in detail
    assert f"open alert #{alert.id}" in detail
    listed = cli.json("drift", "alerts", "--open")
    assert [a["id"] for a in listed] == [alert.id]

    assert "--reason must not be empty" in cli.fails(2, "drift", "ack", str(alert.id), "--reason", " ")
    assert "unknown drift alert" in cli.fails(1, "drift", "ack", "999", "--reason", "r")
    done = cli.ok("drift", "ack", str(alert.id), "--reason", "provider change", "--actor", "ana").stdout
    assert "the signal re-baselines from now" in done
    assert "was acknowledged by ana" in cli.fails(1, "drift", "ack", str(alert.id), "--reason", "again")
    assert cli.json("drift", "alerts", "--open") == []
    assert "unknown prompt" in cli.fails(1, "drift", "status", "nobody")
    assert "--until must be after --from" in cli.fails(
        2, "drift", "baseline", "bot", "--from", "2026-01-02", "--until", "2026-01-01", "--reason", "r"
    )


def test_on_a_control_plane_the_same_commands_use_its_api(registry: SqlRegistry) -> None:
    alert = _alarm(registry)
    settings = ServiceSettings(token=TOKEN, controller=False, drift_interval_seconds=3600)
    with running_server(registry, settings) as url:
        reader, writer = Cli(url), Cli(url, token=TOKEN)
        (status,) = reader.json("drift", "status")
        assert (status["prompt"], status["signals"][0]["status"]) == ("bot", "alarm")
        assert (
            "missing credentials" in reader.fails(1, "drift", "ack", str(alert.id), "--reason", "r").lower()
        )
        acknowledged = writer.json("drift", "ack", str(alert.id), "--reason", "provider change")
        # The token's principal acknowledges; the actor the CLI names is a note in the reason.
        assert acknowledged["acknowledged_by"] == "admin"
        assert acknowledged["acknowledge_reason"] == "provider change [actor named by the request: tester]"
        assert reader.json("drift", "alerts", "bot", "--open") == []
        early = writer.fails(
            2, "drift", "baseline", "bot", "--from", "2020-01-01", "--until", "2020-01-02", "--reason", "r"
        )
        assert "went live" in early
