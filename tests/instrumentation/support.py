"""Helpers of the instrumentation suite: reading spans, metrics and events back."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_prompt_canary.demo.behaviour import ModelRequest, Reply
from otel_prompt_canary.routing.selection import Arm, Selection

LLM_OPERATIONS = ("chat", "text_completion", "generate_content")


class OpenSpans(SpanProcessor):
    """Every span started and not ended yet, by any instrumentation: a test asserts none is left."""

    def __init__(self) -> None:
        self.spans: dict[int, Span] = {}

    def on_start(self, span: Span, parent_context: Any = None) -> None:
        self.spans[span.context.span_id] = span

    def on_end(self, span: ReadableSpan) -> None:
        if span.context is not None:
            self.spans.pop(span.context.span_id, None)


@dataclass
class Telemetry:
    tracer_provider: TracerProvider
    spans: InMemorySpanExporter
    meter_provider: MeterProvider
    reader: InMemoryMetricReader
    logger_provider: LoggerProvider
    logs: InMemoryLogRecordExporter
    started: OpenSpans

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())

    def open_spans(self) -> list[str]:
        """The names of the spans started and not ended (none, when nothing is left open)."""
        return sorted(span.name for span in self.started.spans.values())

    def llm_spans(self) -> list[ReadableSpan]:
        """Finished spans that stand for an LLM call (ours or another instrumentation's)."""
        return [
            s
            for s in self.finished()
            if (s.attributes or {}).get("gen_ai.operation.name") in LLM_OPERATIONS
            or (s.attributes or {}).get("openinference.span.kind") == "LLM"
            or s.name.startswith("anthropic.messages")
            or s.name == "openai.response"  # OpenLLMetry's Responses span
        ]

    def tagged(self) -> list[ReadableSpan]:
        """Finished spans that carry this project's prompt attributes."""
        return [s for s in self.finished() if "gen_ai.prompt.name" in (s.attributes or {})]

    def one_llm_span(self) -> ReadableSpan:
        spans = self.llm_spans()
        assert len(spans) == 1, [s.name for s in self.finished()]
        return spans[0]

    def points(self, name: str) -> list[tuple[dict[str, Any], Any]]:
        """(attributes, data point) of every point of metric ``name``."""
        data = self.reader.get_metrics_data()
        found: list[tuple[dict[str, Any], Any]] = []
        if data is None:
            return found
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        found.extend((dict(p.attributes or {}), p) for p in metric.data.data_points)
        return found

    def total(self, name: str, **attributes: Any) -> float:
        """Sum of a counter's points (or histogram counts) whose attributes include ``attributes``."""
        wanted = {k.replace("__", "."): v for k, v in attributes.items()}
        total = 0.0
        for attrs, point in self.points(name):
            if all(attrs.get(k) == v for k, v in wanted.items()):
                total += getattr(point, "value", None) if hasattr(point, "value") else point.count
        return total

    def log_events(self, name: str = "gen_ai.evaluation.result") -> list[Mapping[str, Any]]:
        return [
            dict(r.log_record.attributes or {})
            for r in self.logs.get_finished_logs()
            if r.log_record.event_name == name
        ]


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def events(span: ReadableSpan, name: str = "gen_ai.evaluation.result") -> list[dict[str, Any]]:
    return [dict(e.attributes or {}) for e in span.events if e.name == name]


def selection(
    prompt: str = "support-reply",
    version: int = 2,
    cohort: str = "canary",
    rollout_id: str | None = "ro_test",
    unit_key: str | None = "user-1",
) -> Selection:
    arm = Arm(
        prompt_name=prompt,
        version=version,
        cohort=cohort,  # type: ignore[arg-type]
        rollout_id=rollout_id,
        template="You answer support questions.",
    )
    return Selection(arm, unit_key)


def support_bot_model(request: ModelRequest) -> Reply:
    """The README's support assistant as the simulated LLM plays it: JSON answers,
    ``{"answer", "category"}``, except under the warm, friendly (canary) prompt, whose answers to
    billing questions come wrapped in prose: still HTTP 200, no longer JSON."""
    category = "billing" if "bill" in request.user.casefold() else "shipping"
    body = json.dumps({"answer": "Done.", "category": category})
    if "friendly" in request.system and category == "billing":
        return Reply(text=f"Of course! Here is what I found:\n\n{body}")
    return Reply(text=body)
