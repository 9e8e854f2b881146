"""The in-process counters behind ``prompt_canary.responses`` and ``prompt_canary.checks``."""

from __future__ import annotations

import threading
from typing import Any

import openai
from opentelemetry.sdk.metrics import MeterProvider, ObservableCounter
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader, Sum

from otel_prompt_canary.demo.simulated_llm import SimulatedLLM
from otel_prompt_canary.instrumentation import InstrumentationConfig, PromptCanaryInstrumentor
from otel_prompt_canary.instrumentation._counters import (
    _IDENTITIES_LIMIT,
    CARDINALITY_LIMIT,
    OVERFLOW,
    LocalCounter,
    local_counter,
)
from otel_prompt_canary.scoring import CheckOutcome
from tests.instrumentation.support import selection


def _points(reader: InMemoryMetricReader, name: str) -> dict[frozenset[Any], int]:
    data = reader.get_metrics_data()
    found: dict[frozenset[Any], int] = {}
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == name:
                    assert isinstance(metric.data, Sum) and metric.data.is_monotonic
                    for point in metric.data.data_points:
                        found[frozenset(point.attributes.items())] = int(point.value)
    return found


def _counter(reader: InMemoryMetricReader) -> LocalCounter:
    meter = MeterProvider(metric_readers=[reader]).get_meter("test")
    return local_counter(meter, "test.count", unit="{thing}", description="things")


def test_equal_sets_add_to_one_total_and_the_sdk_exports_cumulative_sums() -> None:
    reader = InMemoryMetricReader()
    counter = _counter(reader)
    shared = {"cohort": "canary"}
    counter.add(1, shared)
    counter.add(2, shared)
    counter.add(3, {"cohort": "canary"})  # equal, not the same mapping
    counter.add(1, {"cohort": "stable"})
    assert _points(reader, "test.count") == {
        frozenset({("cohort", "canary")}): 6,
        frozenset({("cohort", "stable")}): 1,
    }
    counter.add(1, shared)
    assert _points(reader, "test.count")[frozenset({("cohort", "canary")})] == 7


def test_adding_one_to_each_of_several_sets_counts_like_adding_them_one_by_one() -> None:
    reader = InMemoryMetricReader()
    counter = _counter(reader)
    refusal, truncation = {"check": "refusal"}, {"check": "truncation"}
    counter.add_one_each((refusal, truncation))
    counter.add_one_each((refusal, {"check": "truncation"}))  # equal, not the same mapping
    counter.add_one_each(())
    counter.add(1, refusal)
    assert _points(reader, "test.count") == {
        frozenset({("check", "refusal")}): 3,
        frozenset({("check", "truncation")}): 2,
    }


def test_a_delta_exporter_gets_the_increments() -> None:
    reader = InMemoryMetricReader(preferred_temporality={ObservableCounter: AggregationTemporality.DELTA})
    counter = _counter(reader)
    attributes = {"cohort": "canary"}
    counter.add(5, attributes)
    assert _points(reader, "test.count") == {frozenset(attributes.items()): 5}
    counter.add(2, attributes)
    assert _points(reader, "test.count") == {frozenset(attributes.items()): 2}


def test_concurrent_adds_lose_nothing() -> None:
    counter = LocalCounter("test")
    sets = [{"check": str(i % 3)} for i in range(3)]

    def work() -> None:
        for i in range(20_000):
            counter.add(1, sets[i % 3])

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(counter.totals().values()) == [53_328, 53_336, 53_336]
    assert sum(counter.totals().values()) == 160_000


def test_sets_beyond_the_cardinality_limit_count_as_overflow() -> None:
    counter = LocalCounter("test")
    for i in range(CARDINALITY_LIMIT + 50):
        counter.add(1, {"id": str(i)})
    counter.add(1, {"id": "0"})  # a set seen before the limit keeps its own total
    totals = counter.totals()
    assert len(totals) == CARDINALITY_LIMIT + 1
    assert totals[frozenset(OVERFLOW.items())] == 50
    assert totals[frozenset({("id", "0")})] == 2
    assert sum(totals.values()) == CARDINALITY_LIMIT + 51


def test_fresh_mappings_on_every_add_keep_memory_bounded() -> None:
    counter = LocalCounter("test")
    for _ in range(3 * _IDENTITIES_LIMIT):
        counter.add(1, {"cohort": "canary"})
    assert counter.totals() == {frozenset({("cohort", "canary")}): 3 * _IDENTITIES_LIMIT}
    assert len(counter._by_identity) <= _IDENTITIES_LIMIT


def test_instrumenting_again_on_the_same_meter_continues_the_totals(llm: SimulatedLLM) -> None:
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    client = openai.OpenAI(base_url=llm.base_url, api_key="test", max_retries=0)
    instrumentor = PromptCanaryInstrumentor()
    for _ in range(2):
        instrumentor.instrument(config=InstrumentationConfig(), meter_provider=meter_provider)
        try:
            with selection():
                client.chat.completions.create(
                    model="sim-gpt-small", messages=[{"role": "user", "content": "hi"}]
                )
        finally:
            instrumentor.uninstrument()
    [(attributes, total)] = _points(reader, "prompt_canary.responses").items()
    assert total == 2
    assert dict(attributes)["prompt_canary.cohort"] == "canary"


def test_late_outcomes_of_one_prompt_reuse_one_attribute_set() -> None:
    reader = InMemoryMetricReader()
    instrumentor = PromptCanaryInstrumentor()
    meter_provider = MeterProvider(metric_readers=[reader])
    instrumentor.instrument(config=InstrumentationConfig(), meter_provider=meter_provider)
    try:
        runtime = instrumentor._installation.runtime
        for passed in (True, False) * 50:
            runtime.late_outcome(("support-reply", "2", "canary", "ro_1"), CheckOutcome("safety", passed))
        checks = runtime.instruments.checks
        assert len(checks._by_identity) == 2  # one set per outcome, not one per late result
    finally:
        instrumentor.uninstrument()
    points = _points(reader, "prompt_canary.checks")
    totals = {dict(k)["prompt_canary.check.outcome"]: v for k, v in points.items()}
    assert totals == {"pass": 50, "fail": 50}
