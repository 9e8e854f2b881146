"""The public names of this project: span attributes, event and metric names, signal prefixes.

These strings are a public contract (ARCHITECTURE.md, "Contracts shared across parts"). The Grafana
dashboards and Prometheus alert rules in ``dashboards/``, the rules generated from a policy, the
Collector's ``promptcanary`` processor (Go, which spells them again), the control plane's report
endpoint and users' own queries all select on them. Renaming one breaks those readers silently, with
no error anywhere: a value here changes only on purpose, with the dashboards, the processor and the
documentation in the same change.

- ``gen_ai.*`` names follow the OpenTelemetry GenAI semantic conventions. Where the installed
  ``opentelemetry-semantic-conventions`` defines one, its constant is used (the package publishes the
  GenAI names, still in development, under ``_incubating``); ``gen_ai.prompt.version`` and the
  ``gen_ai.evaluation.result`` event name are spelled here, as the ``semantic-conventions-genai``
  repository defines them. ``gen_ai.provider.name`` replaced ``gen_ai.system``.
- ``prompt_canary.*`` names are the project's own: the cohort and rollout of a call, one attribute
  per check (``prompt_canary.check.<name>``, a boolean) and per score (``prompt_canary.score.<name>``,
  a double), and the metric names.
- :data:`SIGNAL_KINDS` says which statistics each signal prefix carries: a check is a proportion, a
  score or a token count a mean (the values of ``analysis.SignalKind``).

:data:`ACTOR_HEADER`, the one header of the control plane's API that names who asks for a change,
lives here too, since the control plane and its HTTP client both spell it; so does
:data:`TOKEN_VARIABLE`, the environment variable of the control plane credential that the CLI, the
router and the instrumentation read.

This module imports nothing from the package, so every subpackage can use it, the pure ``analysis``
and ``scoring`` included.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final, Literal

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as _gen_ai
from opentelemetry.semconv.attributes import error_attributes as _error
from opentelemetry.semconv.attributes import server_attributes as _server

__all__ = [
    "ACTOR_HEADER",
    "CHECK",
    "CHECK_OUTCOME",
    "CHECK_PREFIX",
    "COHORT",
    "DEFAULT_ENVIRONMENT",
    "DROP_REASON",
    "ENVIRONMENT_PARAMETER",
    "ENVIRONMENT_VARIABLE",
    "ERROR_TYPE",
    "EVALUATION_EVENT",
    "EVALUATION_NAME",
    "EVALUATION_SCORE_LABEL",
    "EVALUATION_SCORE_VALUE",
    "EVAL_CASE_ID",
    "EVAL_CASE_STATUS",
    "EVAL_DATASET",
    "EVAL_RUN_ID",
    "FEEDBACK_KEY",
    "LANGFUSE_PROMPT_NAME",
    "LANGFUSE_PROMPT_VERSION",
    "LIVE_ROLLOUT_PREFIX",
    "METRIC_CHECKS",
    "METRIC_DURATION",
    "METRIC_REPORTS_DROPPED",
    "METRIC_REPORTS_RETRIED",
    "METRIC_REPORTS_SENT",
    "METRIC_RESPONSES",
    "METRIC_SAMPLES_DROPPED",
    "METRIC_SCORE",
    "METRIC_TOKEN_USAGE",
    "OPENINFERENCE_TEMPLATE_VERSION",
    "OPERATION_NAME",
    "OUTPUT_TYPE",
    "PROMPT_NAME",
    "PROMPT_SOURCE",
    "PROMPT_VERSION",
    "PROVIDER_NAME",
    "REPORT_OUTCOME",
    "REQUEST_CHOICE_COUNT",
    "REQUEST_FREQUENCY_PENALTY",
    "REQUEST_MAX_TOKENS",
    "REQUEST_MODEL",
    "REQUEST_PRESENCE_PENALTY",
    "REQUEST_SEED",
    "REQUEST_STOP_SEQUENCES",
    "REQUEST_STREAM",
    "REQUEST_TEMPERATURE",
    "REQUEST_TOP_K",
    "REQUEST_TOP_P",
    "RESPONSE_FINISH_REASONS",
    "RESPONSE_ID",
    "RESPONSE_MODEL",
    "REWRITTEN",
    "ROLLOUT_ID",
    "SCORE_PREFIX",
    "SERVER_ADDRESS",
    "SERVER_PORT",
    "SIGNAL_KINDS",
    "SIGNAL_NAME_PATTERN",
    "TOKEN_TYPE",
    "TOKEN_VARIABLE",
    "UNIT_BAGGAGE_KEY",
    "USAGE_INPUT_TOKENS",
    "USAGE_OUTPUT_TOKENS",
    "USAGE_PREFIX",
    "SignalKindName",
    "signal_kind",
]

# -- the prompt of a call, on every LLM call span and every data point ----------------------------

PROMPT_NAME: Final = _gen_ai.GEN_AI_PROMPT_NAME
PROMPT_VERSION: Final = "gen_ai.prompt.version"
#: ``stable`` or ``canary``.
COHORT: Final = "prompt_canary.cohort"
#: The rollout the call was routed by (absent when no rollout is active).
ROLLOUT_ID: Final = "prompt_canary.rollout.id"
#: How the prompt was identified: ``selection`` (a router Selection was active) or ``fingerprint``.
PROMPT_SOURCE: Final = "prompt_canary.prompt.source"
#: True on a call whose system prompt the instrumentation replaced (rewrite mode).
REWRITTEN: Final = "prompt_canary.rewritten"
#: The call's feedback key (``Selection.feedback_key``): record feedback on the answer with it.
FEEDBACK_KEY: Final = "prompt_canary.feedback.key"

# -- signals: checks and scores -------------------------------------------------------------------

#: Span attribute prefix of a check's boolean outcome: ``prompt_canary.check.<name>``.
CHECK_PREFIX: Final = "prompt_canary.check."
#: Span attribute prefix of a score's double value: ``prompt_canary.score.<name>``.
SCORE_PREFIX: Final = "prompt_canary.score."
#: Prefix of the token counts a call reports (``gen_ai.usage.output_tokens``...).
USAGE_PREFIX: Final = "gen_ai.usage."
#: Metric attribute naming the check of a ``prompt_canary.checks`` data point.
CHECK: Final = "prompt_canary.check"
#: Metric attribute of a ``prompt_canary.checks`` data point: ``pass`` or ``fail``.
CHECK_OUTCOME: Final = "prompt_canary.check.outcome"
#: The ``<name>`` of a check or score (the end of its attribute name): 1-64 of ``a-z``, ``0-9``, ``_``.
SIGNAL_NAME_PATTERN: Final = "[a-z0-9_]{1,64}"

#: The statistics a signal carries: the proportion of True of a check, or the mean of a number.
SignalKindName = Literal["proportion", "mean"]

#: Signal attribute prefix -> the kind of statistics its attributes carry. A report whose statistics
#: contradict their attribute's prefix is refused by the control plane.
SIGNAL_KINDS: Final[Mapping[str, SignalKindName]] = MappingProxyType(
    {CHECK_PREFIX: "proportion", SCORE_PREFIX: "mean", USAGE_PREFIX: "mean"}
)


def signal_kind(attribute: str) -> SignalKindName | None:
    """The kind of statistics ``attribute`` carries, by its prefix; None for an attribute of no signal."""
    return next((kind for prefix, kind in SIGNAL_KINDS.items() if attribute.startswith(prefix)), None)


# -- optional mirrors for other tools -------------------------------------------------------------

OPENINFERENCE_TEMPLATE_VERSION: Final = "llm.prompt_template.version"
LANGFUSE_PROMPT_NAME: Final = "langfuse.observation.prompt.name"
LANGFUSE_PROMPT_VERSION: Final = "langfuse.observation.prompt.version"

# -- OpenTelemetry GenAI semantic conventions, on the spans this project owns ---------------------

OPERATION_NAME: Final = _gen_ai.GEN_AI_OPERATION_NAME
PROVIDER_NAME: Final = _gen_ai.GEN_AI_PROVIDER_NAME
REQUEST_MODEL: Final = _gen_ai.GEN_AI_REQUEST_MODEL
REQUEST_MAX_TOKENS: Final = _gen_ai.GEN_AI_REQUEST_MAX_TOKENS
REQUEST_TEMPERATURE: Final = _gen_ai.GEN_AI_REQUEST_TEMPERATURE
REQUEST_TOP_P: Final = _gen_ai.GEN_AI_REQUEST_TOP_P
REQUEST_TOP_K: Final = _gen_ai.GEN_AI_REQUEST_TOP_K
REQUEST_SEED: Final = _gen_ai.GEN_AI_REQUEST_SEED
REQUEST_STOP_SEQUENCES: Final = _gen_ai.GEN_AI_REQUEST_STOP_SEQUENCES
REQUEST_FREQUENCY_PENALTY: Final = _gen_ai.GEN_AI_REQUEST_FREQUENCY_PENALTY
REQUEST_PRESENCE_PENALTY: Final = _gen_ai.GEN_AI_REQUEST_PRESENCE_PENALTY
REQUEST_CHOICE_COUNT: Final = _gen_ai.GEN_AI_REQUEST_CHOICE_COUNT
REQUEST_STREAM: Final = _gen_ai.GEN_AI_REQUEST_STREAM
OUTPUT_TYPE: Final = _gen_ai.GEN_AI_OUTPUT_TYPE
RESPONSE_ID: Final = _gen_ai.GEN_AI_RESPONSE_ID
RESPONSE_MODEL: Final = _gen_ai.GEN_AI_RESPONSE_MODEL
RESPONSE_FINISH_REASONS: Final = _gen_ai.GEN_AI_RESPONSE_FINISH_REASONS
USAGE_INPUT_TOKENS: Final = _gen_ai.GEN_AI_USAGE_INPUT_TOKENS
USAGE_OUTPUT_TOKENS: Final = _gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS
TOKEN_TYPE: Final = _gen_ai.GEN_AI_TOKEN_TYPE
SERVER_ADDRESS: Final = _server.SERVER_ADDRESS
SERVER_PORT: Final = _server.SERVER_PORT
ERROR_TYPE: Final = _error.ERROR_TYPE

# -- evaluation results: span events, and log records for late scores -----------------------------

EVALUATION_EVENT: Final = "gen_ai.evaluation.result"
EVALUATION_NAME: Final = _gen_ai.GEN_AI_EVALUATION_NAME
EVALUATION_SCORE_VALUE: Final = _gen_ai.GEN_AI_EVALUATION_SCORE_VALUE
EVALUATION_SCORE_LABEL: Final = _gen_ai.GEN_AI_EVALUATION_SCORE_LABEL

# -- golden-set evaluations: the span of each case run by ``eval run`` (docs/evaluations.md) -------

#: The evaluation run a case span belongs to.
EVAL_RUN_ID: Final = "prompt_canary.eval.run.id"
#: The case's id in its dataset.
EVAL_CASE_ID: Final = "prompt_canary.eval.case.id"
#: The dataset version, ``name@version``.
EVAL_DATASET: Final = "prompt_canary.eval.dataset"
#: What became of the case: ``passed``, ``failed`` or ``error``.
EVAL_CASE_STATUS: Final = "prompt_canary.eval.case.status"

# -- metrics (Prometheus sees ``.`` as ``_`` plus unit and ``_total`` suffixes) --------------------

METRIC_RESPONSES: Final = "prompt_canary.responses"
METRIC_CHECKS: Final = "prompt_canary.checks"
METRIC_SCORE: Final = "prompt_canary.score"
METRIC_TOKEN_USAGE: Final = "prompt_canary.token.usage"
METRIC_DURATION: Final = "prompt_canary.duration"

# -- in-app reports: the instrumentation's own telemetry (docs/reporting.md) ----------------------

#: Reports the control plane acknowledged, by ``prompt_canary.report.outcome``.
METRIC_REPORTS_SENT: Final = "prompt_canary.reports.sent"
#: Attempts to send a report that failed and will be tried again (network error, 5xx, 408, 429).
METRIC_REPORTS_RETRIED: Final = "prompt_canary.reports.retried"
#: Reports given up, by ``prompt_canary.drop.reason`` (``rejected``, ``buffer_full``, ``shutdown``).
METRIC_REPORTS_DROPPED: Final = "prompt_canary.reports.dropped"
#: Samples never put in a report, by ``prompt_canary.drop.reason`` (``series_limit``,
#: ``feedback_key``, ``feedback_expired``...).
METRIC_SAMPLES_DROPPED: Final = "prompt_canary.samples.dropped"
#: What the control plane did with a report: ``merged``, ``duplicate`` or ``ignored``.
REPORT_OUTCOME: Final = "prompt_canary.report.outcome"
#: Why a report or a sample was dropped.
DROP_REASON: Final = "prompt_canary.drop.reason"
#: The rollout id of a live report (the calls of no rollout, for drift monitoring) is this prefix and
#: the stable version that served them: ``live:3`` (docs/drift.md).
LIVE_ROLLOUT_PREFIX: Final = "live:"

#: The OpenTelemetry baggage key carrying the unit key used for zero-code cohorts.
UNIT_BAGGAGE_KEY: Final = "prompt_canary.unit"

# -- the control plane's HTTP API -------------------------------------------------------------------

#: The request header naming who asks for a change, recorded as the actor (or author) in the audit log.
ACTOR_HEADER: Final = "X-Prompt-Canary-Actor"
#: The environment variable of the control plane credential: the CLI's token, an application's
#: reporting credential (its reports, feedback keys and feedback).
TOKEN_VARIABLE: Final = "OTEL_PROMPT_CANARY_TOKEN"
#: The environment variable naming the deployment environment (``staging``, ``production``...) whose
#: routing flags an application, the router and the CLI use; see :data:`DEFAULT_ENVIRONMENT`.
ENVIRONMENT_VARIABLE: Final = "OTEL_PROMPT_CANARY_ENVIRONMENT"
#: The environment of a control plane, an application or a command that names none. A control plane
#: that serves one environment serves this one; databases from before environments hold only it.
DEFAULT_ENVIRONMENT: Final = "production"
#: The query parameter of the API that names the environment of a routing flag or a rollout.
ENVIRONMENT_PARAMETER: Final = "environment"
