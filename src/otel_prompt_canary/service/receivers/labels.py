"""What an Alertmanager or Grafana alert asks for: the label mapping, shared by both receivers.

Both send the same alert object (``status``, ``labels``, ``annotations``, ``startsAt``,
``fingerprint``...). An alert names what it is about through its labels:

- ``prompt`` (or ``gen_ai_prompt_name``, the Prometheus name of the metric attribute): the prompt,
  required;
- ``action``: ``rollback``, ``pause`` or ``alert``, required;
- ``rollout_id`` (or ``prompt_canary_rollout_id``): the rollout, optional; without it the alert is
  about the prompt's current rollout, provided that rollout started before the alert fired;
- ``environment`` (or ``prompt_canary_environment``): the environment of that current rollout,
  optional (default: the default environment); a rollout named by its id is in its own environment.

A firing alert asks for its action; a resolved one is recorded and changes nothing. The
de-duplication key of an alert is ``<source>:<fingerprint>:<startsAt>:<status>``: every repeat of one
firing alert (Alertmanager's ``repeat_interval``, a retry, a copy from another replica) is one
decision; the same alert firing again later (a new ``startsAt``) is a new one. An alert without
``startsAt`` names no time, so its key cannot tell a repeat from a new firing: it de-duplicates for
the retention's ``untimed_alerts`` window (1 hour by default), after which the same alert is decided
again, instead of being a duplicate for ever.

Malformed input is refused whole (HTTP 422 or 404) before anything is decided, so that a payload
either is fully understood or changes nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from otel_prompt_canary.errors import InvalidInputError
from otel_prompt_canary.loop.alerts import AlertAction, AlertNotice, AlertStatus
from otel_prompt_canary.loop.retention import Retention
from otel_prompt_canary.registry.models import (
    canonical_json,
    validate_environment_name,
    validate_prompt_name,
)
from otel_prompt_canary.service.settings import ServiceSettings

__all__ = ["LabelledPayload", "PrometheusAlert", "labelled_notices", "notice_of", "untimed_window"]

PROMPT_LABELS = ("prompt", "gen_ai_prompt_name")
ROLLOUT_LABELS = ("rollout_id", "prompt_canary_rollout_id")
ENVIRONMENT_LABELS = ("environment", "prompt_canary_environment")
_ACTIONS = ", ".join(a.value for a in AlertAction)


class PrometheusAlert(BaseModel):
    """One alert of an Alertmanager (version 4) or Grafana webhook payload.

    Fields not listed here are accepted and kept in the evidence: both senders add fields over time.
    """

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)

    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: datetime | None = Field(None, alias="startsAt")
    ends_at: datetime | None = Field(None, alias="endsAt")
    generator_url: str = Field("", alias="generatorURL")
    fingerprint: str = Field("", max_length=128)


def _label(labels: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    for name in names:
        value = labels.get(name)
        if value is not None and value.strip():
            return value.strip()
    return None


def _fingerprint(alert: PrometheusAlert) -> str:
    if alert.fingerprint:
        return alert.fingerprint
    return "l" + hashlib.sha256(canonical_json(alert.labels).encode()).hexdigest()[:16]


def _fired_at(alert: PrometheusAlert) -> datetime | None:
    # Alertmanager and Grafana send Go's zero time when there is none.
    if alert.starts_at is None or alert.starts_at.year <= 1:
        return None
    if alert.starts_at.tzinfo is None:
        return alert.starts_at.replace(tzinfo=UTC)
    return alert.starts_at.astimezone(UTC)


def _describe(source: str, alert: PrometheusAlert, fired_at: datetime | None) -> str:
    name = alert.labels.get("alertname") or alert.labels.get("grafana_folder") or "alert"
    since = f" since {fired_at.isoformat()}" if fired_at is not None else ""
    summary = alert.annotations.get("summary") or alert.annotations.get("description") or ""
    text = f"{source} alert {name!r} {alert.status}{since}"
    return (text + (f": {summary}" if summary else ""))[:2000]


def untimed_window(settings: ServiceSettings) -> int | None:
    """The de-duplication window, in seconds, of an alert without ``startsAt`` (None: for ever)."""
    return Retention.parse(settings.retention).untimed_alert_window_seconds


def notice_of(
    source: Literal["alertmanager", "grafana"],
    alert: PrometheusAlert,
    index: int,
    *,
    context: Mapping[str, Any],
    untimed_window_seconds: int | None = None,
) -> AlertNotice:
    """The notice an alert makes (see the module docstring); 422 naming the alert when it is unclear.

    ``context`` (receiver, group key, external URL...) is stored with the alert as evidence. An
    alert without ``startsAt`` de-duplicates for ``untimed_window_seconds`` (None: for ever).
    """
    where = f"body.alerts.{index}.labels"
    prompt = _label(alert.labels, PROMPT_LABELS)
    if prompt is None:
        raise InvalidInputError(
            f"{where}: no 'prompt' label: the alert rule must label its alerts with prompt: <prompt name>"
        )
    try:
        validate_prompt_name(prompt)
    except InvalidInputError as exc:
        raise InvalidInputError(f"{where}.prompt: {exc}") from None
    action_text = _label(alert.labels, ("action",))
    if action_text is None:
        raise InvalidInputError(
            f"{where}: no 'action' label: the alert rule must label its alerts with action: {_ACTIONS}"
        )
    try:
        action = AlertAction(action_text.lower())
    except ValueError:
        raise InvalidInputError(
            f"{where}.action: {action_text[:40]!r} is not an action an alert can ask for: use {_ACTIONS}"
        ) from None
    rollout_id = _label(alert.labels, ROLLOUT_LABELS)
    if rollout_id is not None and len(rollout_id) > 256:
        raise InvalidInputError(f"{where}.rollout_id: at most 256 characters")
    environment = _label(alert.labels, ENVIRONMENT_LABELS)
    if environment is not None:
        try:
            validate_environment_name(environment)
        except InvalidInputError as exc:
            raise InvalidInputError(f"{where}.environment: {exc}") from None
    fired_at = _fired_at(alert)
    stamp = fired_at.isoformat() if fired_at is not None else "-"
    evidence = {**context, "alert": alert.model_dump(mode="json", by_alias=True)}
    return AlertNotice(
        source=source,
        key=f"{source}:{_fingerprint(alert)}:{stamp}:{alert.status}"[:256],
        prompt=prompt,
        action=action,
        status=AlertStatus(alert.status),
        rollout_id=rollout_id,
        environment=environment,
        fired_at=fired_at,
        actor=source,
        reason=_describe(source, alert, fired_at),
        alert=json.loads(json.dumps(evidence)),
        dedup_window_seconds=untimed_window_seconds if fired_at is None else None,
    )


class LabelledPayload(Protocol):
    """A notification of Prometheus-style alerts (Alertmanager's or Grafana's)."""

    @property
    def alerts(self) -> list[PrometheusAlert]:
        """The alerts it carries."""
        ...

    def context(self) -> dict[str, object]:
        """What the evidence of each alert keeps of the notification around it."""
        ...


def labelled_notices(
    source: Literal["alertmanager", "grafana"],
    payload: LabelledPayload,
    *,
    untimed_window_seconds: int | None = None,
) -> list[AlertNotice]:
    """The notices of every alert of ``payload``, in order; 422 naming the first unclear alert.

    An alert without ``startsAt`` de-duplicates for ``untimed_window_seconds`` (None: for ever).
    """
    context = payload.context()
    return [
        notice_of(source, alert, i, context=context, untimed_window_seconds=untimed_window_seconds)
        for i, alert in enumerate(payload.alerts)
    ]
