"""The HTML report of an evaluation run: one self-contained page, no script, nothing fetched.

It shows the run (version, dataset, model, status), the pass rate of each signal, the comparison
with the baseline run (each signal's change, test and p-value, the cases that got worse), the gate's
verdict when one was judged, and every case: its tags, outcome, what failed, the judge's score and
the beginning of the answer. Cases that got worse come first, then failed cases, then the rest.
"""

from __future__ import annotations

from html import escape
from typing import Final

from otel_prompt_canary.evals.comparison import RunComparison
from otel_prompt_canary.evals.gate import GateVerdict
from otel_prompt_canary.evals.results import JUDGE_SCORE, EvalRun

__all__ = ["html_report"]

_STYLE: Final = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:72rem;color:#1d2433;padding:0 1rem}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:2rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0}
th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #dde2ea;vertical-align:top}
th{background:#f3f5f9}
.passed{color:#0b6b3a}.failed,.error{color:#a4161a;font-weight:600}
.worse td{background:#fff1f0}
.verdict{padding:.6rem .8rem;border-radius:6px}.ok{background:#e7f6ec}.ko{background:#fdecea}
pre{white-space:pre-wrap;margin:0;font-size:12px;max-height:8rem;overflow:auto}
.muted{color:#667085}
"""


def _rate(passed: int, total: int) -> str:
    return f"{passed / total:.1%} ({passed}/{total})" if total else "-"


def _summary(run: EvalRun) -> str:
    totals = run.totals
    rows = [
        ("prompt version", f"{run.prompt}@{run.version}"),
        ("dataset", f"{run.dataset}@{run.dataset_version}"),
        ("model", f"{run.model or '-'} ({run.provider})"),
        ("status", run.status + (f": {run.note}" if run.note else "")),
        ("cases", f"{totals.passed} passed, {totals.failed} failed, {totals.errors} errors"),
        ("run", f"{run.run_id}, {run.source}, by {run.actor}, {run.started_at:%Y-%m-%d %H:%M:%S}Z"),
    ]
    cells = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)
    return f"<table>{cells}</table>"


def _signals(run: EvalRun) -> str:
    totals = run.totals
    rows = [f"<tr><td>pass</td><td>{_rate(totals.passed, totals.cases)}</td></tr>"]
    for name, tally in totals.checks.items():
        rows.append(f"<tr><td>{escape(name)}</td><td>{_rate(tally.passed, tally.applied)}</td></tr>")
    if totals.judge_mean is not None:
        rows.append(f"<tr><td>judge (mean)</td><td>{totals.judge_mean:.2f} (n={totals.judged})</td></tr>")
    return "<table><tr><th>signal</th><th>value</th></tr>" + "".join(rows) + "</table>"


def _comparison(comparison: RunComparison) -> str:
    base = comparison.baseline
    head = (
        f"<p>Against {escape(base.prompt)}@{base.version} (run {escape(base.run_id)}), "
        f"{comparison.paired_cases} cases paired. One-sided tests: is this run worse?</p>"
    )
    rows = []
    for s in comparison.signals:
        fmt = "{:.1%}" if s.kind == "proportion" else "{:.2f}"
        worse = ", ".join(s.worse_cases) or "-"
        rows.append(
            f"<tr><td>{escape(s.signal)}</td><td>{fmt.format(s.baseline)}</td><td>{fmt.format(s.candidate)}</td>"
            f"<td>{s.worse}</td><td>{s.better}</td><td>{s.p_value:.3g}</td><td>{escape(s.test)}</td>"
            f"<td>{escape(worse)}</td></tr>"
        )
    table = (
        "<table><tr><th>signal</th><th>baseline</th><th>this run</th><th>worse</th><th>better</th>"
        "<th>p</th><th>test</th><th>cases that got worse</th></tr>" + "".join(rows) + "</table>"
    )
    return head + table


def _cases(run: EvalRun, worse: set[str]) -> str:
    order = {"error": 1, "failed": 1, "passed": 2}
    ranked = sorted(run.cases, key=lambda c: (0 if c.case_id in worse else order[c.status], c.case_id))
    rows = []
    for c in ranked:
        judge = f"{c.scores[JUDGE_SCORE]:.2f}" if JUDGE_SCORE in c.scores else "-"
        marker = ' class="worse"' if c.case_id in worse else ""
        failures = "<br>".join(escape(f) for f in c.failures) or '<span class="muted">-</span>'
        rows.append(
            f"<tr{marker}><td>{escape(c.case_id)}</td><td>{escape(', '.join(c.tags))}</td>"
            f'<td class="{c.status}">{c.status}</td><td>{failures}</td><td>{judge}</td>'
            f"<td><pre>{escape(c.output)}</pre></td></tr>"
        )
    return (
        "<table><tr><th>case</th><th>tags</th><th>outcome</th><th>what failed</th><th>judge</th>"
        "<th>answer (beginning)</th></tr>" + "".join(rows) + "</table>"
    )


def html_report(
    run: EvalRun, *, comparison: RunComparison | None = None, gate: GateVerdict | None = None
) -> str:
    """The report of ``run``, with its comparison and gate verdict when given, as an HTML page."""
    worse = set(comparison.worse_cases) if comparison is not None else set()
    title = f"Evaluation of {escape(run.prompt)}@{run.version} on {escape(run.dataset)}@{run.dataset_version}"
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{title}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{title}</h1>",
    ]
    if gate is not None:
        css = "ok" if gate.passed else "ko"
        parts.append(f"<p class='verdict {css}'>{escape(gate.explain())}</p>")
    parts += ["<h2>Run</h2>", _summary(run), "<h2>Signals</h2>", _signals(run)]
    if comparison is not None:
        parts += ["<h2>Compared with the baseline</h2>", _comparison(comparison)]
    parts += ["<h2>Cases</h2>", _cases(run, worse), "</body></html>"]
    return "\n".join(parts)
