"""Fixtures of the instrumentation suite: the simulated LLM, in-memory telemetry, the instrumentor."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_prompt_canary.demo.behaviour import Behaviour, default_responder
from otel_prompt_canary.demo.simulated_llm import SimulatedLLM, running_simulated_llm
from otel_prompt_canary.instrumentation import InstrumentationConfig, PromptCanaryInstrumentor
from otel_prompt_canary.registry import SqlRegistry
from otel_prompt_canary.routing import PromptRouter
from tests.instrumentation.support import OpenSpans, Telemetry


@pytest.fixture(scope="session")
def llm() -> Iterator[SimulatedLLM]:
    """One simulated LLM for the session; each test starts from a clean behaviour."""
    with running_simulated_llm(Behaviour()) as server:
        yield server


@pytest.fixture
def behaviour(llm: SimulatedLLM) -> Iterator[Behaviour]:
    llm.behaviour.clear()
    llm.behaviour.set_default(default_responder)
    yield llm.behaviour
    llm.behaviour.clear()
    llm.behaviour.set_default(default_responder)


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    spans = InMemorySpanExporter()
    started = OpenSpans()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(started)
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    logs = InMemoryLogRecordExporter()
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
    yield Telemetry(tracer_provider, spans, meter_provider, reader, logger_provider, logs, started)
    tracer_provider.shutdown()
    meter_provider.shutdown()
    logger_provider.shutdown()


@pytest.fixture
def instrument(telemetry: Telemetry) -> Iterator[Any]:
    """A function that instruments with the test's providers; uninstrumented at teardown."""
    instrumentor = PromptCanaryInstrumentor()

    def run(router: Any = None, **settings: Any) -> PromptCanaryInstrumentor:
        config = settings.pop("config", None) or InstrumentationConfig.from_env({}, **settings)
        instrumentor.instrument(
            config=config,
            router=router,
            tracer_provider=telemetry.tracer_provider,
            meter_provider=telemetry.meter_provider,
            logger_provider=telemetry.logger_provider,
        )
        return instrumentor

    yield run
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()


@pytest.fixture
def instrumented(instrument: Any) -> PromptCanaryInstrumentor:
    """Instrumented with the default settings."""
    result: PromptCanaryInstrumentor = instrument()
    return result


@pytest.fixture
def router_of(registry: SqlRegistry) -> Iterator[Callable[[], PromptRouter]]:
    """Make routers on the test's registry (a module may add its prompts by overriding ``registry``),
    polling it every 50 ms; closed at the end of the test."""
    routers: list[PromptRouter] = []

    def make() -> PromptRouter:
        router = PromptRouter(registry, initial_timeout=5, poll_interval=0.05)
        routers.append(router)
        return router

    yield make
    for router in routers:
        router.close()
