"""The demo's report: what happened to the canary, as terminal text and as one self-contained HTML file.

The HTML has no scripts and no external assets: each signal is an inline SVG chart of canary against
stable over time, with the rollout's transitions marked, followed by the decision and its evidence.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CohortPoint", "DemoRecord", "DriftEvent", "Tick", "Transition", "render_html", "render_text"]


@dataclass(frozen=True, slots=True)
class CohortPoint:
    """One signal of one cohort at one moment: samples so far in the rollout and the estimate."""

    n: int
    estimate: float | None


@dataclass(frozen=True, slots=True)
class Tick:
    """The rollout at one moment of the demo (``t`` seconds after traffic started)."""

    t: float
    state: str
    step: int
    canary_percent: float
    stable: dict[str, CohortPoint]
    canary: dict[str, CohortPoint]


@dataclass(frozen=True, slots=True)
class Transition:
    """A change of the routing flag, as the audit log recorded it."""

    t: float
    action: str
    actor: str
    reason: str
    evidence: Any = None


@dataclass(frozen=True, slots=True)
class DriftEvent:
    """What drift monitoring did after the promotion (``demo --drift``): ``baseline`` complete, the
    provider's model ``change``, an ``alert`` (``subject`` its signal or model)."""

    t: float
    kind: str
    text: str
    subject: str | None = None


@dataclass(slots=True)
class DemoRecord:
    """Everything the report shows about one demo run."""

    prompt: str
    stable_version: int
    canary_version: int
    rollout_id: str
    scenario: str
    outcome: str = "running"
    calls: int = 0
    ticks: list[Tick] = field(default_factory=list)
    transitions: list[Transition] = field(default_factory=list)
    signal_labels: dict[str, str] = field(default_factory=dict)
    drift: list[DriftEvent] = field(default_factory=list)

    def label(self, signal: str) -> str:
        """A reader's name for a signal attribute."""
        return self.signal_labels.get(signal, signal)

    def signals(self) -> list[str]:
        """The signals seen in any tick, in first-seen order."""
        seen: dict[str, None] = {}
        for tick in self.ticks:
            for name in (*tick.stable, *tick.canary):
                seen.setdefault(name, None)
        return list(seen)


def _fmt(value: float | None, proportion: bool) -> str:
    if value is None:
        return "-"
    return f"{value:.1%}" if proportion else f"{value:.1f}"


def _is_proportion(record: DemoRecord, signal: str) -> bool:
    points = [
        p.estimate for tick in record.ticks for p in (tick.stable.get(signal), tick.canary.get(signal)) if p
    ]
    return all(e is None or 0.0 <= e <= 1.0 for e in points) and ".check." in signal


def decisive_evidence(record: DemoRecord) -> Transition | None:
    """The transition that ended the rollout (rollback, pause or promote), if any."""
    for transition in reversed(record.transitions):
        if transition.action in ("rollback", "promote", "pause"):
            return transition
    return None


def render_text(record: DemoRecord) -> str:
    """A short plain-text summary for the terminal."""
    lines = [
        f"Rollout {record.rollout_id} of {record.prompt}: v{record.stable_version} (stable) -> "
        f"v{record.canary_version} (canary), scenario: {record.scenario}",
        f"Outcome: {record.outcome.upper()} after {record.calls} LLM calls"
        + (f" and {record.ticks[-1].t:.0f} s" if record.ticks else ""),
        "",
        "Transitions:",
    ]
    for tr in record.transitions:
        lines.append(f"  {tr.t:6.1f}s  {tr.action:<8} by {tr.actor}: {tr.reason}")
    if record.ticks:
        last = record.ticks[-1]
        lines += ["", f"{'signal':<34} {'stable':>16} {'canary':>16}"]
        for signal in record.signals():
            proportion = _is_proportion(record, signal)
            s, c = last.stable.get(signal), last.canary.get(signal)
            s_text = "-" if s is None else f"{_fmt(s.estimate, proportion)} (n={s.n})"
            c_text = "-" if c is None else f"{_fmt(c.estimate, proportion)} (n={c.n})"
            lines.append(f"{record.label(signal):<34} {s_text:>16} {c_text:>16}")
    decisive = decisive_evidence(record)
    if decisive is not None and isinstance(decisive.evidence, dict):
        summaries = _rule_summaries(decisive.evidence)
        if summaries:
            lines += ["", "Decision evidence:"] + [f"  {s}" for s in summaries]
    if record.drift:
        lines += ["", "Drift monitoring of the promoted version:"]
        lines += [f"  {event.t:6.1f}s  {event.kind:<8} {event.text}" for event in record.drift]
    return "\n".join(lines)


def _rule_summaries(evidence: dict[str, Any]) -> list[str]:
    verdict = evidence.get("verdict", evidence)
    rules = verdict.get("rules", []) if isinstance(verdict, dict) else []
    out = []
    for rule in rules:
        if isinstance(rule, dict) and rule.get("status") in ("breach", "held") and rule.get("summary"):
            out.append(str(rule["summary"]))
    return out


_WIDTH, _HEIGHT, _PAD = 640, 220, 44
_COLOURS = {"stable": "#2b6cb0", "canary": "#dd6b20"}


