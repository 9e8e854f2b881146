"""The console in a real browser: a person reviews a version, starts its rollout, watches it advance on
live reports and rolls it back, in headless Chromium against ``prompt-canary serve``.

Each page the walk passes through is checked for what it says, not only that it answered, and
written to ``docs/console/<page>.png`` (laptop width; the rollout page also at phone width), the
screenshots docs/console.md shows. The control plane runs in its own process (``served_console``),
with two environments, one approval required before a rollout, the controller's clock 600 times
faster, and a credentials file naming an author, a reviewer and an operator.
"""

from __future__ import annotations

import itertools
import math
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from otel_prompt_canary.analysis import MeanStats
from tests.cli.cli_helpers import process_environment, serving
from tests.service.loop_factories import (
    AM_AUTH,
    alertmanager_payload,
    prometheus_alert,
    proportion,
    report_envelope,
)
from tests.support.auth import ALERTMANAGER_TOKEN, REPORT_TOKEN, TOKEN, Credential, write_credentials
from tests.support.browser import (
    PHONE,
    SCREENSHOTS,
    console_messages,
    field,
    loaded_from,
    page_text,
    screenshot,
    viewport,
    wait_for,
    wait_for_text,
)
from tests.support.control_plane import post_report
from tests.support.waiting import eventually

PROMPT = "greeter"
STAGING = "staging"
STABLE_SYSTEM = "You greet the customer by name."
CANARY_SYSTEM = "You greet the customer by name, warmly, in one short sentence."
CHECKS = ("prompt_canary.check.json_valid", "prompt_canary.check.refusal")
JUDGE = "prompt_canary.score.judge"


#: The author pushes versions; the reviewer approves them; the operator moves rollouts.
AUTHOR = Credential("alice", ["operate"])
REVIEWER = Credential("rita", ["review"])
OPERATOR = Credential("omar", ["operate"])
PEOPLE = (AUTHOR, REVIEWER, OPERATOR)

#: The environments served, in promotion order.
ENVIRONMENTS = (STAGING, "production")
#: How much faster than written the policies' durations run (a 600 s step takes 1 s).
TIME_SCALE = 600


@dataclass(frozen=True)
class ServedConsole:
    """A running control plane: its base URL and a client of its API."""

    url: str
    api: httpx.Client

    def console(self, path: str = "/") -> str:
        """The URL of a console page (``path`` below ``/console``)."""
        return f"{self.url}/console{path}"


@pytest.fixture
def served_console(tmp_path: Path) -> Iterator[ServedConsole]:
    """``prompt-canary serve`` in a subprocess with :data:`PEOPLE`, the admin token
    (:data:`~tests.support.auth.TOKEN`), the reporting one and Alertmanager's; stopped at the end."""
    env = process_environment(
        OTEL_PROMPT_CANARY_TOKEN=TOKEN,
        OTEL_PROMPT_CANARY_REPORT_TOKEN=REPORT_TOKEN,
        OTEL_PROMPT_CANARY_ALERTMANAGER_TOKEN=ALERTMANAGER_TOKEN,
    )
    args = (
        *("--registry", str(tmp_path / "console.db")),
        *("--credentials-file", str(write_credentials(tmp_path, PEOPLE))),
        *("--environments", ",".join(ENVIRONMENTS)),
        *("--required-approvals", "1"),
        *("--time-scale", str(TIME_SCALE)),
        *("--controller-interval", "0.2"),
    )
    with serving(*args, env=env) as (url, _), httpx.Client(base_url=url, timeout=10) as api:
        yield ServedConsole(url=url, api=api)


def _push_two_versions(console: ServedConsole) -> None:
    """Version 1 and version 2 of :data:`PROMPT`, pushed by the author (version 2 changes the
    system message and the model)."""
    for system, model in ((STABLE_SYSTEM, "sim-small"), (CANARY_SYSTEM, "sim-large")):
        spec = {
            "name": PROMPT,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": "{{ name }}"}],
            "model": model,
            "commit_message": "warmer greeting" if system == CANARY_SYSTEM else "first greeting",
        }
        pushed = console.api.post("/v1/prompts", json=spec, headers=AUTHOR.auth)
        assert pushed.status_code == 201, pushed.text


def _sign_in(browser: WebDriver, console: ServedConsole, person: Credential) -> None:
    browser.get(console.console("/"))
    wait_for_text(browser, "Sign in with a credential")
    field(browser, "token").send_keys(person.token)
    browser.find_element(By.CSS_SELECTOR, "form[action='/console/sign-in'] button[type=submit]").click()
    wait_for(browser, lambda: person.principal in _header(browser), what=f"{person.principal} signed in")
    # Signed out, pages answered 401 with the sign-in form: the only failures the page may log.
    refused = console_messages(browser)
    assert all("status of 401 (Unauthorized)" in message for message in refused), refused


def _sign_out(browser: WebDriver) -> None:
    browser.find_element(By.CSS_SELECTOR, "form.who button[type=submit]").click()
    wait_for_text(browser, "Sign in with a credential")


