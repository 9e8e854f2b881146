"""The console's pages show what the API knows: prompts with their flags per environment (searched,
paged), a prompt's versions and labels, a version's review, a rollout live with its verdict and
charts, the audit trail, the alert log and drift; in the environment chosen."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

from otel_prompt_canary.evals import read_dataset
from otel_prompt_canary.evals.results import CaseResult, EvalRun
from otel_prompt_canary.evals.store import SqlEvalStore
from otel_prompt_canary.registry.models import PromptSpec
from tests.console.console_fixtures import OMAR, RHEA, SAM, Console
from tests.service.loop_factories import proportion, report_envelope
from tests.support.auth import REPORT_TOKEN


def test_the_prompts_page_lists_each_prompt_with_its_flag_in_every_environment(console: Console) -> None:
    console.push("greeter", "Greet {{ name }} warmly.")
    console.push("greeter", "Greet {{ name }} briefly.")
    console.push("summary", "Summarise {{ text }}.")
    console.start("greeter", 2, environment="staging", ramp="10,100")
    page = console.signed_in(RHEA).get("/console/")
    assert page.status == 200
    rows = re.findall(r"<tr>(.*?)</tr>", page.html, re.S)
    texts = [re.sub(r"<[^>]+>|\s+", " ", row).split() for row in rows[1:]]
    assert [" ".join(t) for t in texts] == [
        "greeter 2 (latest v2) ramping stable v1 · canary v2 at 10% live idle stable v1",
        "summary 1 (latest v1) idle stable v1 idle stable v1",
    ]
    assert "<th>staging</th><th>production</th>" in page.html


def test_search_and_pages_with_hundreds_of_prompts(console: Console) -> None:
    for number in range(120):
        console.registry.push(_spec(f"p{number:03d}"))
    person = console.signed_in(RHEA)
    first = person.get("/console/")
    names = re.findall(r'href="/console/prompts/(p\d+)\?', first.html)
    assert names == [f"p{n:03d}" for n in range(50)]
    second = person.follow(next(h for h in first.links if "after=" in h))
    assert re.findall(r'href="/console/prompts/(p\d+)\?', second.html) == [
        f"p{n:03d}" for n in range(50, 100)
    ]
    third = person.follow(next(h for h in second.links if "after=" in h))
    assert re.findall(r'href="/console/prompts/(p\d+)\?', third.html) == [
        f"p{n:03d}" for n in range(100, 120)
    ]
    assert not [h for h in third.links if "after=" in h]

    found = person.get("/console/", q="P11")
    assert re.findall(r'href="/console/prompts/(p\d+)\?', found.html) == [f"p{n}" for n in range(110, 120)]
    assert "No prompt name contains “zzz”." in person.get("/console/", q="zzz").main


def test_the_prompt_page_shows_versions_labels_and_rollouts(console: Console) -> None:
    console.push("greeter", "Greet {{ name }} warmly.", commit_message="first")
    console.push("greeter", "Greet {{ name }} briefly.", commit_message="shorter")
    console.start("greeter", 2, environment="staging")
    page = console.signed_in(RHEA).get("/console/prompts/greeter", environment="staging")
    assert page.status == 200
    main = page.main
    assert "staging ramping stable v1 · canary v2 at 1%" in main
    assert "production idle stable v1" in main
    assert re.search(r"v2 \S+ \S+ alice shorter — staging: canary 1% approved by rita", main), main
    assert re.search(r"v1 \S+ \S+ alice first — staging: stable production: stable", main), main
    assert (
        "Rollouts in staging" in main and "v1 → v2" in main and "by admin (try it [approved by rita])" in main
    )


def test_the_review_page_shows_the_diff_the_snapshot_the_blast_radius_and_evaluations(
    console: Console,
) -> None:
    console.push("support-bot", "Answer {{ question }} politely.", model="gpt-4.1-mini")
    console.push(
        "support-bot",
        "Answer {{ question }} briefly.",
        model="gpt-4.1",
        environment={"rag_index_id": "kb-2024-12"},
        commit_message="terser",
    )
    _two_runs(console)
    page = console.signed_in(RHEA).get("/console/prompts/support-bot/versions/2")
    assert page.status == 200
    main = page.main
    assert "support-bot@2" in main and "by alice" in main and "“terser”" in main
    assert "blast radius: system" in main
    assert '<span class="del">-Answer {{ question }} politely.</span>' in page.html
    assert '<span class="add">+Answer {{ question }} briefly.</span>' in page.html
    assert "model gpt-4.1-mini gpt-4.1" in main
    assert "RAG index — kb-2024-12" in main
    assert "tiny v1: 2 paired cases" in main
    assert re.search(r"pass rate 100\.0% 50\.0%", main), main
    assert "Reviews are not available" not in main
    assert "No approval" not in main and "needs 1 approval by someone other than its author alice" in main


def test_comparing_with_the_stable_version(console: Console) -> None:
    for text in ("One {{ x }}.", "Two {{ x }}.", "Three {{ x }}."):
        console.push("counter", text)
    page = console.signed_in(RHEA).get("/console/prompts/counter/versions/3", against="stable")
    assert "support" not in page.main
    assert "counter@1 -> counter@3" in page.main
    assert '<span class="del">-One {{ x }}.</span>' in page.html
    assert person_page_status(console, "/console/prompts/counter/versions/3", against="zero") == 422


def test_the_rollout_page_shows_ramp_verdict_charts_and_actions(console: Console) -> None:
    console.push("greeter", "Greet {{ name }} warmly.")
    console.push("greeter", "Greet {{ name }} briefly.")
    console.start("greeter", 2, ramp="5,50,100")
    rollout_id = console.route("greeter")["rollout_id"]
    start = int(time.time()) // 60 * 60 - 600
    for minute in range(10):
        window = str(start + minute * 60)
        envelope = report_envelope(
            rollout_id,
            window_seconds=60,
            stable={"prompt_canary.check.json_valid": {window: proportion(100, 99)}},
            canary={"prompt_canary.check.json_valid": {window: proportion(20, 17)}},
        )
        answer = console.api.post(
            "/v1/reports", json=envelope, headers={"Authorization": f"Bearer {REPORT_TOKEN}"}
        )
        assert answer.status_code == 200, answer.text
    person = console.signed_in(OMAR)
    page = person.get("/console/prompts/greeter/rollout")
    assert page.status == 200
    main = page.main
    assert f"{rollout_id} : v1 → v2" in main
    assert "5% (now) 50% 100%" in main
    assert "Verdict" in main and "step 1 of 3 at 5%" in main
    assert "The step waits for:" in main
    assert "json_valid.relative" in main
    # Charts: the weight, and the signal with both cohorts, their bands and the rule's limit.
    assert page.html.count('<svg class="chart"') == 2
    assert 'class="weight"' in page.html
    signal = page.html.split("prompt_canary.check.json_valid: canary vs stable over time")[-1]
    for part in (
        'class="band stable"',
        'class="band canary"',
        'class="line stable" d="M',
        'class="line canary" d="M',
    ):
        assert part in signal
    assert "limit of rule json_valid.relative" in signal
    assert "buckets of 5 s" in main or "buckets of" in main
    assert [h.split("action=")[1].split("&")[0] for h in page.links if "/rollout/confirm" in h] == [
        "advance",
        "pause",
        "rollback",
    ]
    # The live part polls a fragment of the same content, without the page around it.
    live = person.get("/console/prompts/greeter/rollout/live")
    assert live.status == 200
    assert "<html" not in live.html and "step 1 of 3 at 5%" in live.text
    assert 'data-poll="/console/prompts/greeter/rollout/live?environment=production"' in page.html


def test_the_rollout_page_without_a_rollout(console: Console) -> None:
    console.push("greeter", "Greet {{ name }} warmly.")
    page = console.signed_in(RHEA).get("/console/prompts/greeter/rollout")
    assert page.status == 200
    assert "No rollout of greeter in production yet." in page.main


def test_the_audit_trail_names_the_principals(console: Console) -> None:
    console.push("greeter", "Greet {{ name }} warmly.")
    console.push("greeter", "Greet {{ name }} briefly.")
    console.start("greeter", 2)
    person = console.signed_in(OMAR)
    page = person.get("/console/prompts/greeter/rollout/confirm", action="pause")
    person.submit(page, "/console/prompts/greeter/rollout/pause", reason="hold on")
    audit = person.get("/console/audit")
    rows = re.findall(r"<tr>(.*?)</tr>", audit.html, re.S)[1:]
    texts = [" ".join(re.sub(r"<[^>]+>", " ", row).split()) for row in rows]
    assert re.fullmatch(r"2 \S+ \S+ greeter pause omar ramping → paused .* hold on", texts[0]), texts
    assert re.fullmatch(r"1 \S+ \S+ greeter start admin( \(api\))? idle → ramping .*", texts[1]), texts
    # Staging's flag never changed: its trail holds only the review, which belongs to no environment.
    staging = person.get("/console/audit", environment="staging")
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", staging.html, re.S)[1:]
    texts = [" ".join(re.sub(r"<[^>]+>", " ", row).split()) for row in rows]
    assert len(texts) == 1, texts
    assert re.fullmatch(r"review 1 \S+ \S+ greeter review approve v2 rita — — fine", texts[0]), texts
    assert "greeter" in person.get("/console/audit", prompt="greeter").main


def test_the_alert_log_shows_each_alert_and_its_outcome(console: Console) -> None:
    console.push("greeter", "Greet {{ name }} warmly.")
    console.push("greeter", "Greet {{ name }} briefly.")
    console.start("greeter", 2)
    alert = {
        "receiver": "prompt-canary",
        "status": "firing",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "FormatBroken", "gen_ai_prompt_name": "greeter", "action": "pause"},
                "annotations": {"summary": "format validity fell"},
                "startsAt": datetime.now(UTC).isoformat(),
                "fingerprint": "f1",
            }
        ],
        "version": "4",
        "groupKey": "g",
        "truncatedAlerts": 0,
    }
    answer = console.api.post("/v1/alerts/alertmanager", json=alert)
    assert answer.status_code in (200, 202), answer.text
    page = console.signed_in(RHEA).get("/console/alerts")
    assert page.status == 200
    assert "alertmanager" in page.main and "greeter" in page.main and "pause" in page.main
    assert "format validity fell" in page.main


def test_drift_is_shown_or_said_to_be_off(console: Console) -> None:
    page = console.signed_in(RHEA).get("/console/drift")
    assert page.status == 200
    assert "Drift monitoring is off on this control plane" in page.main


def test_an_unknown_environment_is_refused_with_the_served_ones(console: Console) -> None:
    page = console.signed_in(RHEA).get("/console/", environment="qa")
    assert page.status == 404
    assert "unknown environment 'qa': this control plane serves staging, production" in page.main


def test_an_unknown_prompt_is_a_page_saying_so(console: Console) -> None:
    page = console.signed_in(RHEA).get("/console/prompts/nope")
    assert page.status == 404
    assert "nope" in page.main


def test_pages_are_not_cached_nor_framed(console: Console) -> None:
    page = console.signed_in(RHEA).get("/console/")
    headers = page.response.headers
    assert headers["cache-control"] == "no-store"
    assert headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]


def test_the_static_files_are_served_from_the_package(console: Console) -> None:
    person = console.person()
    css = person.client.get(f"{console.url}/console/static/console.css")
    js = person.client.get(f"{console.url}/console/static/console.js")
    assert css.status_code == 200 and "svg.chart" in css.text
    assert js.status_code == 200 and "data-poll" in js.text
    assert "http" not in js.text.replace("http-equiv", "")  # nothing fetched from elsewhere


def person_page_status(console: Console, path: str, **params: str) -> int:
    return console.signed_in(RHEA).get(path, **params).status


def _spec(name: str) -> PromptSpec:
    return PromptSpec(name=name, template="Hello {{ who }}.")


def _two_runs(console: Console) -> None:
    store = SqlEvalStore(console.registry)
    dataset = store.push_dataset(
        read_dataset(
            "name: tiny\nprompt: support-bot\ncases:\n"
            "  - id: a\n    variables: {question: q1}\n"
            "  - id: b\n    variables: {question: q2}\n",
            source="tiny.yaml",
        )
    ).dataset
    now = datetime.now(UTC)
    for version, outcomes in ((1, (True, True)), (2, (True, False))):
        store.record_run(
            EvalRun(
                run_id=f"{version:08x}",
                prompt="support-bot",
                version=version,
                dataset="tiny",
                dataset_version=dataset.version,
                dataset_hash=dataset.content_hash,
                provider="openai",
                status="complete",
                actor="ana",
                started_at=now,
                finished_at=now,
                cases=tuple(
                    CaseResult(
                        case_id=case,
                        status="passed" if ok else "failed",
                        checks={"must_contain": ok},
                    )
                    for case, ok in zip(("a", "b"), outcomes, strict=True)
                ),
            )
        )


def test_a_principal_limited_to_staging_sees_staging_only(console: Console) -> None:
    console.push("greeter", "Greet {{ name }} warmly.")
    console.push("greeter", "Greet {{ name }} briefly.")
    console.start("greeter", 2, environment="production")
    person = console.signed_in(SAM)
    page = person.get("/console/")
    assert page.status == 200
    assert "<th>staging</th>" in page.html and "<th>production</th>" not in page.html
    assert re.findall(r'<option value="(\w+)"', page.html) == ["staging"]
    assert "canary" not in page.main  # production's rollout is not shown
    prompt = person.get("/console/prompts/greeter")
    assert "staging idle stable v1" in prompt.main and "production" not in prompt.main
    refused = person.get("/console/prompts/greeter/rollout", environment="production")
    assert refused.status == 403
    message = refused.main
    assert (
        "principal 'sam' may not read the routing flags, rollouts and audit trail in environment " in message
    )
    assert "'production': that needs the role 'read'" in message
    assert person.get("/console/audit", environment="production").status == 403
