"""A minimal OTLP/gRPC receiver on 127.0.0.1: what ``opentelemetry-instrument`` exports to by default."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from typing import Any

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from tests.instrumentation.otlp_receiver import Received


@contextmanager
def otlp_grpc_receiver() -> Iterator[tuple[str, Received]]:
    """Serve OTLP/gRPC (traces, metrics, logs) on 127.0.0.1; yields (endpoint, received)."""
    received = Received()

    def keep(into: list[Any], answer: Any) -> Any:
        def export(request: Any, _context: Any) -> Any:
            with received.lock:
                into.append(request)
            return answer

        return export

    class Traces(trace_service_pb2_grpc.TraceServiceServicer):
        Export = staticmethod(keep(received.traces, trace_service_pb2.ExportTraceServiceResponse()))

    class Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
        Export = staticmethod(keep(received.metrics, metrics_service_pb2.ExportMetricsServiceResponse()))

    class Logs(logs_service_pb2_grpc.LogsServiceServicer):
        Export = staticmethod(keep(received.logs, logs_service_pb2.ExportLogsServiceResponse()))

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Traces(), server)
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(Metrics(), server)
    logs_service_pb2_grpc.add_LogsServiceServicer_to_server(Logs(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"http://127.0.0.1:{port}", received
    finally:
        server.stop(grace=None)
