"""Per-call cost of the instrumentation on the real OpenAI SDK, in process and against a local server.

Two measurements in one run, each with the same four configurations:

- ``in_process``: the SDK over an in-process transport (the HTTP library's ``MockTransport``
  answering a canned chat completion): no server, no socket, only the client-side cost;
- ``local_server``: the SDK against the simulated LLM on 127.0.0.1, in its own process so that it
  does not share the client's GIL (the canned body of ``in_process`` is this server's answer).

The configurations:

(a) ``none``: no instrumentation;
(b) ``peer``: ``opentelemetry-instrumentation-genai-openai`` alone;
(c) ``ours``: this project's instrumentation alone, with the default settings, under a router Selection
    (``--span-events``: with the opt-in ``gen_ai.evaluation.result`` span events on);
(d) ``floor``: exactly the telemetry (c) emits for a call (its span with the same attributes and
    events, its metric data points), written by hand around the bare call with the SDK's public API:
    no patching, no checks, nothing read from the request or response. It is what the telemetry
    itself costs; ``ours_own_us`` (c minus d) is this instrumentation's own work on top of it.

Both instrumentations get the same SDK tracer provider (batch processor, dropping exporter) and
meter provider.

Each round measures every configuration of both measurements, one after the other (the order
rotates), ``--calls`` calls each, and keeps each configuration's median call time. The figures are
medians over rounds: ``median_us`` the median of the per-round medians, ``added_us`` the median of
the per-round paired differences to (a) and ``ratio_added_ours_over_peer`` the ratio of the two added
costs (target <= 0.5: this instrumentation adds at most half of what the peer adds). Pairing within a
round cancels the drift of a shared machine between rounds; ``spread_added_us`` gives the
interquartile range of the per-round added costs, ``mean_added_us`` the paired difference of the
per-round means (it carries the garbage collections the spans set off now and then),
``pooled_median_us`` the median of all calls of a configuration together. ``cpu_added_us`` and
``cpu_ratio_added_ours_over_peer`` are the same paired figures of this thread's CPU time per call:
they leave out the server, the exporter thread and the machine's scheduling, so they move less from
run to run on a busy machine. With ``--json`` the last line is one JSON object with the figures.

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
from types import ModuleType
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

MODEL = "sim-gpt-small"
MESSAGES = [
    {"role": "system", "content": "You answer support questions in two sentences."},
    {"role": "user", "content": "Where is my parcel?"},
]
CONFIGURATIONS = ("none", "peer", "ours", "floor")
MEASUREMENTS = ("in_process", "local_server")
TARGET = 0.5


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


def _http_library(openai: ModuleType) -> ModuleType:
    """The HTTP library the SDK is built on (``httpx``, or ``httpx2`` for recent SDKs)."""
    for cls in openai.DefaultHttpxClient.__mro__:
        if cls.__name__ == "Client" and cls.__module__.partition(".")[0] != "openai":
            return sys.modules[cls.__module__.partition(".")[0]]
    raise RuntimeError("cannot tell which HTTP library the openai SDK uses")


def _in_process_client(openai: ModuleType, body: bytes) -> Any:
    """An SDK client whose transport answers every request in process with ``body``."""
    http = _http_library(openai)

    def answer(request: Any) -> Any:
        return http.Response(200, content=body, headers={"content-type": "application/json"})

    return openai.OpenAI(
        base_url="http://llm.invalid/v1",
        api_key="bench",
        max_retries=0,
        http_client=openai.DefaultHttpxClient(transport=http.MockTransport(answer)),
    )


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


class _Rounds:
    """What one measurement's rounds collected, per configuration."""

    def __init__(self) -> None:
        self.samples: dict[str, list[float]] = {name: [] for name in CONFIGURATIONS}
        self.medians: dict[str, list[float]] = {name: [] for name in CONFIGURATIONS}
        self.means: dict[str, list[float]] = {name: [] for name in CONFIGURATIONS}
        self.cpu: dict[str, list[float]] = {name: [] for name in CONFIGURATIONS}

    def add(self, name: str, measured: list[float], cpu_measured: list[float]) -> None:
        self.samples[name].extend(measured)
        self.medians[name].append(statistics.median(measured) * 1e6)
        self.means[name].append(statistics.fmean(measured) * 1e6)
        self.cpu[name].append(statistics.median(cpu_measured) * 1e6)

    def figures(self) -> dict[str, Any]:
        others = ("peer", "ours", "floor")

        def paired(per_round: dict[str, list[float]], name: str) -> list[float]:
            return [m - b for m, b in zip(per_round[name], per_round["none"], strict=True)]

        def ratio(added: dict[str, float]) -> float | None:
            return round(added["ours"] / added["peer"], 3) if added["peer"] > 0 else None

        added = {name: paired(self.medians, name) for name in others}
        added_us = {name: statistics.median(values) for name, values in added.items()}
        cpu_added = {name: statistics.median(paired(self.cpu, name)) for name in others}
        base = self.medians["none"]
        over_none = {
            name: statistics.median(m / b for m, b in zip(self.medians[name], base, strict=True))
            for name in others
        }
        return {
            "median_us": {k: round(statistics.median(v), 1) for k, v in self.medians.items()},
            "added_us": {k: round(v, 1) for k, v in added_us.items()},
            "spread_added_us": {k: [round(q, 1) for q in _quartiles(v)] for k, v in added.items()},
            "mean_added_us": {name: round(statistics.median(paired(self.means, name)), 1) for name in others},
            "ratio_added_ours_over_peer": ratio(added_us),
            "ratio_over_none": {k: round(v, 4) for k, v in over_none.items()},
            "ours_own_us": round(added_us["ours"] - added_us["floor"], 1),
            "pooled_median_us": {k: round(statistics.median(v) * 1e6, 1) for k, v in self.samples.items()},
            "cpu_median_us": {k: round(statistics.median(v), 1) for k, v in self.cpu.items()},
            "cpu_added_us": {k: round(v, 1) for k, v in cpu_added.items()},
            "cpu_ratio_added_ours_over_peer": ratio(cpu_added),
        }


