"""Quality checks and scores of LLM responses: the signals a canary is judged on.

The instrumentation turns each LLM response into an :class:`LLMResponse` and hands it to a
:class:`ScoringPlan` built from the prompt's :class:`ScoringConfig`:

- :meth:`ScoringPlan.run` runs the inline :class:`Check` s and :class:`Scorer` s (format, refusal,
  token budget...) and returns :class:`ScoringResults`; it never raises. A check's boolean is always
  *passed*: ``True`` is the good outcome, so ``refusal`` passes when the model did not refuse. Outcomes
  become the span attributes ``prompt_canary.check.<name>`` and ``prompt_canary.score.<name>``.
- :meth:`ScoringPlan.submit_late` samples the slow evaluations (the LLM judge, a moderation endpoint)
  and queues them on a bounded :class:`ScoringWorker`; their outcomes arrive later through a callback.

A prompt version's output contract reaches the plan as a :class:`DeclaredOutput`: a version that
declares JSON has its answers checked as JSON (and against its schema) whatever the request says.

This package is pure: it imports no other part of otel-prompt-canary but its errors and the shared
JSON Schema helper. docs/checks.md describes every check, the configuration and how to write a check
of your own.
"""

from __future__ import annotations

from otel_prompt_canary.scoring._budget import MaxOutputTokensCheck, OutputTokensScorer, TruncationCheck
from otel_prompt_canary.scoring._config import (
    BackgroundConfig,
    EscalationConfig,
    JsonSchemaConfig,
    JsonValidConfig,
    JudgeConfig,
    MaxOutputTokensConfig,
    ModerationConfig,
    OutputTokensConfig,
    RefusalConfig,
    RegexConfig,
    SafetyConfig,
    ScoringConfig,
    ScoringSettings,
    TruncationConfig,
    load_scoring_config,
    load_scoring_settings,
)
from otel_prompt_canary.scoring._declared import DeclaredOutput
from otel_prompt_canary.scoring._detectors import (
    DEFAULT_ESCALATION_PHRASES,
    DEFAULT_ESCALATION_TOOLS,
    EscalationCheck,
    RefusalCheck,
)
from otel_prompt_canary.scoring._errors import (
    EvaluationError,
    EvaluationResponseError,
    EvaluationTimeoutError,
)
from otel_prompt_canary.scoring._feedback import (
    FEEDBACK_SCORE_NAME,
    BoundedLRU,
    FeedbackContext,
    FeedbackIndex,
    validate_feedback_score,
)
from otel_prompt_canary.scoring._format import (
    JsonSchemaCheck,
    JsonValidCheck,
    RegexCheck,
    parse_json_output,
)
from otel_prompt_canary.scoring._judge import DEFAULT_RUBRIC, LLMJudge, parse_judge_score
from otel_prompt_canary.scoring._outcomes import (
    CHECK_ATTRIBUTE_PREFIX,
    SCORE_ATTRIBUTE_PREFIX,
    Check,
    CheckOutcome,
    ScoreOutcome,
    Scorer,
    ScoringResults,
    validate_evaluation_name,
)
from otel_prompt_canary.scoring._phrases import REFUSAL_LANGUAGES
from otel_prompt_canary.scoring._plan import LateEvaluation, ScoringPlan, build_scoring
from otel_prompt_canary.scoring._response import (
    CONTENT_FILTER_FINISH_REASONS,
    LENGTH_FINISH_REASONS,
    LLMResponse,
    ToolCall,
    normalize_finish_reason,
)
from otel_prompt_canary.scoring._runner import evaluate_check, evaluate_score, run_checks
from otel_prompt_canary.scoring._safety import ModerationClassifier, SafetyCheck, SafetyClassifier
from otel_prompt_canary.scoring._sampling import Sampler
from otel_prompt_canary.scoring._worker import LateResultCallback, ScoringWorker, WorkerStats

__all__ = [
    "CHECK_ATTRIBUTE_PREFIX",
    "CONTENT_FILTER_FINISH_REASONS",
    "DEFAULT_ESCALATION_PHRASES",
    "DEFAULT_ESCALATION_TOOLS",
    "DEFAULT_RUBRIC",
    "FEEDBACK_SCORE_NAME",
    "LENGTH_FINISH_REASONS",
    "REFUSAL_LANGUAGES",
    "SCORE_ATTRIBUTE_PREFIX",
    "BackgroundConfig",
    "BoundedLRU",
    "Check",
    "CheckOutcome",
    "DeclaredOutput",
    "EscalationCheck",
    "EscalationConfig",
    "EvaluationError",
    "EvaluationResponseError",
    "EvaluationTimeoutError",
    "FeedbackContext",
    "FeedbackIndex",
    "JsonSchemaCheck",
    "JsonSchemaConfig",
    "JsonValidCheck",
    "JsonValidConfig",
    "JudgeConfig",
    "LLMJudge",
    "LLMResponse",
    "LateEvaluation",
    "LateResultCallback",
    "MaxOutputTokensCheck",
    "MaxOutputTokensConfig",
    "ModerationClassifier",
    "ModerationConfig",
    "OutputTokensConfig",
    "OutputTokensScorer",
    "RefusalCheck",
    "RefusalConfig",
    "RegexCheck",
    "RegexConfig",
    "SafetyCheck",
    "SafetyClassifier",
    "SafetyConfig",
    "Sampler",
    "ScoreOutcome",
    "Scorer",
    "ScoringConfig",
    "ScoringPlan",
    "ScoringResults",
    "ScoringSettings",
    "ScoringWorker",
    "ToolCall",
    "TruncationCheck",
    "TruncationConfig",
    "WorkerStats",
    "build_scoring",
    "evaluate_check",
    "evaluate_score",
    "load_scoring_config",
    "load_scoring_settings",
    "normalize_finish_reason",
    "parse_json_output",
    "parse_judge_score",
    "run_checks",
    "validate_evaluation_name",
    "validate_feedback_score",
]
