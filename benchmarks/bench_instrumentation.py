"""Per-call cost of the instrumentation on the real OpenAI SDK, against the local simulated LLM.

Four configurations, measured in the same run, in interleaved rounds so that drift hits them alike:

(a) no instrumentation;
(b) the peer ``opentelemetry-instrumentation-genai-openai`` alone;
(c) this project's instrumentation alone, with the default checks, under a router Selection;
(d) the SDK floor: exactly the telemetry (c) emits for a call (its span with the same attributes, its
    evaluation events, its metric data points), written by hand around the bare call with the SDK's
    public API: no patching, no checks, nothing read from the request or response. It is what the
    telemetry itself costs; ``c`` over ``d`` is this instrumentation's own cost on top of it.

Both instrumentations get the same SDK tracer provider (batch processor, dropping exporter) and
meter provider. The simulated LLM runs in its own process so that it does not share the client's GIL.

Each round measures the three configurations one after the other (the order rotates), ``--calls``
calls each, and keeps each configuration's median call time. The figures are medians over rounds:
``median_us`` the median of the per-round medians, ``added_us`` the median of the per-round paired
differences to (a), the ratios ``c/a`` (target <= 1.10) the median of the per-round ratios, and
``(c-a)/(b-a)`` (target <= 1.5) the ratio of the two added costs; ``d/a`` is the floor's ratio, the
least any instrumentation emitting the same telemetry through the SDK can reach. ``mean_added_us`` is
the paired difference of the per-round means: unlike the medians it carries the garbage collections
that the spans an exporter has not taken yet set off now and then. Pairing within a round cancels the
drift of a shared machine between rounds; ``spread_added_us`` gives the interquartile range of the
per-round added costs. ``pooled_median_us`` is the median of all calls of a configuration together.
``cpu_added_us`` is the same paired median of this thread's CPU time per call: it leaves out the
server and the machine's scheduling, so it moves less from run to run on a busy machine (a
diagnostic; the targets apply to the wall-clock figures). With ``--json`` the last line is one JSON
object with the figures.

    python benchmarks/bench_instrumentation.py --calls 100 --rounds 30 --json
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

# The simulated LLM runs in its own process, so its work is not counted in the client's time.
SERVER = """
import sys
from otel_prompt_canary.demo import Behaviour, Reply, start_simulated_llm
llm = start_simulated_llm(Behaviour(default=Reply(text="Your parcel ships today. It arrives on Monday.")))
print(llm.base_url, flush=True)
sys.stdin.read()
llm.stop()
"""

MESSAGES = [
    {"role": "system", "content": "You answer support questions in two sentences."},
    {"role": "user", "content": "Where is my parcel?"},
]


class _DropExporter:
    """A span exporter that accepts and drops everything (the cost of export is not measured)."""

    def export(self, spans: Sequence[Any]) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


# Span attributes the instrumentation writes when the response is in (the others it writes at start).
_END_PREFIXES = ("gen_ai.response.", "gen_ai.usage.", "prompt_canary.check.", "prompt_canary.score.")


def _floor(
    call: Callable[[], object], tracer_provider: Any, meter_provider: Any, captured: tuple[Any, Any]
) -> Callable[[], object]:
    """Configuration (d): ``call`` wrapped in the telemetry of one instrumented call, replayed.

    ``captured`` is that call's span and metrics data (see :func:`_capture`); the replay writes the
    same span, events and data points with the SDK's public API.
    """
    from time import perf_counter

    from opentelemetry import context as otel_context
    from opentelemetry.context import Context
    from opentelemetry.sdk.metrics.export import Histogram
    from opentelemetry.trace import SpanKind, set_span_in_context

    from otel_prompt_canary.instrumentation.instruments import Instruments

    span, metrics = captured
    attributes = dict(span.attributes)
    start = {k: v for k, v in attributes.items() if not k.startswith(_END_PREFIXES)}
    end = {k: v for k, v in attributes.items() if k.startswith(_END_PREFIXES)}
    events = [(event.name, dict(event.attributes)) for event in span.events]
    instruments = Instruments.create(meter_provider.get_meter("bench.floor"))
    no_exemplar = Context({otel_context.create_key("bench.no_exemplar"): True})
    counters: list[tuple[Any, dict[str, Any]]] = []
    histograms: list[tuple[Any, float, dict[str, Any], bool]] = []
    by_name = {
        "prompt_canary.responses": instruments.responses,
        "prompt_canary.checks": instruments.checks,
        "prompt_canary.score": instruments.score,
        "prompt_canary.token.usage": instruments.token_usage,
        "prompt_canary.duration": instruments.duration,
    }
    for resource in metrics.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                instrument = by_name[metric.name]
                for point in metric.data.data_points:
                    points = dict(point.attributes)
                    if isinstance(metric.data, Histogram):
                        exemplar = metric.name == "prompt_canary.duration"
                        histograms.append((instrument, point.sum / point.count, points, exemplar))
                    else:
                        counters.append((instrument, points))
    tracer = tracer_provider.get_tracer("bench.floor")
    name, kind = span.name, SpanKind.CLIENT

    def floor_call() -> object:
        began = perf_counter()
        current = tracer.start_span(name, kind=kind, attributes=start)
        token = otel_context.attach(set_span_in_context(current))
        try:
            result = call()
        finally:
            otel_context.detach(token)
        current.set_attributes(end)
        for event_name, event_attributes in events:
            current.add_event(event_name, dict(event_attributes))
        for counter, points in counters:
            counter.add(1, points)
        for histogram, value, points, exemplar in histograms:
            if exemplar:
                histogram.record(perf_counter() - began, points)
            else:
                histogram.record(value, points, no_exemplar)
        current.end()
        return result

    return floor_call


def _capture(ours: Any, config: Any, call: Callable[[], object]) -> tuple[Any, Any]:
    """The span and metrics data of one ``call`` under this project's instrumentation."""
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    ours.instrument(
        config=config,
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        logger_provider=LoggerProvider(),
    )
    try:
        call()
    finally:
        ours.uninstrument()
    [span] = spans.get_finished_spans()
    return span, reader.get_metrics_data()


