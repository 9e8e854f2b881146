"""A simulated LLM for tests, the demo and benchmarks, speaking the OpenAI and Anthropic HTTP APIs.

The behaviour side (:class:`Behaviour`, :class:`Rule`, :class:`Reply`, :class:`CanaryDemoModel`) is
plain Python; the server side (:func:`running_simulated_llm`, :func:`create_app`) needs the ``server``
extra (FastAPI and uvicorn) and is imported on first use.

::

    behaviour = Behaviour()
    behaviour.when(user_contains="refund", reply=Reply.failure(429), times=1)
    with running_simulated_llm(behaviour) as llm:
        client = openai.OpenAI(base_url=llm.base_url, api_key="test")
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from otel_prompt_canary.demo.behaviour import (
    API,
    Behaviour,
    Finish,
    ModelRequest,
    Reply,
    Responder,
    Rule,
    ToolCall,
    count_tokens,
    default_responder,
)
from otel_prompt_canary.demo.demo_model import CanaryDemoModel, Cohort, demo_behaviour
from otel_prompt_canary.demo.schema_example import example_for_schema

if TYPE_CHECKING:
    from otel_prompt_canary.demo.simulated_llm import (
        SimulatedLLM,
        create_app,
        running_simulated_llm,
        start_simulated_llm,
    )

__all__ = [
    "API",
    "Behaviour",
    "CanaryDemoModel",
    "Cohort",
    "Finish",
    "ModelRequest",
    "Reply",
    "Responder",
    "Rule",
    "SimulatedLLM",
    "ToolCall",
    "count_tokens",
    "create_app",
    "default_responder",
    "demo_behaviour",
    "example_for_schema",
    "running_simulated_llm",
    "start_simulated_llm",
]

_SERVER_NAMES = frozenset({"SimulatedLLM", "create_app", "running_simulated_llm", "start_simulated_llm"})


def __getattr__(name: str) -> Any:
    # The server stack is an optional extra: import it only when one of its names is used.
    if name in _SERVER_NAMES:
        return getattr(importlib.import_module("otel_prompt_canary.demo.simulated_llm"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