def _start_rollout(browser: WebDriver, console: ServedConsole, ramp: str, reason: str) -> None:
    """Fill and send the form that starts version 2's rollout in staging, on its review page."""
    browser.get(console.console(f"/prompts/{PROMPT}/versions/2?environment={STAGING}"))
    wait_for_text(browser, f"Start a rollout in {STAGING}")
    field(browser, "ramp").send_keys(ramp)
    field(browser, "reason").send_keys(reason)
    browser.find_element(By.CSS_SELECTOR, "form.start button[type=submit]").click()


def _header(browser: WebDriver) -> str:
    text: str = browser.find_element(By.CSS_SELECTOR, "header.top").text
    return text


def _route(console: ServedConsole) -> dict[str, Any]:
    answer = console.api.get(f"/v1/routes/{PROMPT}", params={"environment": STAGING}, headers=OPERATOR.auth)
    assert answer.status_code == 200, answer.text
    route: dict[str, Any] = answer.json()
    return route


def _current_step(browser: WebDriver) -> str:
    """The ramp step the rollout page marks as the current one ("10% (now)")."""
    steps = browser.find_elements(By.CSS_SELECTOR, "ol.ramp li.current")
    return steps[0].text if steps else ""


def _report_healthy_traffic(console: ServedConsole, rollout_id: str, number: int) -> None:
    """One second of traffic as an application reports it: the canary passes its checks as often as
    the stable version or more, and the judge grades both alike; ``number`` varies the counts from
    one report to the next. Too few samples for a step on its own (the default policy asks 100)."""
    window = str(math.floor(time.time()))
    stable: dict[str, Any] = {check: {window: proportion(40, 40 - number % 2)} for check in CHECKS}
    canary: dict[str, Any] = {check: {window: proportion(40, 40 - (number % 3 == 0))} for check in CHECKS}
    grades = [0.7 + 0.02 * ((number + i) % 10) for i in range(10)]
    stable[JUDGE] = {window: MeanStats.of(grades).model_dump(mode="json")}
    canary[JUDGE] = {window: MeanStats.of(g + 0.01 for g in grades).model_dump(mode="json")}
    envelope = report_envelope(
        rollout_id, prompt=PROMPT, stable=stable, canary=canary, origin="application", source="app-0"
    )
    answer = post_report(console.url, envelope, token=REPORT_TOKEN)
    assert answer.status_code == 200, answer.text
    assert answer.json()["outcome"] == "merged", answer.text
    time.sleep(0.2)


