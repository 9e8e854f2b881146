"""The console keeps the environment shown through every form and link (a review made in staging
comes back to staging), and its audit trail shows the reviews among the routing flag's records,
by time, page after page; the prompt page lists the newest reviews."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

from otel_prompt_canary.registry.models import Action
from otel_prompt_canary.registry.reviews import ReviewVerdict, SqlReviews
from tests.console.console_client import Page
from tests.console.console_fixtures import RHEA, RITA, Console
from tests.console.test_actions import two_versions


def _environment_of(url: str) -> list[str]:
    return parse_qs(urlsplit(url).query).get("environment", [])


def test_a_review_made_in_staging_comes_back_to_staging(console: Console) -> None:
    two_versions(console)
    rita = console.signed_in(RITA)
    review = rita.get("/console/prompts/greeter/versions/2", environment="staging")
    assert "Flag in staging" in review.main
    assert _environment_of(review.form("/console/prompts/greeter/versions/2/reviews").action) == ["staging"]
    page = rita.submit(review, "/console/prompts/greeter/versions/2/reviews", verdict="approve", comment="ok")
    assert page.status == 200
    assert _environment_of(str(page.response.url)) == ["staging"]
    assert "Flag in staging" in page.main and "Approved by rita: it may roll out." in page.main


def _check_keeps_staging(page: Page, where: str) -> None:
    assert page.status == 200, (where, page.text)
    for href in page.links:
        path = urlsplit(href).path
        if not path.startswith("/console") or path.startswith("/console/static/"):
            continue
        environments = _environment_of(href)
        # A link names its environment: the one shown, or the other one it is explicitly about
        # (each environment's flag and rollout on the prompts and prompt pages).
        assert environments, (where, href)
        if environments != ["staging"]:
            assert path.endswith("/rollout") and environments == ["production"], (where, href)
    selectors = 0
    for form in page.forms:
        if form.method == "post":
            if form.action == "/console/sign-out":
                continue  # it leads to the sign-in form, which shows no environment
            assert _environment_of(form.action) == ["staging"], (where, form.action)
        elif "environment" in form.fields:
            assert form.fields["environment"] == "staging", (where, form)
        else:
            selectors += 1  # the environment selector: a <select>, staging selected
    assert selectors == 1, (where, page.forms)
    assert re.search(r'<option value="staging" selected>', page.html), where


def test_every_form_and_link_keeps_the_environment(console: Console) -> None:
    two_versions(console)
    console.start("greeter", 2, environment="staging")
    admin = console.signed_in()
    pages = [
        "/console/",
        "/console/prompts/greeter",
        "/console/prompts/greeter/versions/1",
        "/console/prompts/greeter/versions/2",
        "/console/prompts/greeter/rollout",
        "/console/audit",
        "/console/alerts",
        "/console/drift",
    ]
    for path in pages:
        _check_keeps_staging(admin.get(path, environment="staging"), path)
    for action in ("advance", "pause", "rollback"):
        confirm = admin.get("/console/prompts/greeter/rollout/confirm", environment="staging", action=action)
        _check_keeps_staging(confirm, f"confirm {action}")
    rollout = admin.get("/console/prompts/greeter/rollout", environment="staging")
    assert re.search(r'data-poll="[^"]*environment=staging', rollout.html)
    # An error page's links keep it too.
    missing = admin.get("/console/prompts/nope", environment="staging")
    assert missing.status == 404
    assert all(_environment_of(h) == ["staging"] for h in missing.links if h.startswith("/console/prompts"))
    # Acting from staging comes back to staging.
    confirm = admin.get("/console/prompts/greeter/rollout/confirm", environment="staging", action="pause")
    after = admin.submit(confirm, "/console/prompts/greeter/rollout/pause", reason="hold")
    assert _environment_of(str(after.response.url)) == ["staging"]
    assert "Rollout of greeter in staging" in after.main


def test_the_environment_selector_keeps_the_prompt_shown(console: Console) -> None:
    two_versions(console)
    page = console.signed_in(RHEA).get("/console/audit", environment="staging", prompt="greeter")
    selector = next(f for f in page.forms if f.method == "get" and "environment" not in f.fields)
    assert selector.fields == {"prompt": "greeter"}


def _rows(page: Page) -> list[str]:
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", page.html, re.S)[1:]
    return [" ".join(re.sub(r"<[^>]+>", " ", row).split()) for row in rows]


def test_reviews_are_in_the_audit_trail_by_time_and_on_the_prompt_page(console: Console) -> None:
    two_versions(console)
    rita = console.signed_in(RITA)
    review = rita.get("/console/prompts/greeter/versions/2")
    action = "/console/prompts/greeter/versions/2/reviews"
    rita.submit(review, action, verdict="request_changes", comment="too curt")
    rita.submit(review, action, verdict="approve", comment="ok now")
    console.start("greeter", 2)  # Rita approves once more ("fine"), then the admin starts it
    reader = console.signed_in(RHEA)
    texts = _rows(reader.get("/console/audit"))
    assert len(texts) == 4, texts
    assert re.fullmatch(r"1 \S+ \S+ greeter start admin.* idle → ramping .*", texts[0]), texts
    assert re.fullmatch(r"review 3 \S+ \S+ greeter review approve v2 rita — — fine", texts[1]), texts
    assert re.fullmatch(r"review 2 \S+ \S+ greeter review approve v2 rita — — ok now", texts[2]), texts
    assert re.fullmatch(r"review 1 \S+ \S+ greeter review request changes v2 rita — — too curt", texts[3])
    # One prompt's trail has them too; another prompt's has none of them.
    assert len(_rows(reader.get("/console/audit", prompt="greeter"))) == 4
    two_versions(console, "other")
    assert _rows(reader.get("/console/audit", prompt="other")) == []

    prompt = reader.get("/console/prompts/greeter")
    reviews = prompt.main.split("Reviews", 1)[1].split("Rollouts in production", 1)[0]
    newest = r"approve v2 by rita · \S+ \S+ ?: fine .*approve v2 by rita · \S+ \S+ ?: ok now"
    assert re.search(newest, reviews), reviews
    assert "request changes v2 by rita" in reviews and "too curt" in reviews
    assert "No version of other has been reviewed yet." in reader.get("/console/prompts/other").main


def test_the_trail_pages_through_reviews_and_records_in_time_order(console: Console) -> None:
    two_versions(console)
    registry = console.registry
    reviews = SqlReviews(registry)
    # 60 reviews with rollout transitions among them: more than a page (50) of each kind mixed.
    for i in range(60):
        reviews.record_review("greeter", 2, ReviewVerdict.APPROVE, principal=f"rev-{i}", comment=f"c{i}")
        if i == 10:
            registry.start_rollout("greeter", 2, actor="t", reason="go", ramp=(1.0, 50.0, 100.0))
        elif i > 10 and i % 10 == 0:
            action = Action.PAUSE if (i // 10) % 2 == 0 else Action.RESUME
            registry.transition("greeter", action, actor="t", reason=f"at {i}")
    reader = console.signed_in(RHEA)
    seen: list[str] = []
    page = reader.get("/console/audit")
    pages = 1
    while True:
        seen += _rows(page)
        nexts = re.findall(r'<a href="([^"]+)" rel="next">', page.html)
        if not nexts:
            break
        page = reader.follow(nexts[0].replace("&amp;", "&"))
        pages += 1
    assert pages == 2
    comments = [int(m.group(1)) for row in seen if (m := re.search(r" c(\d+)$", row))]
    assert comments == list(range(59, -1, -1))  # every review once, newest first
    records = [row for row in seen if not row.startswith("review ")]
    assert [r.split()[0] for r in records] == ["5", "4", "3", "2", "1"]
    # Each record sits between the reviews written around it.
    start = seen.index(next(r for r in seen if " start " in r))
    assert seen[start - 1].endswith(" c11") and seen[start + 1].endswith(" c10")
