"""Names of the span attributes, events and metrics this instrumentation emits.

The ``prompt_canary.*`` names and the metric names are the project's public contract (ARCHITECTURE.md):
dashboards, alert rules and the Collector processor read them. The ``gen_ai.*`` names follow the
OpenTelemetry GenAI semantic conventions (development status) as of their ``semantic-conventions-genai``
repository: ``gen_ai.provider.name`` replaced ``gen_ai.system``, and an evaluation result is the
``gen_ai.evaluation.result`` event.
"""

from __future__ import annotations

from typing import Final

# -- the project's attributes ---------------------------------------------------------------------

PROMPT_NAME: Final = "gen_ai.prompt.name"
PROMPT_VERSION: Final = "gen_ai.prompt.version"
COHORT: Final = "prompt_canary.cohort"
ROLLOUT_ID: Final = "prompt_canary.rollout.id"
#: How the prompt was identified: ``selection`` (a router Selection was active) or ``fingerprint``.
PROMPT_SOURCE: Final = "prompt_canary.prompt.source"
#: True on a call whose system prompt the instrumentation replaced (rewrite mode).
REWRITTEN: Final = "prompt_canary.rewritten"
CHECK_PREFIX: Final = "prompt_canary.check."
SCORE_PREFIX: Final = "prompt_canary.score."
#: Metric attribute naming the check of a ``prompt_canary.checks`` data point.
CHECK: Final = "prompt_canary.check"
CHECK_OUTCOME: Final = "prompt_canary.check.outcome"

# -- optional mirrors for other tools -------------------------------------------------------------

OPENINFERENCE_TEMPLATE_VERSION: Final = "llm.prompt_template.version"
LANGFUSE_PROMPT_NAME: Final = "langfuse.observation.prompt.name"
LANGFUSE_PROMPT_VERSION: Final = "langfuse.observation.prompt.version"

# -- OpenTelemetry GenAI semantic conventions -----------------------------------------------------

OPERATION_NAME: Final = "gen_ai.operation.name"
PROVIDER_NAME: Final = "gen_ai.provider.name"
REQUEST_MODEL: Final = "gen_ai.request.model"
REQUEST_MAX_TOKENS: Final = "gen_ai.request.max_tokens"
REQUEST_TEMPERATURE: Final = "gen_ai.request.temperature"
REQUEST_TOP_P: Final = "gen_ai.request.top_p"
REQUEST_TOP_K: Final = "gen_ai.request.top_k"
REQUEST_SEED: Final = "gen_ai.request.seed"
REQUEST_STOP_SEQUENCES: Final = "gen_ai.request.stop_sequences"
REQUEST_FREQUENCY_PENALTY: Final = "gen_ai.request.frequency_penalty"
REQUEST_PRESENCE_PENALTY: Final = "gen_ai.request.presence_penalty"
REQUEST_CHOICE_COUNT: Final = "gen_ai.request.choice.count"
REQUEST_STREAM: Final = "gen_ai.request.stream"
OUTPUT_TYPE: Final = "gen_ai.output.type"
RESPONSE_ID: Final = "gen_ai.response.id"
RESPONSE_MODEL: Final = "gen_ai.response.model"
RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
TOKEN_TYPE: Final = "gen_ai.token.type"
SERVER_ADDRESS: Final = "server.address"
SERVER_PORT: Final = "server.port"
ERROR_TYPE: Final = "error.type"

EVALUATION_EVENT: Final = "gen_ai.evaluation.result"
EVALUATION_NAME: Final = "gen_ai.evaluation.name"
EVALUATION_SCORE_VALUE: Final = "gen_ai.evaluation.score.value"
EVALUATION_SCORE_LABEL: Final = "gen_ai.evaluation.score.label"

# -- metrics --------------------------------------------------------------------------------------

METRIC_RESPONSES: Final = "prompt_canary.responses"
METRIC_CHECKS: Final = "prompt_canary.checks"
METRIC_SCORE: Final = "prompt_canary.score"
METRIC_TOKEN_USAGE: Final = "prompt_canary.token.usage"
METRIC_DURATION: Final = "prompt_canary.duration"

#: The OpenTelemetry context / baggage key carrying the unit key used for zero-code cohorts.
UNIT_BAGGAGE_KEY: Final = "prompt_canary.unit"
