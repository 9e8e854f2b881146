"""``prompt-canary drift``: what drift monitoring sees of each prompt's live stable version.

- ``drift status [NAME]``: every prompt (or one): the version watched, each signal against its
  baseline, the models that answered, the open alerts;
- ``drift alerts [NAME] [--open] [--limit N | --all]``: the drift alerts, newest last;
- ``drift ack ID --reason ...``: acknowledge an alert (audited); its signal re-baselines from now;
- ``drift baseline NAME --from ... --until ... --reason ...``: pin the baseline to a period.

Against a control plane (``--registry http(s)://...``) these read and write its ``/v1/drift``
resources; against a store they read the state its control plane keeps there (the monitor runs in
``prompt-canary serve``), with the detector settings of ``OTEL_PROMPT_CANARY_DRIFT`` (the defaults
otherwise). See docs/drift.md.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

import click
from pydantic import TypeAdapter, ValidationError

from otel_prompt_canary.analysis.drift import DriftConfig
from otel_prompt_canary.cli.group import (
    CommandFailed,
    Group,
    State,
    common_options,
    default_actor,
    fail_input,
)
from otel_prompt_canary.cli.output import format_table, print_json, time_text
from otel_prompt_canary.errors import PromptCanaryError
from otel_prompt_canary.loop.drift import DriftMonitor
from otel_prompt_canary.loop.drift_models import DriftAlert, PromptDrift, SignalDrift
from otel_prompt_canary.names import ACTOR_HEADER
from otel_prompt_canary.registry.models import validate_prompt_name
from otel_prompt_canary.registry.sql import SqlRegistry
from otel_prompt_canary.routing.control_plane import Answer, ControlPlaneClient
from otel_prompt_canary.routing.paging import read_pages
from otel_prompt_canary.service.settings import ENV_PREFIX

__all__ = ["drift"]


@click.group(cls=Group)
def drift() -> None:
    """Drift of each prompt's live stable version: status, alerts, acknowledgements, baselines."""


class _Drift:
    """One way to reach drift monitoring: a control plane's API, or a store's tables."""

    def __init__(self, state: State) -> None:
        self._client: ControlPlaneClient | None = None
        self._monitor: DriftMonitor | None = None
        if state.names_a_control_plane:
            self._client = ControlPlaneClient(state.registry_target, token=state.token)
            return
        registry = state.registry()
        if not isinstance(registry, SqlRegistry):
            raise CommandFailed(f"drift monitoring needs a store or a control plane, not {registry!r}")
        text = os.environ.get(ENV_PREFIX + "DRIFT", "").strip()
        config = DriftConfig() if text.lower() in ("", "on", "off") else DriftConfig.parse(text)
        self._monitor = DriftMonitor(registry, config)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def _get(self, path: str) -> Any:
        assert self._client is not None
        return self._client.request("GET", path).data

    def _pages(
        self,
        path: str,
        kind: Any,
        *,
        query: dict[str, str | int],
        limit: int | None,
        field: str | None = None,
    ) -> list[list[Any]]:
        """The pages of a list of ``kind`` (the ``field`` of each answer) in the order read, up to
        ``limit`` records."""
        assert self._client is not None

        def records(answer: Answer) -> list[Any]:
            data = answer.data if field is None else (answer.data or {}).get(field)
            return list(self._parse(list[kind], data))

        return read_pages(self._client, path, records, query=query, limit=limit)

    def _post(self, path: str, body: dict[str, Any], actor: str) -> Any:
        assert self._client is not None
        return self._client.request("POST", path, json=body, headers={ACTOR_HEADER: actor}).data

    def _parse(self, kind: Any, data: Any) -> Any:
        try:
            return TypeAdapter(kind).validate_python(data)
        except ValidationError as exc:
            raise PromptCanaryError(f"unexpected answer from the control plane: {exc}") from exc

    def status(self, name: str | None) -> list[PromptDrift]:
        if self._monitor is not None:
            return [self._monitor.prompt_status(name)] if name else self._monitor.status()
        if name:
            return [self._parse(PromptDrift, self._get(f"/v1/prompts/{name}/drift"))]
        pages = self._pages("/v1/drift", PromptDrift, query={}, limit=None, field="prompts")
        return [status for page in pages for status in page]

    def alerts(self, name: str | None, open_only: bool, limit: int | None) -> list[DriftAlert]:
        if self._monitor is not None:
            return self._monitor.list_alerts(name, open_only=open_only, limit=limit)
        query: dict[str, str | int] = {}
        if name:
            query["prompt"] = name
        if open_only:
            query["open"] = "true"
        # Newest page first: the pages read go back in time, and the list is shown oldest first.
        pages = self._pages("/v1/drift/alerts", DriftAlert, query=query, limit=limit)
        return [alert for page in reversed(pages) for alert in page]

    def acknowledge(self, alert_id: int, actor: str, reason: str) -> DriftAlert:
        if self._monitor is not None:
            return self._monitor.acknowledge(alert_id, actor=actor, reason=reason)
        answer = self._post(f"/v1/drift/alerts/{alert_id}/acknowledge", {"reason": reason}, actor)
        result: DriftAlert = self._parse(DriftAlert, answer)
        return result

    def pin(self, name: str, start: datetime, end: datetime, actor: str, reason: str) -> PromptDrift:
        if self._monitor is not None:
            return self._monitor.pin_baseline(name, start=start, end=end, actor=actor, reason=reason)
        body = {"start": start.isoformat(), "end": end.isoformat(), "reason": reason}
        result: PromptDrift = self._parse(
            PromptDrift, self._post(f"/v1/prompts/{name}/drift/baseline", body, actor)
        )
        return result


