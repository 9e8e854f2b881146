from __future__ import annotations

import re

from otel_prompt_canary.demo.report import CohortPoint, DemoRecord, Tick, Transition, render_html, render_text

JSON = "prompt_canary.check.json_valid"
TOKENS = "prompt_canary.score.output_tokens"


def record() -> DemoRecord:
    rec = DemoRecord(
        prompt="support-bot", stable_version=1, canary_version=2, rollout_id="r1", scenario="regression"
    )
    for i in range(10):
        rec.ticks.append(
            Tick(
                t=float(i),
                state="ramping",
                step=0 if i < 5 else 1,
                canary_percent=5 if i < 5 else 20,
                stable={JSON: CohortPoint(100 * (i + 1), 0.99), TOKENS: CohortPoint(100 * (i + 1), 40.0)},
                canary={
                    JSON: CohortPoint(10 * (i + 1), 0.99 - 0.01 * i),
                    TOKENS: CohortPoint(10 * (i + 1), 80.0),
                },
            )
        )
    evidence = {"verdict": {"rules": [{"status": "breach", "summary": "json_valid worse than stable"}]}}
    rec.transitions += [
        Transition(0.0, "start", "demo", "canary of v2"),
        Transition(5.0, "advance", "controller", "step healthy"),
        Transition(9.0, "rollback", "controller", "json_valid breach", evidence),
    ]
    rec.outcome = "rolled_back"
    rec.calls = 1100
    rec.signal_labels = {JSON: "JSON valid", TOKENS: "output tokens"}
    return rec


def test_text_report_names_the_outcome_signals_and_evidence() -> None:
    text = render_text(record())
    assert "Outcome: ROLLED_BACK after 1100 LLM calls and 9 s" in text
    assert "rollback by controller: json_valid breach" in text
    assert re.search(r"JSON valid\s+99\.0% \(n=1000\)\s+90\.0% \(n=100\)", text)
    assert re.search(r"output tokens\s+40\.0 \(n=1000\)\s+80\.0 \(n=100\)", text)
    assert "json_valid worse than stable" in text


def test_html_report_has_one_chart_per_signal_with_both_cohorts() -> None:
    page = render_html(record())
    assert page.count("<svg") == 2
    assert page.count("<polyline") == 4  # stable and canary, per signal
    assert page.count("stroke-dasharray") == 6  # three transitions marked on each chart
    assert "Decision: rollback" in page
    assert "<script" not in page


def test_report_escapes_untrusted_text() -> None:
    rec = record()
    rec.transitions.append(Transition(9.5, "alert", "x", "<img src=x onerror=alert(1)>"))
    assert "<img" not in render_html(rec)
