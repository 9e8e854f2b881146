"""``prompt-canary gc``: prunes a store (SQLite or PostgreSQL) by its retention, once."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection

from otel_prompt_canary.cli import EXIT_BAD_INPUT
from otel_prompt_canary.loop import AlertNotice, AlertOutcome
from otel_prompt_canary.loop.alert_log import key_row, log_row
from otel_prompt_canary.registry import PromptSpec, open_store
from otel_prompt_canary.registry import schema as t
from otel_prompt_canary.registry.database import utc_now
from tests.cli.cli_helpers import Cli
from tests.support.auth import TOKEN


def _old_alerts(target: str) -> None:
    """Three alerts that changed nothing (two of one key), received 40 days ago, as the alert log
    writes them (its records can only be inserted, so they are inserted old)."""
    long_ago = utc_now() - timedelta(days=40)
    with open_store(target) as registry:
        registry.push(PromptSpec(name="support", template="x"))
        with registry.database.engine.begin() as conn:
            _insert_old(conn, long_ago)


def _insert_old(conn: Connection, long_ago: datetime) -> None:
    for key, outcome in (
        ("am:1", AlertOutcome.IGNORED),
        ("am:1", AlertOutcome.DUPLICATE),
        ("am:2", AlertOutcome.IGNORED),
    ):
        notice = AlertNotice(
            source="alertmanager", key=key, prompt="support", action="pause", actor="am", reason="r"
        )
        conn.execute(
            t.alert_log.insert(),
            [
                log_row(
                    notice,
                    received_at=long_ago,
                    rollout_id=None,
                    outcome=outcome,
                    reason="r",
                    audit_id=None,
                )
            ],
        )
        if outcome is AlertOutcome.IGNORED:
            row = key_row(notice, decided_at=long_ago, rollout_id=None, outcome=outcome.value, log_id=None)
            conn.execute(t.alert_keys.insert(), [row])


def test_gc_prunes_what_the_retention_no_longer_keeps(direct: Cli) -> None:
    _old_alerts(direct.registry)
    # Kept a year, the alert log is untouched; the ids go after their day.
    kept = direct.json("gc", "--retention", "alert_log=52w")
    assert kept == {
        "retention": "dedup_ids=1d,untimed_alerts=1h,alert_log=52w,report_windows=30d,live_windows=30d,"
        "drift_alerts=30d,eval_runs=30d",
        "pruned": {
            "alert_keys": 2,
            "report_receipts": 0,
            "alert_log": 0,
            "report_windows": 0,
            "live_windows": 0,
            "live_receipts": 0,
            "response_models": 0,
            "drift_alerts": 0,
            "eval_runs": 0,
        },
    }
    output = direct.ok("gc").stdout
    assert output == (
        "pruned 0 alert keys, 0 report receipts, 3 alert log records, 0 report windows, 0 live windows, "
        "0 live report receipts, 0 response models, 0 drift alerts and 0 evaluation runs (retention "
        "dedup_ids=1d,untimed_alerts=1h,alert_log=30d,report_windows=30d,live_windows=30d,drift_alerts=30d,"
        "eval_runs=30d)\n"
    )
    assert direct.ok("gc").stdout.startswith("pruned 0 alert keys, 0 report receipts, 0 alert log records")


def test_gc_reads_the_retention_serve_reads(direct: Cli) -> None:
    _old_alerts(direct.registry)
    result = direct("gc", "--json", env={"OTEL_PROMPT_CANARY_RETENTION": "alert_log=forever"})
    assert result.exit_code == 0, result.output
    assert '"alert_log": 0' in result.stdout


def test_gc_refuses_a_bad_retention_and_a_control_plane(local: Cli) -> None:
    assert local.fails(EXIT_BAD_INPUT, "gc", "--retention", "dedup_ids=5m").startswith(
        "invalid retention: dedup_ids must be at least 1h"
    )
    remote = Cli("http://127.0.0.1:8787", token=TOKEN)
    assert remote.fails(EXIT_BAD_INPUT, "gc") == (
        "gc needs a store (a path or a database URL), not the URL of a control plane"
    )
