"""docs/dashboards.md stays true: its tables, names and examples match the files and a real scrape."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

from tests.collector.support import parse_prometheus
from tests.dashboards.loop import Regression
from tests.dashboards.support import REPO, RULES, RULES_TEST, fast_policy_rules, rule_groups
from tests.support.services import promtool

DOC = REPO / "docs" / "dashboards.md"


def _yaml_blocks() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def _words(text: str) -> str:
    return " ".join(text.split())


def test_the_alert_table_says_what_the_rules_do() -> None:
    rows = {
        cells[0].strip("` "): [c.strip("` ") for c in cells[2:]]
        for cells in (line.strip("|").split("|") for line in DOC.read_text().splitlines())
        if cells[0].strip().startswith("`PromptCanary")
    }
    (_, alerts) = rule_groups()
    assert rows == {
        rule["alert"]: [rule["for"], rule["labels"]["action"], rule["labels"]["severity"]]
        for rule in alerts["rules"]
    }


def test_every_recording_rule_is_documented() -> None:
    (records, _) = rule_groups()
    text = DOC.read_text()
    missing = {
        rule["record"]
        for rule in records["rules"]
        if "bucket" not in rule["record"] and f"`{rule['record']}`" not in text
    }
    assert missing == set()


def quoted_descriptions() -> list[str]:
    """The alert descriptions docs/dashboards.md quotes, one per block quote, whitespace folded."""
    blocks = re.findall(r"(?:^> .*\n)+", DOC.read_text(), flags=re.M)
    return [_words(" ".join(line.removeprefix(">") for line in block.splitlines())) for block in blocks]


def test_the_quoted_description_is_what_prometheus_renders() -> None:
    # The second quote, of a generated rule, is checked against a live alert in test_policy_scenario.py.
    quoted, generated = quoted_descriptions()
    assert generated.startswith("Policy rule ")
    rendered = [
        _words(alert["exp_annotations"]["description"])
        for test in yaml.safe_load(RULES_TEST.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
        for alert in case["exp_alerts"]
    ]
    assert quoted in rendered


def test_the_documented_names_are_in_a_real_scrape(regression: Regression) -> None:
    samples = parse_prometheus(regression.scrape)
    names = {name for name, _, _ in samples}
    labels = {label for _, found, _ in samples for label in found}
    documented = set(re.findall(r"`(prompt_canary_[a-z_]+)`", DOC.read_text()))
    # Labels the rules generated from a policy add to their own series and alerts.
    generated = {"prompt_canary_rule", "prompt_canary_signal"}
    assert generated <= set(re.findall(r"\b(prompt_canary_[a-z_]+): ", fast_policy_rules("p")))
    assert documented - names - labels - generated == set()
    assert {"prompt_canary_responses_total", "prompt_canary_duration_seconds_bucket"} <= documented


def test_the_prometheus_example_is_a_valid_configuration(tmp_path: Path) -> None:
    (config,) = [block for block in _yaml_blocks() if "scrape_configs:" in block]
    (tmp_path / "prometheus.yml").write_text(
        config.replace("/etc/prometheus/prompt-canary.rules.yml", str(RULES))
    )
    checked = subprocess.run(
        [promtool(), "check", "config", "prometheus.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    for block in _yaml_blocks():
        assert yaml.safe_load(block)
