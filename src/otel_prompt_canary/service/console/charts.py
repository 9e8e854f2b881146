"""The rollout page's charts, drawn on the server as SVG: no script, no asset, any screen.

:func:`weight_chart` draws the canary's weight over time as steps; :func:`signal_chart` draws one
signal, stable and canary over time, each with its 95% band, and the limit of a rule on it: a
threshold (absolute rule) as a flat line, a margin (relative rule) as a line that follows stable.
Both scale to their container (``viewBox``, width 100%); every number shown is escaped text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from markupsafe import Markup, escape

from otel_prompt_canary.service.console.series import Point, SignalSeries, WeightStep

__all__ = ["RuleLimit", "signal_chart", "weight_chart"]

_WIDTH, _HEIGHT = 640, 200
_LEFT, _RIGHT, _TOP, _BOTTOM = 48, 12, 12, 28


@dataclass(frozen=True, slots=True)
class RuleLimit:
    """A rule's limit on a signal: ``threshold`` (absolute rules) or stable plus ``offset``
    (relative rules with a margin: minus the margin when a decrease harms, plus it otherwise)."""

    rule_id: str
    threshold: float | None = None
    offset: float | None = None


class _Frame:
    """Maps (time, value) to the plot area."""

    def __init__(self, t0: float, t1: float, v0: float, v1: float) -> None:
        if t1 <= t0:
            t1 = t0 + 1
        if v1 <= v0:
            v0, v1 = v0 - 0.5, v1 + 0.5
        self.t0, self.t1, self.v0, self.v1 = t0, t1, v0, v1

    def x(self, t: float) -> float:
        return _LEFT + (t - self.t0) / (self.t1 - self.t0) * (_WIDTH - _LEFT - _RIGHT)

    def y(self, v: float) -> float:
        return _TOP + (1 - (v - self.v0) / (self.v1 - self.v0)) * (_HEIGHT - _TOP - _BOTTOM)


def _time(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%m-%d %H:%M")


def _number(v: float) -> str:
    return f"{v:.3g}"


def _axes(frame: _Frame, unit: str = "") -> list[str]:
    bottom, right = _HEIGHT - _BOTTOM, _WIDTH - _RIGHT
    parts = [
        f'<line class="axis" x1="{_LEFT}" y1="{bottom}" x2="{right}" y2="{bottom}"/>',
        f'<line class="axis" x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{bottom}"/>',
    ]
    for value in (frame.v0, (frame.v0 + frame.v1) / 2, frame.v1):
        y = frame.y(value)
        parts.append(f'<line class="grid" x1="{_LEFT}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}"/>')
        label = escape(_number(value) + unit)
        parts.append(f'<text class="tick" x="{_LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">{label}</text>')
    parts.append(f'<text class="tick" x="{_LEFT}" y="{_HEIGHT - 8}">{escape(_time(frame.t0))}</text>')
    parts.append(
        f'<text class="tick" x="{right}" y="{_HEIGHT - 8}" text-anchor="end">{escape(_time(frame.t1))}</text>'
    )
    return parts


def _svg(title: str, body: list[str]) -> Markup:
    return Markup(
        f'<svg class="chart" viewBox="0 0 {_WIDTH} {_HEIGHT}" preserveAspectRatio="xMidYMid meet" '
        f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>{"".join(body)}</svg>'
    )


def weight_chart(steps: Sequence[WeightStep], now: datetime) -> Markup:
    """The canary weight over time (0-100%), from the first step until ``now``."""
    title = "Canary weight over time"
    if not steps:
        return _svg(title, ['<text class="empty" x="320" y="100" text-anchor="middle">no transitions</text>'])
    t0 = steps[0].at.timestamp()
    t1 = max(now.timestamp(), steps[-1].at.timestamp())
    frame = _Frame(t0, t1, 0.0, 100.0)
    path: list[str] = []
    for i, step in enumerate(steps):
        x, y = frame.x(step.at.timestamp()), frame.y(step.weight_bp / 100)
        if i == 0:
            path.append(f"M{x:.1f},{y:.1f}")
        else:
            path.append(f"H{x:.1f}V{y:.1f}")
    path.append(f"H{frame.x(t1):.1f}")
    body = _axes(frame, "%")
    body.append(f'<path class="weight" d="{"".join(path)}"/>')
    for step in steps:
        x, y = frame.x(step.at.timestamp()), frame.y(step.weight_bp / 100)
        label = escape(
            f"{step.action} by {step.actor}: {step.weight_bp / 100:g}% at {_time(step.at.timestamp())}"
        )
        body.append(f'<circle class="mark" cx="{x:.1f}" cy="{y:.1f}" r="3"><title>{label}</title></circle>')
    return _svg(title, body)


def _line(frame: _Frame, points: Sequence[Point], half: float, value: str = "estimate") -> str:
    coords = [f"{frame.x(p.start + half):.1f},{frame.y(getattr(p, value)):.1f}" for p in points]
    return "M" + "L".join(coords) if coords else ""


def _band(frame: _Frame, points: Sequence[Point], half: float) -> str:
    if not points:
        return ""
    upper = [f"{frame.x(p.start + half):.1f},{frame.y(p.high):.1f}" for p in points]
    lower = [f"{frame.x(p.start + half):.1f},{frame.y(p.low):.1f}" for p in reversed(points)]
    return "M" + "L".join(upper + lower) + "Z"


#: Up to this many buckets per cohort, each also gets a dot (its values on hover) and a whisker
#: (its 95% interval): a line or a band needs two buckets to show, and a young rollout has one.
_MARKED_POINTS = 60


def _marks(frame: _Frame, points: Sequence[Point], half: float, cohort: str) -> list[str]:
    if len(points) > _MARKED_POINTS:
        return []
    parts: list[str] = []
    for p in points:
        x = frame.x(p.start + half)
        label = escape(
            f"{cohort} {_time(p.start)}: {_number(p.estimate)} "
            f"(95% {_number(p.low)} to {_number(p.high)}, n={p.n})"
        )
        parts.append(
            f'<line class="whisker {cohort}" x1="{x:.1f}" y1="{frame.y(p.low):.1f}" '
            f'x2="{x:.1f}" y2="{frame.y(p.high):.1f}"/>'
        )
        parts.append(
            f'<circle class="dot {cohort}" cx="{x:.1f}" cy="{frame.y(p.estimate):.1f}" r="3">'
            f"<title>{label}</title></circle>"
        )
    return parts


def _per_bucket(frame: _Frame, points: Sequence[Point], offset: float, bucket: int) -> str:
    """The limit a relative rule puts on each bucket: stable's estimate plus ``offset``, drawn
    across the bucket (so that a single bucket shows it too)."""
    return "".join(
        f"M{frame.x(p.start):.1f},{frame.y(p.estimate + offset):.1f}H{frame.x(p.start + bucket):.1f}"
        for p in points
    )


def signal_chart(series: SignalSeries, limits: Sequence[RuleLimit] = ()) -> Markup:
    """One signal over time: stable and canary with their 95% bands, and each rule's limit."""
    title = f"{series.attribute}: canary vs stable over time"
    points = [*series.stable, *series.canary]
    if not points:
        return _svg(title, ['<text class="empty" x="320" y="100" text-anchor="middle">no samples</text>'])
    half = series.bucket_seconds / 2
    t0 = min(p.start for p in points)
    t1 = max(p.start for p in points) + series.bucket_seconds
    values = [v for p in points for v in (p.low, p.high)]
    values += [limit.threshold for limit in limits if limit.threshold is not None]
    values += [
        p.estimate + limit.offset for limit in limits if limit.offset is not None for p in series.stable
    ]
    v0, v1 = min(values), max(values)
    pad = (v1 - v0) * 0.05
    v0, v1 = v0 - pad, v1 + pad
    if series.kind == "proportion":  # a share never leaves [0, 1]
        v0, v1 = max(0.0, v0), min(1.0, v1)
    frame = _Frame(t0, t1, v0, v1)
    body = _axes(frame)
    body.append(f'<path class="band stable" d="{_band(frame, series.stable, half)}"/>')
    body.append(f'<path class="band canary" d="{_band(frame, series.canary, half)}"/>')
    for limit in limits:
        label = escape(f"limit of rule {limit.rule_id}")
        if limit.threshold is not None:
            y = frame.y(limit.threshold)
            body.append(
                f'<line class="limit" x1="{_LEFT}" y1="{y:.1f}" x2="{_WIDTH - _RIGHT}" y2="{y:.1f}">'
                f"<title>{label}: {escape(_number(limit.threshold))}</title></line>"
            )
        elif limit.offset is not None and series.stable:
            drawn = _per_bucket(frame, series.stable, limit.offset, series.bucket_seconds)
            body.append(
                f'<path class="limit" d="{drawn}">'
                f"<title>{label}: stable {escape(f'{limit.offset:+g}')}</title></path>"
            )
    body.append(f'<path class="line stable" d="{_line(frame, series.stable, half)}"/>')
    body.append(f'<path class="line canary" d="{_line(frame, series.canary, half)}"/>')
    body += _marks(frame, series.stable, half, "stable")
    body += _marks(frame, series.canary, half, "canary")
    return _svg(title, body)