def _value(kind: str, value: float | None, n: int | None) -> str:
    if value is None:
        return "-"
    shown = f"{value:.2%}" if kind == "proportion" else f"{value:.4g}"
    return shown if n is None else f"{shown} (n={n})"


def _signal_row(signal: SignalDrift) -> list[object]:
    baseline = signal.baseline
    since = signal.since_baseline
    statistic = "-" if signal.statistic is None else f"{signal.statistic:.1f} / {signal.threshold:.1f}"
    return [
        signal.attribute,
        signal.status.value,
        "-" if baseline is None else _value(signal.kind, baseline.estimate, baseline.n),
        "-" if since is None else _value(signal.kind, since.estimate, since.n),
        statistic,
    ]


def _show_prompt(status: PromptDrift) -> None:
    pinned = ""
    if status.pinned is not None:
        pinned = f"  baseline pinned {time_text(status.pinned.start)} - {time_text(status.pinned.end)}"
    click.echo(
        f"{status.prompt}@{status.version}  live since {time_text(status.live_since)}  judged until "
        f"{time_text(status.judged_until)}  snapshot model {status.snapshot_model or '-'}{pinned}"
    )
    if status.signals:
        headers = ["signal", "status", "baseline", "since baseline", "ln M / threshold"]
        click.echo(format_table(headers, [_signal_row(s) for s in status.signals]))
        for signal in status.signals:
            if signal.status.value in ("baselining", "no_verdict"):
                click.echo(f"  {signal.attribute}: {signal.reason}")
    else:
        click.echo("no signal reported for this version yet")
    if status.models:
        models = ", ".join(
            f"{m.model} ({m.calls} calls{'' if m.accepted else ', unexpected'})" for m in status.models
        )
        click.echo(f"models: {models}")
    for alert in status.alerts:
        click.echo(f"open alert #{alert.id} ({time_text(alert.detected_at)}): {alert.summary}")


