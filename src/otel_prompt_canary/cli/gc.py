"""``prompt-canary gc``: prune a store by its retention, once (``serve`` also does it every hour).

What is pruned and why is :mod:`otel_prompt_canary.loop.retention`; the audit trail, the records
of applied alerts and acknowledged drift alerts are never touched. The retention is read from
``--retention`` or the variable ``serve`` reads it from, so that a scheduled ``gc`` and the service
agree.
"""

from __future__ import annotations

import click

from otel_prompt_canary.cli.group import State, common_options, fail_input
from otel_prompt_canary.cli.output import print_json
from otel_prompt_canary.loop.retention import DEFAULT_RETENTION, Retention, prune
from otel_prompt_canary.registry.sql import open_store
from otel_prompt_canary.service.settings import ENV_PREFIX

__all__ = ["gc"]


@click.command("gc")
@click.option(
    "--retention",
    "spec",
    envvar=ENV_PREFIX + "RETENTION",
    show_envvar=True,
    default=str(DEFAULT_RETENTION),
    show_default=True,
    metavar="NAME=DURATION,...",
    help="How long each kind of record is kept: dedup_ids, untimed_alerts, alert_log, report_windows, "
    "live_windows, drift_alerts, eval_runs (any subset; 'forever' keeps one).",
)
@common_options
@click.pass_obj
def gc(state: State, spec: str) -> None:
    """Delete what the retention no longer keeps: old de-duplication ids, records of alerts that
    changed nothing, the per-window statistics of rollouts that ended long ago and of old live
    traffic (but what drift monitoring still needs), drift alerts of replaced versions no one
    acknowledged, and evaluation runs the gate and comparisons do not read.

    The registry is a path or a database URL. The audit trail of transitions, the records of applied
    alerts and acknowledged drift alerts are kept forever. Safe to run while the service runs, from
    several hosts.
    """
    if state.names_a_control_plane:
        fail_input("gc needs a store (a path or a database URL), not the URL of a control plane")
    retention = Retention.parse(spec)
    with open_store(state.registry_target) as registry:
        pruned = prune(registry, retention)
    if state.as_json:
        print_json({"retention": str(retention), "pruned": pruned.counts()})
        return
    counts = [f"{count} {_WORDS[name]}" for name, count in pruned.counts().items()]
    click.echo(f"pruned {', '.join(counts[:-1])} and {counts[-1]} (retention {retention})")


#: Each count of ``Pruned`` in words.
_WORDS = {
    "alert_keys": "alert keys",
    "report_receipts": "report receipts",
    "alert_log": "alert log records",
    "report_windows": "report windows",
    "live_windows": "live windows",
    "live_receipts": "live report receipts",
    "response_models": "response models",
    "drift_alerts": "drift alerts",
    "eval_runs": "evaluation runs",
}