def _print(name: str, figures: dict[str, Any]) -> None:
    print(f"{name}:")
    for configuration in CONFIGURATIONS:
        print(
            f"  {configuration:5s} median {figures['median_us'][configuration]:9.1f} us/call"
            f" (pooled {figures['pooled_median_us'][configuration]:9.1f},"
            f" thread CPU {figures['cpu_median_us'][configuration]:9.1f})"
        )
    added, spread = figures["added_us"], figures["spread_added_us"]
    print(
        "  added per call (median, IQR): "
        + ", ".join(f"{n} {added[n]:.1f} us {spread[n]}" for n in ("peer", "ours", "floor"))
    )
    cpu = figures["cpu_added_us"]
    print("  thread CPU added per call: " + ", ".join(f"{n} {cpu[n]:.1f} us" for n in cpu))
    print(
        f"  ours added / peer added = {figures['ratio_added_ours_over_peer']} (target <= {TARGET}),"
        f" thread CPU {figures['cpu_ratio_added_ours_over_peer']}"
    )
    print(f"  ours beyond the floor (the same telemetry, hand-written): {figures['ours_own_us']} us per call")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100, help="calls per configuration per round")
    parser.add_argument("--rounds", type=int, default=30, help="interleaved rounds")
    parser.add_argument("--warmup", type=int, default=100, help="unmeasured calls per configuration first")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    parser.add_argument(
        "--span-events", action="store_true", help="turn the opt-in span events on (ours and its floor)"
    )
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
        server_client = openai.OpenAI(base_url=base_url, api_key="bench", max_retries=0)
        raw = server_client.chat.completions.with_raw_response.create(model=MODEL, messages=MESSAGES)  # type: ignore[arg-type]
        clients = {
            "in_process": _in_process_client(openai, raw.http_response.content),
            "local_server": server_client,
        }
        selection = Selection(
            Arm(prompt_name="support-reply", version=3, cohort="canary", rollout_id="ro_bench", template="t"),
            "user-1",
        )
        peer = OpenAIInstrumentor()
        ours = PromptCanaryInstrumentor()
        config = InstrumentationConfig(span_events=args.span_events)

        def bare(client: Any) -> Callable[[], object]:
            def call() -> object:
                return client.chat.completions.create(model=MODEL, messages=MESSAGES)

            return call

        def selected(inner: Callable[[], object]) -> Callable[[], object]:
            def call() -> object:
                with selection:
                    return inner()

            return call

        calls: dict[str, dict[str, Callable[[], object]]] = {}
        for measurement, client in clients.items():
            captured = _capture(ours, config, selected(bare(client)))
            floor = _floor(bare(client), tracer_provider, meter_provider, captured)
            calls[measurement] = {
                "none": selected(bare(client)),
                "peer": selected(bare(client)),
                "ours": selected(bare(client)),
                "floor": selected(floor),
            }

        def setup(name: str) -> None:
            if name == "peer":
                peer.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
            elif name == "ours":
                ours.instrument(
                    config=config,
                    tracer_provider=tracer_provider,
                    meter_provider=meter_provider,
                    logger_provider=logger_provider,
                )

        def teardown(name: str) -> None:
            if name == "peer":
                peer.uninstrument()
            elif name == "ours":
                ours.uninstrument()

        rounds = {measurement: _Rounds() for measurement in MEASUREMENTS}
        for measurement in MEASUREMENTS:
            for name in CONFIGURATIONS:
                setup(name)
                _measure(calls[measurement][name], args.warmup)
                teardown(name)
        for round_index in range(args.rounds):
            shift = round_index % len(CONFIGURATIONS)
            for measurement in MEASUREMENTS:
                for name in CONFIGURATIONS[shift:] + CONFIGURATIONS[:shift]:
                    setup(name)
                    measured, cpu_measured = _measure(calls[measurement][name], args.calls)
                    teardown(name)
                    rounds[measurement].add(name, measured, cpu_measured)
        tracer_provider.shutdown()
        meter_provider.shutdown()
    finally:
        if server.stdin is not None:
            server.stdin.close()
        server.wait(timeout=30)

    figures: dict[str, Any] = {
        "calls_per_configuration": args.calls * args.rounds,
        "rounds": args.rounds,
        "span_events": args.span_events,
    }
    print(f"calls per configuration and measurement: {args.calls * args.rounds} in {args.rounds} rounds")
    for measurement in MEASUREMENTS:
        figures[measurement] = rounds[measurement].figures()
        _print(measurement, figures[measurement])
    figures["targets"] = {"ratio_added_ours_over_peer": TARGET}
    if args.json:
        print(json.dumps(figures, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
