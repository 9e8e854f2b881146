"""Zero-code instrumentation of LLM clients: prompt version and cohort on every LLM call span.

Turn it on with no code change::

    OTEL_PROMPT_CANARY_REGISTRY=registry.db opentelemetry-instrument python app.py

or in code::

    from otel_prompt_canary.instrumentation import PromptCanaryInstrumentor

    PromptCanaryInstrumentor().instrument()

It patches the ``openai`` and ``anthropic`` SDKs and OpenAI-compatible HTTP calls made with ``httpx``
or ``httpx2``. Each LLM call span carries ``gen_ai.prompt.name``, ``gen_ai.prompt.version``,
``prompt_canary.cohort`` and ``prompt_canary.rollout.id``, and the outcome of the configured checks
(``prompt_canary.check.*``; ``gen_ai.evaluation.result`` span events too with ``span_events``, and log
records for late results); the ``prompt_canary.*`` metrics count responses, check outcomes,
scores, tokens and durations per prompt version and cohort. When the application routes by a control
plane, the same statistics are reported to it (in-app reports, docs/reporting.md), and
:func:`record_feedback` takes a call's feedback key from any process. docs/instrumentation.md has the
details.
"""

from otel_prompt_canary.instrumentation._scoring import settings_of
from otel_prompt_canary.instrumentation.config import ENVIRONMENT, InstrumentationConfig
from otel_prompt_canary.instrumentation.instrumentor import PromptCanaryInstrumentor
from otel_prompt_canary.instrumentation.observers import (
    Observation,
    ObservationListener,
    add_observation_listener,
    record_feedback,
    remove_observation_listener,
)

__all__ = [
    "ENVIRONMENT",
    "InstrumentationConfig",
    "Observation",
    "ObservationListener",
    "PromptCanaryInstrumentor",
    "add_observation_listener",
    "record_feedback",
    "remove_observation_listener",
    "settings_of",
]
