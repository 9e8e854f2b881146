"""A minimal OTLP/HTTP (protobuf) receiver on 127.0.0.1 that keeps what it receives, for tests."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from tests.support.loopback import http_server

_KINDS = {
    "/v1/traces": ExportTraceServiceRequest,
    "/v1/metrics": ExportMetricsServiceRequest,
    "/v1/logs": ExportLogsServiceRequest,
}


@dataclass
class Received:
    traces: list[ExportTraceServiceRequest] = field(default_factory=list)
    metrics: list[ExportMetricsServiceRequest] = field(default_factory=list)
    logs: list[ExportLogsServiceRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def spans(self) -> list[Any]:
        return [span for _, span in self.scoped_spans()]

    def scoped_spans(self) -> list[tuple[str, Any]]:
        """(instrumentation scope name, span) of every span received."""
        with self.lock:
            return [
                (ss.scope.name, s)
                for r in self.traces
                for rs in r.resource_spans
                for ss in rs.scope_spans
                for s in ss.spans
            ]

    def log_records(self, event_name: str | None = None) -> list[Any]:
        """Every log record received (of ``event_name`` only, when given)."""
        with self.lock:
            return [
                record
                for r in self.logs
                for rl in r.resource_logs
                for sl in rl.scope_logs
                for record in sl.log_records
                if event_name is None or record.event_name == event_name
            ]

    def metric_points(self, name: str) -> list[tuple[dict[str, Any], Any]]:
        found: list[tuple[dict[str, Any], Any]] = []
        with self.lock:
            for request in self.metrics:
                for rm in request.resource_metrics:
                    for sm in rm.scope_metrics:
                        for metric in sm.metrics:
                            if metric.name != name:
                                continue
                            kind = metric.WhichOneof("data")
                            for point in getattr(metric, kind).data_points:
                                found.append((attributes(point.attributes), point))
        return found


def value_of(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return tuple(value_of(v) for v in value.array_value.values)
    return getattr(value, kind) if kind else None


def attributes(items: Any) -> dict[str, Any]:
    return {kv.key: value_of(kv.value) for kv in items if isinstance(kv, KeyValue)}


@contextmanager
def otlp_receiver() -> Iterator[tuple[str, Received]]:
    """Serve OTLP/HTTP on 127.0.0.1; yields (endpoint, received)."""
    received = Received()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length)
            if self.headers.get("content-encoding") == "gzip":
                body = gzip.decompress(body)
            kind = _KINDS.get(self.path)
            if kind is None:
                self.send_response(404)
                self.end_headers()
                return
            message = kind()
            message.ParseFromString(body)
            with received.lock:
                {"/v1/traces": received.traces, "/v1/metrics": received.metrics, "/v1/logs": received.logs}[
                    self.path
                ].append(message)
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return

    with http_server(Handler, name="OTLP receiver") as url:
        yield url, received