def test_a_reviewer_approves_and_an_operator_rolls_out_watches_and_rolls_back(
    browser: WebDriver, served_console: ServedConsole
) -> None:
    console = served_console
    _push_two_versions(console)

    # Signed out, every page is the sign-in form.
    browser.get(console.console(f"/prompts/{PROMPT}"))
    wait_for_text(browser, "Sign in with a credential")
    assert "greeter" not in page_text(browser)
    screenshot(browser, "sign-in")

    # The operator may not start the rollout of a version nobody has approved yet.
    _sign_in(browser, console, OPERATOR)
    _start_rollout(browser, console, "10,50,100", "warmer greeting")
    wait_for(browser, lambda: browser.find_elements(By.CSS_SELECTOR, "p.problem"), what="the refusal")
    refusal = browser.find_element(By.CSS_SELECTOR, "p.problem").text
    assert "needs 1 approval by someone other than its author alice" in refusal, refusal
    assert _route(console)["state"] == "idle"
    assert console_messages(browser)  # answered with a 4xx status: the page logs it
    screenshot(browser, "refused")
    _sign_out(browser)

    # The reviewer: the prompts, the prompt, then version 2's diff review, approved with a comment.
    _sign_in(browser, console, REVIEWER)
    assert browser.current_url.startswith(console.console()), browser.current_url
    wait_for_text(browser, PROMPT)
    prompts = page_text(browser)
    assert "2 (latest v2)" in prompts and "staging" in prompts and "production" in prompts
    screenshot(browser, "prompts")

    browser.find_element(By.LINK_TEXT, PROMPT).click()
    wait_for_text(browser, "Routing flag per environment")
    prompt_page = page_text(browser)
    assert "warmer greeting" in prompt_page and "alice" in prompt_page
    screenshot(browser, "prompt")

    browser.get(console.console(f"/prompts/{PROMPT}/versions/2?environment={STAGING}"))
    wait_for_text(browser, "blast radius")
    review = page_text(browser)
    diff_lines = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "pre.diff span")]
    assert any(line.startswith("+") and "warmly" in line for line in diff_lines), diff_lines
    assert any(line.startswith("-") and STABLE_SYSTEM in line for line in diff_lines), diff_lines
    assert "sim-small" in review and "sim-large" in review  # the snapshot's model change
    assert "Start a rollout" not in review  # a reviewer does not operate
    field(browser, "comment").send_keys("Warmer, still one sentence.")
    browser.find_element(By.CSS_SELECTOR, "form.review button[value=approve]").click()
    wait_for_text(browser, "Warmer, still one sentence.")
    approved = browser.find_element(By.CSS_SELECTOR, "ul.reviews").text
    assert "approve" in approved and "rita" in approved, approved
    reviews = console.api.get(f"/v1/prompts/{PROMPT}/versions/2/reviews", headers=OPERATOR.auth)
    assert [(r["verdict"], r["principal"]) for r in reviews.json()] == [("approve", "rita")], reviews.text
    screenshot(browser, "review")
    _sign_out(browser)

    # The operator starts the rollout from the review page.
    _sign_in(browser, console, OPERATOR)
    _start_rollout(browser, console, "10,50,100", "warmer greeting, approved by rita")
    wait_for_text(browser, f"Rollout of {PROMPT} in {STAGING}")
    route = _route(console)
    assert (route["state"], route["canary_version"], route["canary_weight_bp"]) == ("ramping", 2, 1000)
    rollout_id = route["rollout_id"]
    assert rollout_id in page_text(browser)
    assert _current_step(browser).startswith("10%")
    transitions = browser.find_element(By.CSS_SELECTOR, "table.audit").text
    assert "start" in transitions and "omar" in transitions, transitions

    # Live reports: the controller advances the step; the open page shows it by itself.
    reports = itertools.count()
    eventually(
        lambda: _route(console)["step"] >= 1,
        what="the controller advancing the ramp on healthy reports",
        timeout=90,
        between=lambda: _report_healthy_traffic(console, rollout_id, next(reports)),
    )
    wait_for(
        browser, lambda: _current_step(browser).startswith("50%"), what="the page showing 50%", timeout=30
    )
    live = page_text(browser)
    assert "advance" in browser.find_element(By.CSS_SELECTOR, "table.audit").text
    assert "prompt_canary.check.json_valid" in live  # the signal charts, canary vs stable
    assert browser.find_elements(By.CSS_SELECTOR, "figure.signal svg"), "no signal chart"
    screenshot(browser, "rollout")
    with viewport(browser, PHONE):
        assert browser.execute_script("return document.documentElement.clientWidth") == PHONE.width
        screenshot(browser, "rollout-phone")

    # Roll back from the page, behind its confirmation.
    browser.find_element(By.CSS_SELECTOR, "a.action-rollback").click()
    wait_for_text(browser, f"Rollback the rollout of {PROMPT} in {STAGING}?")
    assert "Every request goes back to the stable version" in page_text(browser)
    assert _route(console)["state"] == "ramping"  # nothing happens before the confirmation
    screenshot(browser, "confirm")
    field(browser, "reason").send_keys("the greeting reads as too familiar")
    browser.find_element(By.CSS_SELECTOR, "form.confirm button[type=submit]").click()
    wait_for(
        browser,
        lambda: "rolled_back" in browser.find_element(By.CSS_SELECTOR, "div.live").text,
        what="the page showing the rollback",
    )
    route = _route(console)
    assert (route["state"], route["canary_weight_bp"], route["stable_version"]) == ("rolled_back", 0, 1)
    production = console.api.get(
        f"/v1/routes/{PROMPT}", params={"environment": "production"}, headers=OPERATOR.auth
    ).json()
    assert production["state"] == "idle" and production["rollout_id"] is None
    history = console.api.get(
        f"/v1/prompts/{PROMPT}/rollout/history", params={"environment": STAGING}, headers=OPERATOR.auth
    ).json()
    assert [(r["action"], r["principal"]) for r in history][-1] == ("rollback", "omar")

    # The audit trail, the alert log and drift status name what happened.
    browser.get(console.console(f"/audit?environment={STAGING}"))
    wait_for_text(browser, "the greeting reads as too familiar")
    assert "omar" in page_text(browser)
    screenshot(browser, "audit")
    # Alertmanager's rule fires late, for a rollout already rolled back: logged, nothing moves.
    alert = prometheus_alert(PROMPT, "rollback", environment=STAGING)
    fired = console.api.post("/v1/alerts/alertmanager", json=alertmanager_payload(alert), headers=AM_AUTH)
    assert fired.status_code == 200, fired.text
    browser.get(console.console(f"/alerts?environment={STAGING}"))
    wait_for_text(browser, "canary JSON validity below stable")
    logged = browser.find_element(By.CSS_SELECTOR, "table.alerts").text
    assert PROMPT in logged and "alertmanager" in logged and "rollback" in logged, logged
    assert "ignored" in logged and "has finished" in logged, logged
    assert _route(console)["revision"] == route["revision"]
    screenshot(browser, "alerts")
    browser.get(console.console("/drift"))
    wait_for_text(browser, "Drift of the live stable versions")
    drift = page_text(browser)
    assert f"{PROMPT} v1" in drift and "No signal reported for this version yet" in drift, drift
    screenshot(browser, "drift")

    # Everything came from the control plane itself, and nothing failed since the last sign-in.
    assert loaded_from(browser) == {console.url}
    assert console_messages(browser) == []


def test_the_console_docs_show_every_screenshot_and_only_those() -> None:
    shown = set(re.findall(r"\]\(console/([\w-]+\.png)\)", (SCREENSHOTS.parent / "console.md").read_text()))
    taken = {path.name for path in SCREENSHOTS.glob("*.png")}
    assert shown == taken and "rollout-phone.png" in shown
