"""Collector benchmark: spans per second through the built ``otelcol-promptcanary``, with and without
the ``promptcanary`` processor, and the processor's memory under 1,000,000 distinct rollout ids.

Everything runs on 127.0.0.1: the distribution built by ``collector/build.sh`` (reused when
unchanged), a stub control plane (Python standard library) that serves ``/v1/policies`` and
accepts every alert and report, and a load generator.

1. **Throughput.** Three Collectors run side by side, identical but for the processor: ``otlp``
   receiver -> ``batch`` -> ``debug`` exporter (basic verbosity, sampled logging, no sending queue,
   so back-pressure reaches the receiver), the same with ``promptcanary`` before ``batch`` (as in
   ``collector/config/gateway.yaml``), and with ``promptcanary`` after ``batch``. The generator
   sends pre-encoded OTLP/HTTP protobuf ``ExportTraceServiceRequest`` bodies (512 spans each, the
   SDK's default export batch) from several keep-alive connections, as fast as the Collector
   accepts them, for a fixed time; the Collectors take turns, in rotating order, over several
   rounds. Every span is an LLM call span as this project's instrumentation writes it (prompt,
   version, cohort, rollout, four checks, a score, token usage, and the four opt-in
   ``gen_ai.evaluation.result`` span events: a heavier span than the default), spread over 8
   rollouts whose policies (the default policy) the processor reads from the stub, judges every
   second and reports every second: its worst case, since it records every span. The figure is
   the median over rounds of the ratio with/without within a round (target >= 0.85); the
   Collector's own CPU time per span (``otelcol_process_cpu_seconds``) is printed too.
2. **Memory.** A Collector with the processor bounded at ``--max-rollouts`` (10,000) receives
   ``--rollouts`` (1,000,000) canary spans, each of a distinct rollout id: first as many as the bound
   (which fill it), then the rest (which overflow it). Its resident memory (``VmRSS`` and the peak
   ``VmHWM`` of ``/proc/<pid>/status``) is read idle, with the bound full and after the last span
   (each time after 5 s without traffic), and so is its live heap: the Collector runs with
   ``GODEBUG=gctrace=1`` and, after each phase, light traffic (spans without rollout attributes)
   drives a few collections, whose lowest "live after GC" figure is the retained state. The
   processor's own metrics (rollouts tracked, spans recorded, overflow by bound, reports) come from
   the Collector's internal telemetry (Prometheus endpoint). The same spans sent to a Collector
   without the processor give the baseline. The expectation: the state is the bound's, so the live
   heap stops growing once the bound is full, and every refused span is counted.

What limits the measurement: the generator, the Collectors and the stub share the machine (2 cores
on the reference machine, where other work may run too), so the absolute spans/s is a loopback
figure for this host, not a capacity plan, and it moves with the machine's load; the ratio within a
round is the figure to watch. The generator does little per request (it re-sends pre-encoded bytes;
about a tenth of a core), so the Collector's decoding dominates. RSS also holds the Go heap's
headroom (its collection goal, about twice the live heap) and memory not yet returned to the
system, hence the live heap beside it. It prints figures and never asserts; ``--json`` prints one
JSON object with every figure as the last line.

    .venv/bin/python benchmarks/bench_collector.py --json
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from otel_prompt_canary.analysis import DEFAULT_POLICY

REPO = Path(__file__).resolve().parents[1]
SECRET = "bench-collector-webhook-secret-0123456789"
SPANS_PER_REQUEST = 512
BENCH_ROLLOUTS = 8
MEMORY_PROMPT = "memory-bench"
ROLLOUT_ID_WIDTH = 10  # "ro" + 8 digits: every memory-run id has the same length

_SAMPLE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$")
_LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')
_GC_LIVE = re.compile(r"^gc \d+ @.*?\d+->\d+->(\d+) MB", re.MULTILINE)


# -- the parts -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def build(binary: str | None) -> Path:
    if binary:
        return Path(binary)
    if shutil.which("go") is None:
        raise SystemExit("Go is not installed: cannot build otelcol-promptcanary (or pass --binary)")
    done = subprocess.run([str(REPO / "collector" / "build.sh")], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"collector/build.sh failed:\n{done.stderr[-4000:]}")
    return Path(done.stdout.strip().splitlines()[-1])


def _rollout_entry(prompt: str, rollout_id: str, started: str) -> dict[str, Any]:
    return {
        "prompt": prompt,
        "rollout_id": rollout_id,
        "state": "ramping",
        "stable_version": 1,
        "canary_version": 2,
        "canary_weight_bp": 1000,
        "step": 0,
        "ramp": list(DEFAULT_POLICY.ramp.percents),
        "step_started_at": started,
        "started_at": started,
        "policy": DEFAULT_POLICY.model_dump(mode="json", exclude_none=True),
    }


class StubControlPlane:
    """Serves ``GET /v1/policies`` (the bench rollouts, default policy) and accepts every POST."""

    def __init__(self) -> None:
        started = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        entries = [_rollout_entry(f"bench-{i}", f"ro-bench-{i}", started) for i in range(BENCH_ROLLOUTS)]
        document = {"policies": {e["prompt"]: e["policy"] for e in entries}, "rollouts": entries}
        body = json.dumps(document).encode()
        self.posts: dict[str, int] = {}
        lock = threading.Lock()
        posts = self.posts

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with lock:
                    posts[self.path] = posts.get(self.path, 0) + 1
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def collector_config(
    http_port: int,
    metrics_port: int,
    control_plane: str,
    processor: dict[str, Any] | None,
    *,
    first: bool = True,
) -> dict[str, Any]:
    """otlp -> [promptcanary] -> batch -> debug (sampled, no queue), with a Prometheus endpoint.

    ``first=False`` puts the processor after ``batch`` instead.
    """
    processors: dict[str, Any] = {"batch": {}}
    chain = ["batch"]
    if processor is not None:
        processors["promptcanary"] = {
            "control_plane": {"endpoint": control_plane, "timeout": "5s"},
            "webhook": {"secret": "${env:PROMPT_CANARY_WEBHOOK_SECRET}"},
            **processor,
        }
        chain = ["promptcanary", "batch"] if first else ["batch", "promptcanary"]
    return {
        "receivers": {
            "otlp": {
                "protocols": {
                    "http": {"endpoint": f"127.0.0.1:{http_port}"},
                    "grpc": {"endpoint": f"127.0.0.1:{free_port()}"},
                }
            }
        },
        "processors": processors,
        "exporters": {
            "debug": {
                "verbosity": "basic",
                "sampling_initial": 1,
                "sampling_thereafter": 1000,
                "sending_queue": {"enabled": False},
            }
        },
        "service": {
            "telemetry": {
                "logs": {"level": "info"},
                "metrics": {
                    "level": "normal",
                    "readers": [
                        {"pull": {"exporter": {"prometheus": {"host": "127.0.0.1", "port": metrics_port}}}}
                    ],
                },
            },
            "pipelines": {"traces": {"receivers": ["otlp"], "processors": chain, "exporters": ["debug"]}},
        },
    }


@dataclass
class Collector:
    name: str
    process: subprocess.Popen[bytes]
    http_port: int
    metrics_url: str
    log_path: Path

    def metrics(self) -> list[tuple[str, dict[str, str], float]]:
        with urllib.request.urlopen(self.metrics_url, timeout=10) as answer:
            text = answer.read().decode()
        found = []
        for line in text.splitlines():
            match = _SAMPLE.match(line) if line and not line.startswith("#") else None
            if match is not None:
                name, labels, value = match.groups()
                found.append((name, dict(_LABEL.findall(labels or "")), float(value)))
        return found

    def metric(self, name: str, **labels: str) -> float:
        """The sum of the samples of one of the Collector's own metrics whose labels match."""
        return sum(
            v
            for n, found, v in self.metrics()
            if n == name and all(found.get(k) == x for k, x in labels.items())
        )

    def status_kib(self, field: str) -> int:
        """A field of ``/proc/<pid>/status`` in KiB (``VmRSS``: resident now, ``VmHWM``: peak)."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        (kib,) = re.findall(rf"^{field}:\s+(\d+) kB$", status, re.MULTILINE)
        return int(kib)

    def gc_live_mib(self) -> list[int]:
        """The live heap after each garbage collection so far (``GODEBUG=gctrace=1`` lines), in MB."""
        return [int(m) for m in _GC_LIVE.findall(self.log_path.read_text(errors="replace"))]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_collector(
    binary: Path,
    workdir: Path,
    name: str,
    config_of: Callable[[int, int], dict[str, Any]],
    *,
    gctrace: bool = False,
) -> Collector:
    http_port, metrics_port = free_port(), free_port()
    config_path = workdir / f"{name}.yaml"
    config_path.write_text(yaml.safe_dump(config_of(http_port, metrics_port), sort_keys=False))
    log_path = workdir / f"{name}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "GO"))}
    env["PROMPT_CANARY_WEBHOOK_SECRET"] = SECRET
    if gctrace:
        env["GODEBUG"] = "gctrace=1"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(binary), "--config", str(config_path)], stdout=log, stderr=subprocess.STDOUT, env=env
        )
    collector = Collector(name, process, http_port, f"http://127.0.0.1:{metrics_port}/metrics", log_path)
    deadline = time.monotonic() + 30
    while "Everything is ready" not in log_path.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            collector.stop()
            raise SystemExit(f"the Collector {name} did not start:\n{log_path.read_text()[-4000:]}")
        time.sleep(0.05)
    return collector


# -- the spans -----------------------------------------------------------------------------------


def _kv(key: str, value: str | bool | int | float | list[str]) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    if isinstance(value, list):
        return KeyValue(
            key=key, value=AnyValue(array_value=ArrayValue(values=[AnyValue(string_value=v) for v in value]))
        )
    return KeyValue(key=key, value=AnyValue(string_value=value))


def _llm_span(index: int, prompt: str, rollout_id: str, canary: bool, now_ns: int) -> Span:
    checks = {"json_valid": True, "refusal": True, "truncation": True, "max_output_tokens": True}
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4.1-mini",
        "gen_ai.response.model": "gpt-4.1-mini-2025-04-14",
        "gen_ai.response.id": f"chatcmpl-{index:012d}",
        "gen_ai.response.finish_reasons": ["stop"],
        "gen_ai.output.type": "json",
        "server.address": "api.openai.com",
        "server.port": 443,
        "gen_ai.usage.input_tokens": 180 + index % 40,
        "gen_ai.usage.output_tokens": 60 + index % 25,
        "gen_ai.prompt.name": prompt,
        "gen_ai.prompt.version": "2" if canary else "1",
        "prompt_canary.cohort": "canary" if canary else "stable",
        "prompt_canary.rollout.id": rollout_id,
        "prompt_canary.prompt.source": "selection",
        **{f"prompt_canary.check.{name}": ok for name, ok in checks.items()},
        "prompt_canary.score.output_tokens": float(60 + index % 25),
    }
    events = [
        Span.Event(
            time_unix_nano=now_ns,
            name="gen_ai.evaluation.result",
            attributes=[
                _kv("gen_ai.evaluation.name", name),
                _kv("gen_ai.evaluation.score.value", 1.0),
                _kv("gen_ai.evaluation.score.label", "pass"),
                _kv("gen_ai.response.id", f"chatcmpl-{index:012d}"),
            ],
        )
        for name in checks
    ]
    return Span(
        trace_id=(index + 1).to_bytes(16, "big"),
        span_id=(index + 1).to_bytes(8, "big"),
        name="chat gpt-4.1-mini",
        kind=Span.SPAN_KIND_CLIENT,
        start_time_unix_nano=now_ns - 850_000_000,
        end_time_unix_nano=now_ns,
        attributes=[_kv(k, v) for k, v in attributes.items()],
        events=events,
    )


def _request(spans: Sequence[Span]) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.extend(
        [_kv("service.name", "support-bot"), _kv("service.version", "1.4.2"), _kv("host.name", "app-0")]
    )
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = "otel_prompt_canary.instrumentation"
    scope_spans.spans.extend(spans)
    return request


def throughput_bodies(count: int) -> list[bytes]:
    """``count`` requests of LLM call spans over the bench rollouts, 10% of them canary."""
    now_ns = time.time_ns()
    bodies = []
    for b in range(count):
        spans = []
        for i in range(SPANS_PER_REQUEST):
            n = b * SPANS_PER_REQUEST + i
            r = n % BENCH_ROLLOUTS
            spans.append(_llm_span(n, f"bench-{r}", f"ro-bench-{r}", n % 10 == 0, now_ns))
        bodies.append(_request(spans).SerializeToString())
    return bodies


class DistinctRollouts:
    """Requests whose every span carries a new rollout id, patched into one pre-encoded template."""

    def __init__(self) -> None:
        now_ns = time.time_ns()
        placeholders = [f"ro{i:0{ROLLOUT_ID_WIDTH - 2}d}" for i in range(SPANS_PER_REQUEST)]
        spans = [
            _llm_span(i, MEMORY_PROMPT, placeholders[i], i % 2 == 0, now_ns) for i in range(SPANS_PER_REQUEST)
        ]
        self.template = _request(spans).SerializeToString()
        self.offsets = []
        for placeholder in placeholders:
            encoded = placeholder.encode()
            offset = self.template.find(encoded)
            assert offset >= 0 and self.template.find(encoded, offset + 1) < 0, placeholder
            self.offsets.append(offset)

    def body(self, batch: int) -> bytes:
        """Batch ``batch``: rollout ids ``batch * 512`` to ``batch * 512 + 511``."""
        data = bytearray(self.template)
        first = batch * SPANS_PER_REQUEST
        for i, offset in enumerate(self.offsets):
            data[offset : offset + ROLLOUT_ID_WIDTH] = f"ro{first + i:0{ROLLOUT_ID_WIDTH - 2}d}".encode()
        return bytes(data)


# -- the load generator --------------------------------------------------------------------------


@dataclass
class Sent:
    accepted_spans: int
    refused_requests: int
    seconds: float


def send_for(port: int, bodies: Sequence[bytes], seconds: float, connections: int) -> Sent:
    """Send ``bodies`` round robin from ``connections`` keep-alive connections for ``seconds``."""
    accepted = [0] * connections
    refused = [0] * connections
    barrier = threading.Barrier(connections + 1)
    stop_at = [0.0]

    def run(k: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Content-Type": "application/x-protobuf"}
        barrier.wait()
        i = k
        while time.perf_counter() < stop_at[0]:
            conn.request("POST", "/v1/traces", body=bodies[i % len(bodies)], headers=headers)
            answer = conn.getresponse()
            answer.read()
            if answer.status == 200:
                accepted[k] += SPANS_PER_REQUEST
            else:
                refused[k] += 1
            i += connections
        conn.close()

    threads = [threading.Thread(target=run, args=(k,)) for k in range(connections)]
    for thread in threads:
        thread.start()
    began = time.perf_counter()
    stop_at[0] = began + seconds
    barrier.wait()
    for thread in threads:
        thread.join()
    return Sent(sum(accepted), sum(refused), time.perf_counter() - began)


def send_all(port: int, bodies: Callable[[int], bytes], first: int, count: int, connections: int) -> int:
    """Send batches ``first .. first + count - 1`` once each; returns the refused requests."""
    refused = [0] * connections
    lock = threading.Lock()
    cursor = [first]

    def run(k: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Content-Type": "application/x-protobuf"}
        while True:
            with lock:
                batch = cursor[0]
                cursor[0] += 1
            if batch >= first + count:
                break
            conn.request("POST", "/v1/traces", body=bodies(batch), headers=headers)
            answer = conn.getresponse()
            answer.read()
            if answer.status != 200:
                refused[k] += 1
        conn.close()

    threads = [threading.Thread(target=run, args=(k,)) for k in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(refused)


# -- the two parts -------------------------------------------------------------------------------


#: The throughput configurations: the processor's place in the traces pipeline, or none.
CONFIGURATIONS: dict[str, str | None] = {
    "without": None,
    "with": "before batch",  # otlp -> promptcanary -> batch -> debug, as collector/config/gateway.yaml
    "with_after_batch": "after batch",  # otlp -> batch -> promptcanary -> debug
}


def throughput(
    binary: Path, workdir: Path, stub: StubControlPlane, args: argparse.Namespace
) -> dict[str, Any]:
    processor = {
        "policy": {"source": "control_plane", "refresh_interval": "1s"},
        "report_interval": "1s",
        "report_window": "1s",
        "evaluation_interval": "1s",
    }

    def config_of(place: str | None) -> Callable[[int, int], dict[str, Any]]:
        def config(http_port: int, metrics_port: int) -> dict[str, Any]:
            settings = None if place is None else processor
            return collector_config(
                http_port, metrics_port, stub.url, settings, first=place == "before batch"
            )

        return config

    collectors: dict[str, Collector] = {}
    try:
        for name, place in CONFIGURATIONS.items():
            collectors[name] = start_collector(binary, workdir, name, config_of(place))
        bodies = throughput_bodies(8)
        for collector in collectors.values():
            send_for(collector.http_port, bodies, args.warmup, args.connections)
        rates: dict[str, list[float]] = {name: [] for name in collectors}
        cpu_us: dict[str, list[float]] = {name: [] for name in collectors}
        refused = dict.fromkeys(collectors, 0)
        names = list(collectors)
        for round_index in range(args.rounds):
            shift = round_index % len(names)
            for name in names[shift:] + names[:shift]:
                collector = collectors[name]
                cpu_before = collector.metric("otelcol_process_cpu_seconds")
                sent = send_for(collector.http_port, bodies, args.duration, args.connections)
                cpu = collector.metric("otelcol_process_cpu_seconds") - cpu_before
                rates[name].append(sent.accepted_spans / sent.seconds)
                cpu_us[name].append(1e6 * cpu / max(1, sent.accepted_spans))
                refused[name] += sent.refused_requests
        time.sleep(2.5)  # one more evaluation, report and policy refresh
        processed = {
            name: {
                "inspected": int(c.metric("otelcol_processor_promptcanary_spans_inspected")),
                "recorded": int(c.metric("otelcol_processor_promptcanary_spans_recorded")),
                "exported": int(c.metric("otelcol_exporter_sent_spans", exporter="debug")),
                "verdicts": int(c.metric("otelcol_processor_promptcanary_verdicts")),
            }
            for name, c in collectors.items()
        }
    finally:
        for collector in collectors.values():
            collector.stop()
    rate = {name: statistics.median(values) for name, values in rates.items()}
    cpu_median = {name: statistics.median(values) for name, values in cpu_us.items()}
    # Each round measures the configurations back to back: the ratio within a round cancels most of
    # the drift of whatever else runs on the machine, and the median of rounds drops the outliers.
    paired = {
        name: statistics.median(w / wo for w, wo in zip(rates[name], rates["without"], strict=True))
        for name in ("with", "with_after_batch")
    }
    return {
        "spans_per_request": SPANS_PER_REQUEST,
        "connections": args.connections,
        "seconds_per_round": args.duration,
        "rounds": args.rounds,
        "spans_per_second": {name: round(v) for name, v in rate.items()},
        "spans_per_second_rounds": {name: [round(v) for v in values] for name, values in rates.items()},
        "ratio_with_over_without": round(paired["with"], 3),
        "ratio_with_after_batch_over_without": round(paired["with_after_batch"], 3),
        "ratio_of_medians": {
            "with": round(rate["with"] / rate["without"], 3),
            "with_after_batch": round(rate["with_after_batch"] / rate["without"], 3),
        },
        "target_ratio": 0.85,
        "collector_cpu_us_per_span": {name: round(v, 2) for name, v in cpu_median.items()},
        "cpu_ratio_with_over_without": round(cpu_median["with"] / cpu_median["without"], 3),
        "refused_requests": refused,
        "spans": processed,
        "control_plane_posts": dict(stub.posts),
    }


def _settle(collector: Collector, plain: bytes, *, deliveries: bool) -> tuple[int, int]:
    """Let deliveries drain, drive a few collections with light traffic, then idle 5 s.

    Returns (resident KiB after the idle time, live heap MiB): the lowest live heap the collections
    during the light traffic saw, which is the retained state plus one small request.
    """
    if deliveries:
        time.sleep(2.5)  # a report tick
        done = -1.0
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            now = collector.metric("otelcol_processor_promptcanary_deliveries") + collector.metric(
                "otelcol_processor_promptcanary_delivery_queue_dropped"
            )
            if now == done:
                break
            done = now
            time.sleep(1)
    seen = len(collector.gc_live_mib())
    deadline = time.monotonic() + 20
    while len(collector.gc_live_mib()) < seen + 4 and time.monotonic() < deadline:
        send_for(collector.http_port, [plain], 0.5, 1)
    live = collector.gc_live_mib()[seen:]
    time.sleep(5)  # idle: the Go runtime returns freed memory above its goal to the system
    return collector.status_kib("VmRSS"), min(live) if live else -1


def memory(binary: Path, workdir: Path, stub: StubControlPlane, args: argparse.Namespace) -> dict[str, Any]:
    bound = args.max_rollouts
    processor = {
        "policy": {"source": "none"},
        "limits": {"max_rollouts": bound, "idle_timeout": "1h"},
        # Room for one report per tracked rollout at each report tick.
        "webhook": {"secret": "${env:PROMPT_CANARY_WEBHOOK_SECRET}", "queue_size": bound},
        "report_interval": "2s",
        "report_window": "60s",
        "evaluation_interval": "1s",
    }
    batches = -(-args.rollouts // SPANS_PER_REQUEST)
    filling = min(batches, -(-bound // SPANS_PER_REQUEST))
    spans = DistinctRollouts()
    plain = plain_body()
    mib = 1024.0

    baseline = start_collector(
        binary, workdir, "memory-without", lambda h, m: collector_config(h, m, stub.url, None), gctrace=True
    )
    try:
        idle_rss, idle_live = _settle(baseline, plain, deliveries=False)
        began = time.perf_counter()
        refused = send_all(baseline.http_port, spans.body, 0, batches, args.connections)
        seconds = time.perf_counter() - began
        after_rss, after_live = _settle(baseline, plain, deliveries=False)
        without = {
            "rss_idle_mib": round(idle_rss / mib, 1),
            "rss_after_mib": round(after_rss / mib, 1),
            "rss_peak_mib": round(baseline.status_kib("VmHWM") / mib, 1),
            "live_heap_idle_mib": idle_live,
            "live_heap_after_mib": after_live,
            "send_seconds": round(seconds, 1),
            "refused_requests": refused,
        }
    finally:
        baseline.stop()

    bounded = start_collector(
        binary,
        workdir,
        "memory-with",
        lambda h, m: collector_config(h, m, stub.url, processor),
        gctrace=True,
    )
    try:
        idle_rss, idle_live = _settle(bounded, plain, deliveries=False)
        refused = send_all(bounded.http_port, spans.body, 0, filling, args.connections)
        full_rss, full_live = _settle(bounded, plain, deliveries=True)
        refused += send_all(bounded.http_port, spans.body, filling, batches - filling, args.connections)
        after_rss, after_live = _settle(bounded, plain, deliveries=True)
        m = bounded.metric
        with_processor = {
            "rss_idle_mib": round(idle_rss / mib, 1),
            "rss_bound_full_mib": round(full_rss / mib, 1),
            "rss_after_mib": round(after_rss / mib, 1),
            "rss_peak_mib": round(bounded.status_kib("VmHWM") / mib, 1),
            "live_heap_idle_mib": idle_live,
            "live_heap_bound_full_mib": full_live,
            "live_heap_after_mib": after_live,
            "rollouts_tracked": int(m("otelcol_processor_promptcanary_rollouts_tracked")),
            "spans_recorded": int(m("otelcol_processor_promptcanary_spans_recorded")),
            "overflow_rollouts": int(m("otelcol_processor_promptcanary_overflow", limit="rollouts")),
            "overflow_all_limits": int(m("otelcol_processor_promptcanary_overflow")),
            "reports_delivered": int(m("otelcol_processor_promptcanary_deliveries", kind="report")),
            "reports_dropped": int(m("otelcol_processor_promptcanary_delivery_queue_dropped", kind="report")),
            "refused_requests": refused,
        }
    finally:
        bounded.stop()
    sent = batches * SPANS_PER_REQUEST
    tracked = min(bound, filling * SPANS_PER_REQUEST)
    per_rollout = (full_live - idle_live) * 2**20 / tracked if tracked else 0.0
    return {
        "max_rollouts": bound,
        "distinct_rollout_ids": sent,
        "spans_per_rollout": 1,
        "signals_per_span": 7,
        "without_processor": without,
        "with_processor": with_processor,
        "live_heap_bytes_per_tracked_rollout": round(per_rollout),
        "live_heap_growth_after_bound_mib": after_live - full_live,
        "rss_growth_after_bound_mib": round((after_rss - full_rss) / mib, 1),
        "expected_overflow": sent - tracked,
        "unbounded_projection_gib": round(per_rollout * sent / 2**30, 1),
    }


def plain_body() -> bytes:
    """A request of spans without rollout attributes: the processor inspects them and moves on."""
    now_ns = time.time_ns()
    spans = [
        Span(
            trace_id=(i + 1).to_bytes(16, "big"),
            span_id=(i + 1).to_bytes(8, "big"),
            name="GET /orders/{id}",
            kind=Span.SPAN_KIND_SERVER,
            start_time_unix_nano=now_ns - 5_000_000,
            end_time_unix_nano=now_ns,
            attributes=[_kv("http.request.method", "GET"), _kv("http.response.status_code", 200)],
        )
        for i in range(SPANS_PER_REQUEST)
    ]
    body: bytes = _request(spans).SerializeToString()
    return body


def _report(figures: dict[str, Any]) -> None:
    rate, mem = figures["throughput"], figures["memory"]
    sps, cpu = rate["spans_per_second"], rate["collector_cpu_us_per_span"]
    print(
        f"throughput: {rate['rounds']} rounds x {rate['seconds_per_round']:g} s each, "
        f"{SPANS_PER_REQUEST} LLM call spans per OTLP/HTTP request, {rate['connections']} connections"
    )
    labels = {
        "without": "without promptcanary",
        "with": "with promptcanary (before batch)",
        "with_after_batch": "with promptcanary (after batch)",
    }
    for name, label in labels.items():
        print(
            f"  {label:34s} {sps[name]:>9,} spans/s  {cpu[name]:6.2f} CPU us/span  "
            f"rounds {rate['spans_per_second_rounds'][name]}"
        )
    print(
        f"  ratio with/without (median of per-round ratios) = {rate['ratio_with_over_without']} "
        f"(target >= 0.85); after batch: {rate['ratio_with_after_batch_over_without']}; ratio of the "
        f"medians: {rate['ratio_of_medians']['with']}, {rate['ratio_of_medians']['with_after_batch']}"
    )
    print(f"  Collector CPU per span with/without = {rate['cpu_ratio_with_over_without']}")
    print(
        f"  refused requests {rate['refused_requests']}; control plane received {rate['control_plane_posts']}"
    )
    w, wo = mem["with_processor"], mem["without_processor"]
    print(
        f"memory: {mem['distinct_rollout_ids']:,} canary spans, each of a distinct rollout id, "
        f"limits.max_rollouts {mem['max_rollouts']:,}"
    )
    print(
        f"  without the processor: RSS {wo['rss_idle_mib']} MiB idle, {wo['rss_after_mib']} MiB after "
        f"(peak {wo['rss_peak_mib']}); live heap {wo['live_heap_idle_mib']} -> "
        f"{wo['live_heap_after_mib']} MiB"
    )
    print(
        f"  with the processor:    RSS {w['rss_idle_mib']} MiB idle, {w['rss_bound_full_mib']} MiB with the "
        f"bound full, {w['rss_after_mib']} MiB after the last span (peak {w['rss_peak_mib']})"
    )
    print(
        f"                         live heap {w['live_heap_idle_mib']} -> {w['live_heap_bound_full_mib']} -> "
        f"{w['live_heap_after_mib']} MiB: ~{mem['live_heap_bytes_per_tracked_rollout']:,} bytes per tracked "
        f"rollout; unbounded, {mem['distinct_rollout_ids']:,} rollouts would hold "
        f"~{mem['unbounded_projection_gib']} GiB"
    )
    print(
        f"  rollouts tracked {w['rollouts_tracked']:,}, spans recorded {w['spans_recorded']:,}, "
        f"overflow{{limit=rollouts}} {w['overflow_rollouts']:,} (expected {mem['expected_overflow']:,}); "
        f"reports delivered {w['reports_delivered']:,}, dropped {w['reports_dropped']:,}"
    )
    machine = figures["machine"]
    print(
        f"total {figures['seconds']} s on {machine['cpus']} CPUs; load average "
        f"{machine['load_average_at_start']} at start, {machine['load_average_at_end']} at end"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--binary", help="a built otelcol-promptcanary (default: run collector/build.sh)")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per throughput measurement")
    parser.add_argument("--rounds", type=int, default=10, help="throughput rounds (rotating order)")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds per Collector first")
    parser.add_argument("--connections", type=int, default=4, help="concurrent sender connections")
    parser.add_argument("--rollouts", type=int, default=1_000_000, help="distinct rollout ids (memory)")
    parser.add_argument("--max-rollouts", type=int, default=10_000, help="the processor's bound (memory)")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = parser.parse_args(argv)

    binary = build(args.binary)
    stub = StubControlPlane()
    began = time.perf_counter()
    load = os.getloadavg()[0]
    try:
        with tempfile.TemporaryDirectory(prefix="bench-collector-") as tmp:
            rate = throughput(binary, Path(tmp), stub, args)
            mem = memory(binary, Path(tmp), stub, args)
    finally:
        stub.close()
    figures = {
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_at_start": round(load, 2),
            "load_average_at_end": round(os.getloadavg()[0], 2),
            "python": platform.python_version(),
            "system": platform.system(),
        },
        "throughput": rate,
        "memory": mem,
        "seconds": round(time.perf_counter() - began, 1),
    }
    _report(figures)
    if args.json:
        print(json.dumps(figures, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
