"""The zero-code path end to end: an app run by ``opentelemetry-instrument``, OTLP/HTTP to a receiver.

The app knows nothing of this project: it calls the OpenAI SDK with a hard-coded system prompt (the
stable version's text) and puts a unit key in baggage. The registry holds a rollout at 50 %, rewrite
mode is on: every call must come out tagged with the version and cohort the routing function gives
its unit, with check attributes on its span (and the opt-in evaluation events, in the run with a
peer, which turns them on from the environment), and per-cohort metrics.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from otel_prompt_canary.demo.behaviour import Behaviour
from otel_prompt_canary.demo.simulated_llm import SimulatedLLM
from otel_prompt_canary.registry import PromptSpec, open_store
from otel_prompt_canary.routing import bucket
from tests.instrumentation.otlp_receiver import attributes, otlp_receiver
from tests.support.waiting import eventually

STABLE = "You are the support assistant of {{company}}. Be concise."
CANARY = "You are the friendly support assistant of {{company}}. Answer in two sentences."
CALLS = 24
#: The entry point line the project's packaging declares.
ENTRY_POINT = "prompt_canary = otel_prompt_canary.instrumentation:PromptCanaryInstrumentor"

APP = textwrap.dedent(
    """
    import os

    import openai
    from opentelemetry import baggage, context

    client = openai.OpenAI(base_url=os.environ["APP_LLM_URL"], api_key="test", max_retries=0)
    system = "You are the support assistant of ACME. Be concise."
    for i in range(int(os.environ["APP_CALLS"])):
        token = context.attach(baggage.set_baggage("prompt_canary.unit", f"user-{i}"))
        try:
            client.chat.completions.create(
                model="sim-gpt-small",
                messages=[
                    {"role": "system", "content": system},
                    {"role": "user", "content": f"Question {i}"},
                ],
            )
        finally:
            context.detach(token)
    print("app done")
    """
)


def _entry_point_path(tmp_path: Path) -> str | None:
    """A directory declaring the entry point, when the installed package does not declare it yet."""
    if any(ep.name == "prompt_canary" for ep in entry_points(group="opentelemetry_instrumentor")):
        return None
    dist = tmp_path / "entrypoint" / "otel_prompt_canary_entrypoint-0.0.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: otel-prompt-canary-entrypoint\nVersion: 0.0.0\n"
    )
    (dist / "entry_points.txt").write_text(f"[opentelemetry_instrumentor]\n{ENTRY_POINT}\n")
    return str(dist.parent)


@pytest.mark.parametrize("peer", [False, True], ids=["alone", "with_peer"])
def test_opentelemetry_instrument_app(
    tmp_path: Path, llm: SimulatedLLM, behaviour: Behaviour, peer: bool
) -> None:
    registry_path = tmp_path / "registry.db"
    with open_store(registry_path) as registry:
        registry.push(PromptSpec(name="support-reply", messages=[{"role": "system", "content": STABLE}]))  # type: ignore[list-item]
        registry.push(PromptSpec(name="support-reply", messages=[{"role": "system", "content": CANARY}]))  # type: ignore[list-item]
        route = registry.start_rollout("support-reply", 2, ramp=(50.0, 100.0), actor="test")
    rollout = route.rollout_id
    assert rollout is not None
    app = tmp_path / "app.py"
    app.write_text(APP)
    instrument = Path(sys.executable).parent / "opentelemetry-instrument"

    with otlp_receiver() as (endpoint, received):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PYTHONPATH"))}
        env |= {
            "APP_LLM_URL": llm.base_url,
            "APP_CALLS": str(CALLS),
            "OTEL_SERVICE_NAME": "zero-code-app",
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_METRICS_EXPORTER": "otlp",
            "OTEL_LOGS_EXPORTER": "none",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            "OTEL_PROMPT_CANARY_REGISTRY": str(registry_path),
            "OTEL_PROMPT_CANARY_REWRITE": "true",
            "OTEL_PROMPT_CANARY_REGISTRY_WAIT": "5",
        }
        if peer:
            env["OTEL_PROMPT_CANARY_SPAN_EVENTS"] = "true"
        else:
            env["OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"] = "openai"
        extra = _entry_point_path(tmp_path)
        if extra is not None:
            env["PYTHONPATH"] = extra
        done = subprocess.run(
            [str(instrument), sys.executable, str(app)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-4000:]
        assert "app done" in done.stdout
        eventually(
            lambda: received.metric_points("prompt_canary.responses"),
            what="the application's prompt_canary.responses metric at the OTLP receiver",
        )

        # Every installed OpenAI instrumentation makes its LLM span (the test environment has three
        # peers); exactly one span per call carries this project's attributes, a peer's when one is on.
        scoped = [
            (scope, s)
            for scope, s in received.scoped_spans()
            if "gen_ai.prompt.name" in attributes(s.attributes)
        ]
        assert len(scoped) == CALLS, [s.name for s in received.spans()]
        assert len({s.trace_id for _, s in scoped}) == CALLS
        owners = {scope for scope, _ in scoped}
        if peer:
            assert "otel_prompt_canary.instrumentation" not in owners
            assert len(owners) == 1, owners
        else:
            assert owners == {"otel_prompt_canary.instrumentation"}
        spans = [s for _, s in scoped]
        sent = behaviour.requests[-CALLS:]
        expected = {"canary": 0, "stable": 0}
        for request in sent:
            unit = "user-" + request.user.split()[-1]
            canary = bucket(rollout, unit) < 5000
            expected["canary" if canary else "stable"] += 1
            wanted = (CANARY if canary else STABLE).replace("{{company}}", "ACME")
            assert request.system == wanted, unit
        by_cohort = {"canary": 0, "stable": 0}
        for span in spans:
            a = attributes(span.attributes)
            assert a["gen_ai.prompt.name"] == "support-reply"
            assert a["prompt_canary.rollout.id"] == rollout
            assert a["gen_ai.prompt.version"] == ("2" if a["prompt_canary.cohort"] == "canary" else "1")
            assert a["prompt_canary.check.refusal"] is True
            assert a["prompt_canary.check.truncation"] is True
            names = {
                attributes(e.attributes)["gen_ai.evaluation.name"]
                for e in span.events
                if e.name == "gen_ai.evaluation.result"
            }
            # Span events are opt-in: the run with a peer turns them on from the environment.
            assert names == ({"refusal", "truncation", "max_output_tokens"} if peer else set())
            by_cohort[a["prompt_canary.cohort"]] += 1
            assert a.get("gen_ai.response.id")
        assert by_cohort == expected
        assert expected["canary"] > 0 and expected["stable"] > 0

        responses = received.metric_points("prompt_canary.responses")
        totals: dict[str, int] = {}
        for attrs, point in responses:
            assert attrs["gen_ai.prompt.name"] == "support-reply"
            totals[attrs["prompt_canary.cohort"]] = (
                totals.get(attrs["prompt_canary.cohort"], 0) + point.as_int
            )
        assert totals == by_cohort
        checks = received.metric_points("prompt_canary.checks")
        assert {a["prompt_canary.check"] for a, _ in checks} >= {"refusal", "truncation"}
        assert {a["prompt_canary.check.outcome"] for a, _ in checks} == {"pass"}
        durations = received.metric_points("prompt_canary.duration")
        assert sum(p.count for _, p in durations) == CALLS
        tokens = received.metric_points("prompt_canary.token.usage")
        assert {a["gen_ai.token.type"] for a, _ in tokens} == {"input", "output"}
