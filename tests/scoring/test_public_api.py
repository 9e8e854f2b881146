from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import otel_prompt_canary.scoring as scoring

PUBLIC = [
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


def test_public_surface_is_locked() -> None:
    assert scoring.__all__ == PUBLIC
    for name in PUBLIC:
        assert getattr(scoring, name) is not None


def test_errors_belong_to_the_project_tree() -> None:
    from otel_prompt_canary.errors import PromptCanaryError

    assert issubclass(scoring.EvaluationTimeoutError, scoring.EvaluationError)
    assert issubclass(scoring.EvaluationResponseError, scoring.EvaluationError)
    assert issubclass(scoring.EvaluationError, PromptCanaryError)


_SHARED_LEAVES = (
    "otel_prompt_canary.errors",
    "otel_prompt_canary.names",
    "otel_prompt_canary.feedback",
    "otel_prompt_canary.json_schemas",
    "otel_prompt_canary.yaml_documents",
)


def test_scoring_imports_no_other_part_of_the_project() -> None:
    package = Path(scoring.__file__).parent
    for path in sorted(package.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                modules = [node.module]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            else:
                continue
            for module in modules:
                if module.startswith("otel_prompt_canary"):
                    # errors and names are the package's shared leaves: they import nothing of it;
                    # feedback (keys and the feedback mapping) imports only those two, json_schemas
                    # (checking a user's JSON Schema) only errors.
                    assert module in _SHARED_LEAVES or (module.startswith("otel_prompt_canary.scoring")), (
                        f"{path.name} imports {module}"
                    )


def test_jsonschema_is_imported_only_when_a_schema_check_is_built() -> None:
    code = (
        "import sys, otel_prompt_canary.scoring as s\n"
        "before = 'jsonschema' in sys.modules\n"
        "s.JsonSchemaCheck({'type': 'object'})\n"
        "print(before, 'jsonschema' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "False True"