def _measure(call: Callable[[], object], count: int) -> tuple[list[float], list[float]]:
    """Wall-clock seconds of each call, and this thread's CPU seconds of each (read outside the
    wall-clock window, so that reading them costs the wall-clock figures nothing)."""
    samples = []
    cpu_samples = []
    clock = time.perf_counter
    cpu = time.thread_time
    for _ in range(count):
        cpu_start = cpu()
        start = clock()
        call()
        samples.append(clock() - start)
        cpu_samples.append(cpu() - cpu_start)
    return samples, cpu_samples


def _quartiles(values: Sequence[float]) -> tuple[float, float]:
    """The first and third quartiles (both the value itself for a single round)."""
    if len(values) < 2:
        return (values[0], values[0]) if values else (0.0, 0.0)
    q1, _, q3 = statistics.quantiles(values, n=4)
    return q1, q3


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100, help="calls per configuration per round")
    parser.add_argument("--rounds", type=int, default=30, help="interleaved rounds")
    parser.add_argument("--warmup", type=int, default=100, help="unmeasured calls per configuration first")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = parser.parse_args(argv)

    import openai
    from opentelemetry.instrumentation.genai.openai import OpenAIInstrumentor
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from otel_prompt_canary.instrumentation import InstrumentationConfig, PromptCanaryInstrumentor
    from otel_prompt_canary.routing.selection import Arm, Selection

    server = subprocess.Popen(
        [sys.executable, "-c", SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        base_url = server.stdout.readline().strip()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(BatchSpanProcessor(_DropExporter()))  # type: ignore[arg-type]
        meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
        logger_provider = LoggerProvider()
        client = openai.OpenAI(base_url=base_url, api_key="bench", max_retries=0)
        selection = Selection(
            Arm(prompt_name="support-reply", version=3, cohort="canary", rollout_id="ro_bench", template="t"),
            "user-1",
        )
        peer = OpenAIInstrumentor()
        ours = PromptCanaryInstrumentor()

        def bare() -> object:
            return client.chat.completions.create(model="sim-gpt-small", messages=MESSAGES)  # type: ignore[arg-type]

        def selected(inner: Callable[[], object]) -> Callable[[], object]:
            def call() -> object:
                with selection:
                    return inner()

            return call

        captured = _capture(ours, InstrumentationConfig(), selected(bare))
        floor = _floor(bare, tracer_provider, meter_provider, captured)
        calls = {
            "none": selected(bare),
            "peer": selected(bare),
            "ours": selected(bare),
            "floor": selected(floor),
        }

        def setup(name: str) -> None:
            if name == "peer":
                peer.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
            elif name == "ours":
                ours.instrument(
                    config=InstrumentationConfig(),
                    tracer_provider=tracer_provider,
                    meter_provider=meter_provider,
                    logger_provider=logger_provider,
                )

        def teardown(name: str) -> None:
            if name == "peer":
                peer.uninstrument()
            elif name == "ours":
                ours.uninstrument()

        names = ("none", "peer", "ours", "floor")
        samples: dict[str, list[float]] = {name: [] for name in names}
        round_medians: dict[str, list[float]] = {name: [] for name in names}
        round_means: dict[str, list[float]] = {name: [] for name in names}
        round_cpu: dict[str, list[float]] = {name: [] for name in names}
        for name in names:
            setup(name)
            _measure(calls[name], args.warmup)
            teardown(name)
        for round_index in range(args.rounds):
            shift = round_index % len(names)
            for name in names[shift:] + names[:shift]:
                setup(name)
                measured, cpu_measured = _measure(calls[name], args.calls)
                teardown(name)
                samples[name].extend(measured)
                round_medians[name].append(statistics.median(measured) * 1e6)
                round_means[name].append(statistics.fmean(measured) * 1e6)
                round_cpu[name].append(statistics.median(cpu_measured) * 1e6)
        tracer_provider.shutdown()
        meter_provider.shutdown()
    finally:
        if server.stdin is not None:
            server.stdin.close()
        server.wait(timeout=30)

    median_us = {name: statistics.median(values) for name, values in round_medians.items()}
    pooled_us = {name: statistics.median(values) * 1e6 for name, values in samples.items()}
    base = round_medians["none"]
    others = ("peer", "ours", "floor")

    def paired(per_round: dict[str, list[float]], name: str) -> list[float]:
        return [m - b for m, b in zip(per_round[name], per_round["none"], strict=True)]

    added = {name: paired(round_medians, name) for name in others}
    ratios = {name: [m / b for m, b in zip(round_medians[name], base, strict=True)] for name in others}
    added_us = {name: statistics.median(values) for name, values in added.items()}
    mean_added = {name: statistics.median(paired(round_means, name)) for name in others}
    cpu_added = {name: statistics.median(paired(round_cpu, name)) for name in others}
    ratio = {name: statistics.median(values) for name, values in ratios.items()}
    added_peer, added_ours, added_floor = added_us["peer"], added_us["ours"], added_us["floor"]
    figures = {
        "calls_per_configuration": args.calls * args.rounds,
        "rounds": args.rounds,
        "median_us": {k: round(v, 1) for k, v in median_us.items()},
        "added_us": {k: round(v, 1) for k, v in added_us.items()},
        "spread_added_us": {
            name: [round(q, 1) for q in _quartiles(values)] for name, values in added.items()
        },
        "mean_added_us": {k: round(v, 1) for k, v in mean_added.items()},
        "ratio_ours_over_none": round(ratio["ours"], 4),
        "ratio_peer_over_none": round(ratio["peer"], 4),
        "ratio_floor_over_none": round(ratio["floor"], 4),
        "ratio_added_ours_over_peer": round(added_ours / added_peer, 3) if added_peer > 0 else None,
        "ours_own_us": round(added_ours - added_floor, 1),
        "pooled_median_us": {k: round(v, 1) for k, v in pooled_us.items()},
        "cpu_median_us": {k: round(statistics.median(v), 1) for k, v in round_cpu.items()},
        "cpu_added_us": {k: round(v, 1) for k, v in cpu_added.items()},
        "targets": {"ratio_ours_over_none": 1.10, "ratio_added_ours_over_peer": 1.5},
    }
    print(f"calls per configuration: {figures['calls_per_configuration']} in {args.rounds} rounds")
    for name in names:
        print(f"  {name:5s} median {median_us[name]:9.1f} us/call (pooled {pooled_us[name]:9.1f})")
    print(
        "added per call (median, IQR): "
        + ", ".join(f"{n} {added_us[n]:.1f} us {figures['spread_added_us'][n]}" for n in others)
    )
    print("added per call (mean): " + ", ".join(f"{n} {mean_added[n]:.1f} us" for n in others))
    print("client thread CPU added per call: " + ", ".join(f"{n} {cpu_added[n]:.1f} us" for n in others))
    print(f"ours / none = {figures['ratio_ours_over_none']} (target <= 1.10)")
    print(f"floor / none = {figures['ratio_floor_over_none']} (the same telemetry, hand-written)")
    print(f"ours added / peer added = {figures['ratio_added_ours_over_peer']} (target <= 1.5)")
    print(f"ours beyond the floor: {figures['ours_own_us']} us per call")
    if args.json:
        print(json.dumps(figures, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
