"""The README's example application, as written, under ``opentelemetry-instrument`` with its default
exporters (OTLP/gRPC, pointed at a receiver on loopback).

The registry is the README's: ``.prompt-canary/registry.db`` in the working directory, holding the
two example versions pushed with the README's commands and a canary rollout of version 2. The app
asks for JSON only in the prompt's text and sends no ``response_format``; the versions declare
``output: {format: json, schema: ...}``. Every call of either version must record
``prompt_canary.check.json_valid`` (and ``json_schema``), and the canary, whose answers to billing
questions are wrapped in prose, must show failures exactly there.
"""

from __future__ import annotations

import os
import re
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from otel_prompt_canary import names
from otel_prompt_canary.cli import cli
from otel_prompt_canary.demo.behaviour import Behaviour
from otel_prompt_canary.demo.simulated_llm import SimulatedLLM
from tests.instrumentation.otlp_grpc_receiver import otlp_grpc_receiver
from tests.instrumentation.otlp_receiver import Received, attributes
from tests.instrumentation.support import support_bot_model
from tests.support.app_process import run_instrumented

ROOT = Path(__file__).resolve().parents[2]
USERS = 30
QUESTIONS = ("Why was my bill charged twice?", "Where is my parcel?")

DRIVER = f"""

# -- the test's driver: every user asks every question ----------------------------------------------
for user in range({USERS}):
    for question in {QUESTIONS!r}:
        answer(f"user-{{user}}", question)
print("app done")
"""


def readme_app() -> str:
    """The README's Python example of "In five minutes", as written."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## In five minutes") : text.index("## Documentation")]
    (block,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert "def answer(user_id: str, question: str)" in block
    return block


def readme_commands(workdir: Path, *commands: list[str]) -> None:
    """Run ``prompt-canary`` commands in ``workdir`` with no registry setting: the README's default."""
    runner = CliRunner()
    cwd = Path.cwd()
    os.chdir(workdir)
    try:
        for args in commands:
            result = runner.invoke(cli, args, env={"OTEL_PROMPT_CANARY_REGISTRY": None, "USER": "tester"})
            assert result.exit_code == 0, (args, result.output)
    finally:
        os.chdir(cwd)


def prompt_spans(received: Received) -> list[dict[str, Any]]:
    """The attributes of every span of the support-bot prompt."""
    found = [attributes(span.attributes) for span in received.spans()]
    return [a for a in found if a.get(names.PROMPT_NAME) == "support-bot"]


def check_counts(received: Received) -> Counter[tuple[str, str, str]]:
    """The ``prompt_canary.checks`` sums by (version, check, outcome), as last exported."""
    last: dict[tuple[str, str, str], float] = {}
    for attrs, point in received.metric_points(names.METRIC_CHECKS):
        key = (attrs[names.PROMPT_VERSION], attrs[names.CHECK], attrs[names.CHECK_OUTCOME])
        last[key] = max(last.get(key, 0), point.as_int or point.as_double)  # cumulative sums
    return Counter({key: int(value) for key, value in last.items()})


def test_the_readme_app_checks_every_call_of_a_version_that_declares_json(
    tmp_path: Path, llm: SimulatedLLM, behaviour: Behaviour
) -> None:
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    readme_commands(
        tmp_path,
        ["prompt", "push", "examples/support-bot-v1.yaml"],
        ["prompt", "push", "examples/support-bot-v2.yaml"],
        ["rollout", "start", "support-bot", "2", "--ramp", "50,100", "--reason", "friendlier tone"],
    )
    behaviour.set_default(support_bot_model)
    app = tmp_path / "app.py"
    app.write_text(readme_app() + DRIVER, encoding="utf-8")

    with otlp_grpc_receiver() as (endpoint, received):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PYTHONPATH", "OPENAI_"))}
        env |= {
            "OPENAI_BASE_URL": llm.base_url,
            "OPENAI_API_KEY": "test",
            "OTEL_SERVICE_NAME": "readme-app",
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,  # nothing else: the default exporters
        }
        output = run_instrumented(app, env, cwd=tmp_path)
        assert "app done" in output
        # The SDK exports what is left when the application exits: everything is in by now.
        spans = prompt_spans(received)
        counts = check_counts(received)

    requests = [r for r in behaviour.requests if "support assistant of Acme" in r.system]
    assert len(requests) == USERS * len(QUESTIONS)
    assert not any(r.wants_json for r in requests), "the README's app asks for JSON in the text only"
    canary_billing = sum("friendly" in r.system and "bill" in r.user for r in requests)
    assert canary_billing > 0, "the 50 % canary served some billing question"

    assert len(spans) == len(requests)
    by_version = Counter(a[names.PROMPT_VERSION] for a in spans)
    assert set(by_version) == {"1", "2"}
    check = names.CHECK_PREFIX + "json_valid"
    schema = names.CHECK_PREFIX + "json_schema"
    # Every call of both versions carries both checks: the versions declare JSON with a schema.
    assert all(check in a and schema in a for a in spans), [a for a in spans if check not in a][:1]
    assert all(a[check] and a[schema] for a in spans if a[names.PROMPT_VERSION] == "1")
    failed = [a for a in spans if not a[check]]
    assert len(failed) == canary_billing
    assert {(a[names.PROMPT_VERSION], a[names.COHORT], a[schema]) for a in failed} == {("2", "canary", False)}

    # The metric the judge reads says the same, per version.
    assert counts[("1", "json_valid", "pass")] == by_version["1"]
    assert counts[("1", "json_valid", "fail")] == 0
    assert counts[("2", "json_valid", "fail")] == canary_billing
    assert counts[("2", "json_valid", "pass")] == by_version["2"] - canary_billing