@drift.command("status")
@click.argument("name", required=False)
@common_options
@click.pass_obj
def drift_status(state: State, name: str | None) -> None:
    """Show each prompt's live stable version against its baseline (or NAME's, in detail)."""
    if name is not None:
        validate_prompt_name(name)
    reach = _Drift(state)
    try:
        found = reach.status(name)
    finally:
        reach.close()
    if state.as_json:
        print_json(found)
        return
    if name is not None:
        _show_prompt(found[0])
        return
    rows = []
    for status in found:
        states = [s.status.value for s in status.signals]
        rows.append(
            [
                status.prompt,
                status.version,
                time_text(status.live_since),
                sum(s == "watching" for s in states),
                sum(s == "baselining" for s in states),
                sum(s == "alarm" for s in states),
                len(status.alerts),
            ]
        )
    headers = ["prompt", "version", "live since", "watching", "baselining", "alarm", "open alerts"]
    click.echo(format_table(headers, rows) if rows else "no prompts")


@drift.command("alerts")
@click.argument("name", required=False)
@click.option("--open", "open_only", is_flag=True, help="Only the alerts not acknowledged.")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True, help="The newest N.")
@click.option("--all", "every", is_flag=True, help="Every drift alert, however many.")
@common_options
@click.pass_obj
def drift_alerts(state: State, name: str | None, open_only: bool, limit: int, every: bool) -> None:
    """List drift alerts (of NAME), oldest first.

    From a control plane, the list is read page after page until it holds N alerts (all of them
    with --all).
    """
    if name is not None:
        validate_prompt_name(name)
    reach = _Drift(state)
    try:
        found = reach.alerts(name, open_only, None if every else limit)
    finally:
        reach.close()
    if state.as_json:
        print_json(found)
        return
    rows = [
        [
            a.id,
            f"{a.prompt}@{a.version}",
            a.subject,
            time_text(a.detected_at),
            "open" if a.open else f"acknowledged by {a.acknowledged_by}",
        ]
        for a in found
    ]
    click.echo(
        format_table(["id", "version", "subject", "detected", "state"], rows) if rows else "no drift alerts"
    )
    for alert in found:
        click.echo(f"#{alert.id}: {alert.summary}")


@drift.command("ack")
@click.argument("alert_id", type=click.IntRange(min=1))
@click.option("--reason", required=True, help="Why, for the alert log.")
@click.option("--actor", default=default_actor, show_default="$USER or 'cli'", help="Who acknowledges.")
@common_options
@click.pass_obj
def drift_ack(state: State, alert_id: int, reason: str, actor: str) -> None:
    """Acknowledge drift alert ALERT_ID: recorded, and its signal re-baselines from now."""
    if not reason.strip():
        fail_input("--reason must not be empty: say why, for the alert log")
    reach = _Drift(state)
    try:
        alert = reach.acknowledge(alert_id, actor, reason)
    finally:
        reach.close()
    if state.as_json:
        print_json(alert)
        return
    again = "the model is accepted" if alert.subject_kind == "model" else "the signal re-baselines from now"
    click.echo(
        f"acknowledged drift alert #{alert.id} ({alert.prompt}@{alert.version} {alert.subject}): {again}"
    )


@drift.command("baseline")
@click.argument("name")
@click.option(
    "--from", "start", type=click.DateTime(), required=True, help="Start of the period (UTC if no zone)."
)
@click.option(
    "--until", "end", type=click.DateTime(), required=True, help="End of the period (UTC if no zone)."
)
@click.option("--reason", required=True, help="Why, for the alert log.")
@click.option("--actor", default=default_actor, show_default="$USER or 'cli'", help="Who pins it.")
@common_options
@click.pass_obj
def drift_baseline(state: State, name: str, start: datetime, end: datetime, reason: str, actor: str) -> None:
    """Pin the drift baseline of NAME's live stable version to a period: every signal is judged again
    against it. A period with too few samples of a signal gives that signal no verdict."""
    validate_prompt_name(name)
    if not reason.strip():
        fail_input("--reason must not be empty: say why, for the alert log")
    start, end = _utc(start), _utc(end)
    if end <= start:
        fail_input("--until must be after --from")
    reach = _Drift(state)
    try:
        status = reach.pin(name, start, end, actor, reason)
    finally:
        reach.close()
    if state.as_json:
        print_json(status)
        return
    _show_prompt(status)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
