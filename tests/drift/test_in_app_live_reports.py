"""Calls of no rollout reach drift monitoring by themselves: an instrumented application (the real
``openai`` SDK against the simulated LLM, a router on a real control plane) posts them as live
reports, with the models that answered; a model other than the snapshot's is caught at its first call."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider

from otel_prompt_canary.demo import Behaviour, running_simulated_llm
from otel_prompt_canary.instrumentation import InstrumentationConfig, PromptCanaryInstrumentor
from otel_prompt_canary.loop.drift import DriftMonitor
from otel_prompt_canary.registry import PromptSpec, SqlRegistry
from otel_prompt_canary.routing import PromptRouter
from otel_prompt_canary.service import ServiceSettings
from tests.drift.factories import CHECK
from tests.support.auth import REPORT_TOKEN, TOKEN
from tests.support.loopback import running_server
from tests.support.waiting import eventually

PROMPT = "support-reply"


@pytest.fixture
def store_backend() -> str:
    """SQLite only: the store side is tested on both backends; here the application side is."""
    return "sqlite"


@pytest.fixture
def instrumentor() -> Iterator[PromptCanaryInstrumentor]:
    found = PromptCanaryInstrumentor()
    tracer_provider, meter_provider = TracerProvider(), MeterProvider()
    found.instrument(
        config=InstrumentationConfig.from_env({}, report_interval=0.2, libraries=frozenset({"openai"})),
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
    )
    yield found
    found.uninstrument()
    tracer_provider.shutdown()
    meter_provider.shutdown()


def test_calls_of_no_rollout_are_reported_live_and_a_new_model_is_caught_at_its_first_call(
    registry: SqlRegistry, instrumentor: PromptCanaryInstrumentor
) -> None:
    spec = {
        "name": PROMPT,
        "messages": [
            {"role": "system", "content": "Answer in JSON."},
            {"role": "user", "content": "{{ q }}"},
        ],
        "model": "sim-gpt-small",
    }
    registry.push(PromptSpec.model_validate(spec))
    settings = ServiceSettings(
        token=TOKEN,
        report_token=REPORT_TOKEN,
        controller=False,
        drift="window=1s,baseline=1s,baseline_samples=30,settle=1s",
        drift_interval_seconds=0.2,
    )
    with (
        running_server(registry, settings) as url,
        running_simulated_llm(Behaviour()) as llm,
        PromptRouter(url, token=REPORT_TOKEN, initial_timeout=10) as router,
    ):
        client = openai.OpenAI(base_url=llm.base_url, api_key="test", max_retries=0)

        def call(model: str) -> None:
            with router.select(PROMPT, unit_key="user-1") as chosen:
                assert chosen.rollout_id is None  # no rollout: the stable version, live
                client.chat.completions.create(
                    model=model, messages=chosen.render(q="hello"), response_format={"type": "json_object"}
                )

        for _ in range(20):
            call("sim-gpt-small")
        monitor = DriftMonitor(registry)  # reads what the control plane stored

        def live_samples() -> int:
            windows = monitor.live.stable_windows(PROMPT, 1, since=0, until=2**40)
            return sum(stats.n for _, _, attribute, stats in windows if attribute == CHECK)

        eventually(lambda: live_samples() == 20, timeout=30, what="the 20 calls in live reports")
        (model,) = monitor.live.response_models(PROMPT, 1)
        assert (model.model, model.calls) == ("sim-gpt-small", 20)

        call("sim-gpt-large")  # one call answered by another model
        eventually(lambda: monitor.list_alerts(PROMPT), timeout=30, what="the model alert")
        (alert,) = monitor.list_alerts(PROMPT)
        assert (alert.subject_kind, alert.subject) == ("model", "sim-gpt-large")
        assert "expected 'sim-gpt-small'" in alert.summary and "(1 calls so far)" in alert.summary
