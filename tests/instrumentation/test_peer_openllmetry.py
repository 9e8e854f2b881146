"""OpenLLMetry (``opentelemetry-instrumentation-openai``): one LLM span per call carries our attributes.

Its Responses span starts with no operation name, and for a plain call only after the SDK returned:
it is recognised by its scope and name, and claims the call that went by just before it (with the
call's check results). In rewrite mode (a call with no Selection whose system text is the stable
version's), that one span carries ``prompt_canary.rewritten``. Each order of instrumentation runs in a
process of its own, instrumented once as an application is: OpenLLMetry's ``uninstrument()`` leaves
its Responses wrappers in place.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from otel_prompt_canary.demo.behaviour import Behaviour, Reply
from otel_prompt_canary.demo.simulated_llm import SimulatedLLM
from otel_prompt_canary.registry import PromptSpec, SqlRegistry
from tests.instrumentation.frameworks import CANARY, STABLE

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import asyncio, gc, json, sys

    import openai
    from opentelemetry.instrumentation.openai import OpenAIInstrumentor
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from opentelemetry import baggage, context

    from otel_prompt_canary.instrumentation import InstrumentationConfig, PromptCanaryInstrumentor
    from otel_prompt_canary.routing import PromptRouter
    from tests.instrumentation.support import OpenSpans, selection

    base_url, order, registry, stable = sys.argv[1:5]
    spans, started = InMemorySpanExporter(), OpenSpans()
    provider = TracerProvider()
    provider.add_span_processor(started)
    provider.add_span_processor(SimpleSpanProcessor(spans))
    meters = MeterProvider(metric_readers=[InMemoryMetricReader()])
    peer, ours = OpenAIInstrumentor(), PromptCanaryInstrumentor()
    steps = [
        lambda: peer.instrument(tracer_provider=provider, meter_provider=meters),
        lambda: ours.instrument(
            config=InstrumentationConfig.from_env({}, rewrite=True),
            router=PromptRouter(registry, initial_timeout=10),
            tracer_provider=provider,
            meter_provider=meters,
        ),
    ]
    for step in steps if order == "peer_first" else reversed(steps):
        step()
    client = openai.OpenAI(base_url=base_url, api_key="test", max_retries=0)
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}]

    async def async_responses():
        async_client = openai.AsyncOpenAI(base_url=base_url, api_key="test", max_retries=0)
        await async_client.responses.create(model="m", input="Hello")

    chat = client.chat.completions
    unit = baggage.set_baggage("prompt_canary.unit", "user-1")
    to_rewrite = [{"role": "system", "content": stable}, {"role": "user", "content": "Hello"}]

    def rewritten(call):
        # No Selection: the stable text is recognised, and rewritten to the canary's.
        token = context.attach(unit)
        try:
            call()
        finally:
            context.detach(token)

    calls = {
        "chat": lambda: chat.create(model="m", messages=messages),
        "chat_stream": lambda: list(chat.create(model="m", messages=messages, stream=True)),
        "chat_raw": lambda: chat.with_raw_response.create(model="m", messages=messages).parse(),
        "responses": lambda: client.responses.create(model="m", input="Hello", instructions="Be brief."),
        "responses_stream": lambda: list(client.responses.create(model="m", input="Hello", stream=True)),
        "responses_async": lambda: asyncio.run(async_responses()),
    }
    unselected = {
        "chat_rewritten": lambda: rewritten(lambda: chat.create(model="m", messages=to_rewrite)),
        "responses_rewritten": lambda: rewritten(
            lambda: client.responses.create(model="m", input="Hello", instructions=stable)
        ),
    }
    results = {}
    for name, call in [*calls.items(), *unselected.items()]:
        spans.clear()
        if name in unselected:
            call()
        else:
            with selection():
                call()
        gc.collect()
        finished = spans.get_finished_spans()
        tagged = [s for s in finished if "gen_ai.prompt.name" in s.attributes]
        results[name] = {
            "tagged": [(s.instrumentation_scope.name, s.name) for s in tagged],
            "checked": [s.attributes.get("prompt_canary.check.refusal") for s in tagged],
            "cohorts": [s.attributes.get("prompt_canary.cohort") for s in tagged],
            "rewritten": [s.attributes.get("prompt_canary.rewritten", False) for s in tagged],
            "open": sorted(s.name for s in started.spans.values()),
        }
    print(json.dumps(results))
    """
)


@pytest.fixture
def registry(registry: SqlRegistry) -> SqlRegistry:
    """A prompt whose canary (version 2) takes all the traffic: rewrite mode sends its text."""
    registry.push(PromptSpec(name="support-reply", messages=[{"role": "system", "content": STABLE}]))  # type: ignore[list-item]
    registry.push(PromptSpec(name="support-reply", messages=[{"role": "system", "content": CANARY}]))  # type: ignore[list-item]
    registry.start_rollout("support-reply", 2, ramp=(100.0,), actor="test")
    return registry


@pytest.mark.parametrize("store_backend", ["sqlite"])  # a file the application's process opens too
@pytest.mark.parametrize("order", ["peer_first", "ours_first"])
def test_openllmetry_one_tagged_span(
    order: str,
    registry: SqlRegistry,
    store_target: str,
    tmp_path: Path,
    llm: SimulatedLLM,
    behaviour: Behaviour,
) -> None:
    behaviour.set_default(Reply(text="Hi there.", chunk_chars=3))
    script = tmp_path / "peer.py"
    script.write_text(SCRIPT)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["PYTHONPATH"] = str(ROOT)
    env["TRACELOOP_TELEMETRY"] = "false"  # OpenLLMetry's own usage telemetry
    done = subprocess.run(
        [sys.executable, str(script), llm.base_url, order, store_target, STABLE],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    for name, result in results.items():
        assert len(result["tagged"]) == 1, (name, result)
        ((scope, _),) = result["tagged"]
        assert scope.startswith("opentelemetry.instrumentation.openai"), (name, result)
        assert result["checked"] == [True], (name, result)
        assert result["cohorts"] == ["canary"], (name, result)
        assert result["open"] == [], (name, result)
        assert result["rewritten"] == [name.endswith("_rewritten")], (name, result)
    rewritten = [r.system for r in behaviour.requests if r.system in (STABLE, CANARY)]
    assert rewritten == [CANARY, CANARY]  # both calls sent the canary's text