def _chart(record: DemoRecord, signal: str) -> str:
    proportion = _is_proportion(record, signal)
    series: dict[str, list[tuple[float, float]]] = {"stable": [], "canary": []}
    for tick in record.ticks:
        for cohort, points in (("stable", tick.stable), ("canary", tick.canary)):
            point = points.get(signal)
            if point is not None and point.estimate is not None:
                series[cohort].append((tick.t, point.estimate))
    values = [v for pts in series.values() for _, v in pts]
    if not values:
        return ""
    t_max = max(record.ticks[-1].t, 1.0)
    lo, hi = min(values), max(values)
    if proportion:
        lo, hi = min(lo, 0.9), 1.0
    if hi - lo < 1e-9:
        lo, hi = lo - 1, hi + 1

    def x(t: float) -> float:
        return _PAD + (t / t_max) * (_WIDTH - 2 * _PAD)

    def yy(v: float) -> float:
        return (_HEIGHT - _PAD) - (v - lo) / (hi - lo) * (_HEIGHT - 2 * _PAD)

    parts = [
        f'<svg viewBox="0 0 {_WIDTH} {_HEIGHT}" width="{_WIDTH}" height="{_HEIGHT}" role="img" '
        f'aria-label="{html.escape(record.label(signal))}">',
        f'<rect x="{_PAD}" y="{_PAD}" width="{_WIDTH - 2 * _PAD}" height="{_HEIGHT - 2 * _PAD}" '
        'fill="#fafafa" stroke="#ccc"/>',
    ]
    for frac in (0.0, 0.5, 1.0):
        v = lo + frac * (hi - lo)
        parts.append(
            f'<text x="{_PAD - 6}" y="{yy(v) + 4:.1f}" font-size="11" text-anchor="end">'
            f"{html.escape(_fmt(v, proportion))}</text>"
        )
    parts.append(
        f'<text x="{_WIDTH - _PAD}" y="{_HEIGHT - _PAD + 16}" font-size="11" text-anchor="end">'
        f"{t_max:.0f} s</text>"
    )
    for event in record.drift:
        if event.kind != "baseline" and (event.subject is None or event.subject == signal):
            ex = x(min(event.t, t_max))
            parts.append(
                f'<line x1="{ex:.1f}" y1="{_PAD}" x2="{ex:.1f}" y2="{_HEIGHT - _PAD}" stroke="#c53030" '
                'stroke-dasharray="2,2"/>'
                f'<text x="{ex + 3:.1f}" y="{_HEIGHT - _PAD - 4}" font-size="10" fill="#c53030">'
                f"{html.escape(event.kind)}</text>"
            )
    for tr in record.transitions:
        tx = x(min(tr.t, t_max))
        parts.append(
            f'<line x1="{tx:.1f}" y1="{_PAD}" x2="{tx:.1f}" y2="{_HEIGHT - _PAD}" stroke="#999" '
            'stroke-dasharray="3,3"/>'
            f'<text x="{tx + 3:.1f}" y="{_PAD - 4}" font-size="10">{html.escape(tr.action)}</text>'
        )
    for cohort, pts in series.items():
        if pts:
            path = " ".join(f"{x(t):.1f},{yy(v):.1f}" for t, v in pts)
            parts.append(
                f'<polyline fill="none" stroke="{_COLOURS[cohort]}" stroke-width="2" points="{path}"/>'
            )
    parts.append("</svg>")
    return "".join(parts)


def render_html(record: DemoRecord) -> str:
    """The whole report as one HTML page."""
    esc = html.escape
    charts = []
    for signal in record.signals():
        svg = _chart(record, signal)
        if svg:
            charts.append(f"<h3>{esc(record.label(signal))}</h3>{svg}")
    rows = "".join(
        f"<tr><td>{tr.t:.1f} s</td><td>{esc(tr.action)}</td><td>{esc(tr.actor)}</td>"
        f"<td>{esc(tr.reason)}</td></tr>"
        for tr in record.transitions
    )
    decisive = decisive_evidence(record)
    evidence = ""
    if decisive is not None and decisive.evidence is not None:
        summaries = _rule_summaries(decisive.evidence) if isinstance(decisive.evidence, dict) else []
        items = "".join(f"<li>{esc(s)}</li>" for s in summaries)
        evidence = (
            f"<h2>Decision: {esc(decisive.action)}</h2><ul>{items}</ul>"
            f"<details><summary>Full evidence (JSON)</summary><pre>"
            f"{esc(json.dumps(decisive.evidence, indent=2, default=str))}</pre></details>"
        )
    drift = ""
    if record.drift:
        drift_rows = "".join(
            f"<tr><td>{event.t:.1f} s</td><td>{esc(event.kind)}</td><td>{esc(event.text)}</td></tr>"
            for event in record.drift
        )
        drift = (
            "<h2>Drift monitoring of the promoted version</h2>"
            f"<table><tr><th>time</th><th>event</th><th>what</th></tr>{drift_rows}</table>"
        )
    legend = " ".join(
        f'<span style="color:{colour}">&#9632; {cohort}</span>' for cohort, colour in _COLOURS.items()
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>otel-prompt-canary demo: {esc(record.prompt)} {esc(record.outcome)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:760px;margin:2em auto;color:#222}}
table{{border-collapse:collapse}}td,th{{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left}}
pre{{background:#f5f5f5;padding:1em;overflow:auto;font-size:12px}}</style></head><body>
<h1>Canary of {esc(record.prompt)}: {esc(record.outcome)}</h1>
<p>Rollout <code>{esc(record.rollout_id)}</code>: v{record.stable_version} (stable) against
v{record.canary_version} (canary), scenario <b>{esc(record.scenario)}</b>, {record.calls} LLM calls.</p>
<p>{legend}</p>
{"".join(charts)}
<h2>Transitions</h2><table><tr><th>time</th><th>action</th><th>actor</th><th>reason</th></tr>{rows}</table>
{evidence}
{drift}
</body></html>
"""
