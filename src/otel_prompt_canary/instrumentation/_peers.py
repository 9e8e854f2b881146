"""Other instrumentations that make the LLM call span: whether one is on, and how to tell its spans.

In ``span_mode=auto`` this project makes no LLM span of its own when another instrumentation makes
one (docs/instrumentation.md, "Coexistence"): it tags that span instead. Two questions decide it:

- *is a peer instrumenting this library?* (:func:`instrumenting`): each peer is an OpenTelemetry
  ``BaseInstrumentor``, a singleton whose ``_is_instrumented_by_opentelemetry`` says so;
- *is this span a peer's LLM span?* (:func:`is_llm_span`): a span of another scope whose
  ``gen_ai.operation.name`` is a model call (:data:`LLM_OPERATIONS`; the GenAI semantic conventions:
  ``opentelemetry-instrumentation-genai-*``, OpenLLMetry's chat spans, the anthropic SDK's own spans,
  pydantic-ai), or OpenInference's
  ``openinference.span.kind = LLM``, or one of the few peer spans known to start with neither
  (OpenLLMetry's Responses span, :data:`UNNAMED_LLM_SPANS`), or OpenInference's LangChain span of a
  chat model run, which gets its kind only when it ends (recognised by its run, :func:`langchain_llm_run`).

Spans are related by :func:`parent_id` and :func:`span_id`: a span nested in another peer's LLM span is
not the call's span, and OpenInference's LangChain span is never made current, so that a call finds it
beside its own parent rather than as the current span.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Final

from otel_prompt_canary import names

__all__ = [
    "ANTHROPIC_PEERS",
    "LLM_OPERATIONS",
    "OPENAI_PEERS",
    "OPENINFERENCE_LLM",
    "OPENINFERENCE_SPAN_KIND",
    "UNNAMED_LLM_SPANS",
    "instrumenting",
    "is_llm_span",
    "is_llm_span_start",
    "langchain_llm_run",
    "parent_id",
    "span_id",
]

#: Modules of other OpenAI instrumentations that make their own LLM span per call.
OPENAI_PEERS: Final = (
    "opentelemetry.instrumentation.genai.openai",
    "opentelemetry.instrumentation.openai_v2",
    "opentelemetry.instrumentation.openai",  # OpenLLMetry
    "openinference.instrumentation.openai",
)
#: Modules of other Anthropic instrumentations that make their own LLM span per call.
ANTHROPIC_PEERS: Final = (
    "opentelemetry.instrumentation.genai.anthropic",
    "opentelemetry.instrumentation.anthropic",  # OpenLLMetry
    "openinference.instrumentation.anthropic",
)

#: The ``gen_ai.operation.name`` values of a model call (not ``invoke_agent``, ``execute_tool``...).
LLM_OPERATIONS: Final = frozenset({"chat", "text_completion", "generate_content"})
#: OpenInference's span kind attribute, and its value on an LLM call span.
OPENINFERENCE_SPAN_KIND: Final = "openinference.span.kind"
OPENINFERENCE_LLM: Final = "LLM"

#: (instrumentation scope, span name) of peer LLM spans that start with no attribute saying so.
UNNAMED_LLM_SPANS: Final = frozenset({("opentelemetry.instrumentation.openai.v1", "openai.response")})
_LANGCHAIN: Final = "openinference.instrumentation.langchain"


def instrumenting(modules: tuple[str, ...], class_name: str) -> bool:
    """True when the ``class_name`` instrumentor of one of ``modules`` (already imported) is on."""
    loaded = sys.modules
    for name in modules:
        module = loaded.get(name)
        if module is None:
            continue
        instrumentor = getattr(getattr(module, class_name, None), "_instance", None)
        if instrumentor is not None and getattr(instrumentor, "_is_instrumented_by_opentelemetry", False):
            return True
    return False


def is_llm_span_start(scope: str | None, name: str, attributes: Mapping[str, object] | None) -> bool:
    """True when a span of ``scope`` (not this project's) that starts so is an LLM call span."""
    if attributes:
        if attributes.get(names.OPERATION_NAME) in LLM_OPERATIONS:
            return True
        if attributes.get(OPENINFERENCE_SPAN_KIND) == OPENINFERENCE_LLM:
            return True
    if scope == _LANGCHAIN:
        return langchain_llm_run(name)
    return (scope, name) in UNNAMED_LLM_SPANS


def langchain_llm_run(name: str) -> bool:
    """True when OpenInference's LangChain tracer is starting the span of a chat model or LLM run.

    Its span starts with no attribute (the kind is set when it ends); the tracer's run being started
    (in its ``run_map``, with no span yet) says what it is. Never raises.
    """
    try:
        module = sys.modules.get(_LANGCHAIN)
        instrumentor = getattr(getattr(module, "LangChainInstrumentor", None), "_instance", None)
        tracer = getattr(instrumentor, "_tracer", None)
        runs = getattr(tracer, "run_map", None)
        spans = getattr(tracer, "_spans_by_run", None)
        if not runs or spans is None:
            return False
        return any(
            run.run_type == "llm" and run.name == name and run.id not in spans for run in list(runs.values())
        )
    except Exception:
        return False


def span_id(span: object) -> int:
    """The id of ``span`` (0 for no span, or an invalid one)."""
    try:
        return int(span.get_span_context().span_id)  # type: ignore[attr-defined]
    except Exception:
        return 0


def parent_id(span: object) -> int:
    """The id of the parent of an SDK span (0 for a root span, or a span that does not say)."""
    parent = getattr(span, "parent", None)
    return int(getattr(parent, "span_id", 0) or 0)


def is_llm_span(span: object, own_scope: str) -> bool:
    """True for a recording span of another instrumentation that stands for an LLM call."""
    try:
        if not span.is_recording():  # type: ignore[attr-defined]
            return False
        scope = getattr(getattr(span, "instrumentation_scope", None), "name", None)
        if scope == own_scope:
            return False
        return is_llm_span_start(scope, getattr(span, "name", ""), getattr(span, "attributes", None))
    except Exception:
        return False
