"""The shared public names: a contract, so each value is spelled out here once more."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from otel_prompt_canary import names, scoring
from otel_prompt_canary.analysis import SignalKind

# Dashboards, alert rules, the Collector processor and users' queries select on these strings: a
# change here is a breaking change of the project's interface, never a refactoring.
CONTRACT = {
    "PROMPT_NAME": "gen_ai.prompt.name",
    "PROMPT_VERSION": "gen_ai.prompt.version",
    "COHORT": "prompt_canary.cohort",
    "ROLLOUT_ID": "prompt_canary.rollout.id",
    "PROMPT_SOURCE": "prompt_canary.prompt.source",
    "REWRITTEN": "prompt_canary.rewritten",
    "CHECK_PREFIX": "prompt_canary.check.",
    "SCORE_PREFIX": "prompt_canary.score.",
    "USAGE_PREFIX": "gen_ai.usage.",
    "CHECK": "prompt_canary.check",
    "CHECK_OUTCOME": "prompt_canary.check.outcome",
    "OPENINFERENCE_TEMPLATE_VERSION": "llm.prompt_template.version",
    "LANGFUSE_PROMPT_NAME": "langfuse.observation.prompt.name",
    "LANGFUSE_PROMPT_VERSION": "langfuse.observation.prompt.version",
    "OPERATION_NAME": "gen_ai.operation.name",
    "PROVIDER_NAME": "gen_ai.provider.name",
    "REQUEST_MODEL": "gen_ai.request.model",
    "REQUEST_MAX_TOKENS": "gen_ai.request.max_tokens",
    "REQUEST_TEMPERATURE": "gen_ai.request.temperature",
    "REQUEST_TOP_P": "gen_ai.request.top_p",
    "REQUEST_TOP_K": "gen_ai.request.top_k",
    "REQUEST_SEED": "gen_ai.request.seed",
    "REQUEST_STOP_SEQUENCES": "gen_ai.request.stop_sequences",
    "REQUEST_FREQUENCY_PENALTY": "gen_ai.request.frequency_penalty",
    "REQUEST_PRESENCE_PENALTY": "gen_ai.request.presence_penalty",
    "REQUEST_CHOICE_COUNT": "gen_ai.request.choice.count",
    "REQUEST_STREAM": "gen_ai.request.stream",
    "OUTPUT_TYPE": "gen_ai.output.type",
    "RESPONSE_ID": "gen_ai.response.id",
    "RESPONSE_MODEL": "gen_ai.response.model",
    "RESPONSE_FINISH_REASONS": "gen_ai.response.finish_reasons",
    "USAGE_INPUT_TOKENS": "gen_ai.usage.input_tokens",
    "USAGE_OUTPUT_TOKENS": "gen_ai.usage.output_tokens",
    "TOKEN_TYPE": "gen_ai.token.type",
    "SERVER_ADDRESS": "server.address",
    "SERVER_PORT": "server.port",
    "ERROR_TYPE": "error.type",
    "EVALUATION_EVENT": "gen_ai.evaluation.result",
    "EVALUATION_NAME": "gen_ai.evaluation.name",
    "EVALUATION_SCORE_VALUE": "gen_ai.evaluation.score.value",
    "EVALUATION_SCORE_LABEL": "gen_ai.evaluation.score.label",
    "METRIC_RESPONSES": "prompt_canary.responses",
    "METRIC_CHECKS": "prompt_canary.checks",
    "METRIC_SCORE": "prompt_canary.score",
    "METRIC_TOKEN_USAGE": "prompt_canary.token.usage",
    "METRIC_DURATION": "prompt_canary.duration",
    "UNIT_BAGGAGE_KEY": "prompt_canary.unit",
    "ACTOR_HEADER": "X-Prompt-Canary-Actor",
    "DEFAULT_ENVIRONMENT": "production",
    "ENVIRONMENT_PARAMETER": "environment",
    "ENVIRONMENT_VARIABLE": "OTEL_PROMPT_CANARY_ENVIRONMENT",
    "TOKEN_VARIABLE": "OTEL_PROMPT_CANARY_TOKEN",
    "FEEDBACK_KEY": "prompt_canary.feedback.key",
    "SIGNAL_NAME_PATTERN": "[a-z0-9_]{1,64}",
    "METRIC_REPORTS_SENT": "prompt_canary.reports.sent",
    "METRIC_REPORTS_RETRIED": "prompt_canary.reports.retried",
    "METRIC_REPORTS_DROPPED": "prompt_canary.reports.dropped",
    "METRIC_SAMPLES_DROPPED": "prompt_canary.samples.dropped",
    "REPORT_OUTCOME": "prompt_canary.report.outcome",
    "DROP_REASON": "prompt_canary.drop.reason",
    "LIVE_ROLLOUT_PREFIX": "live:",
    "EVAL_RUN_ID": "prompt_canary.eval.run.id",
    "EVAL_CASE_ID": "prompt_canary.eval.case.id",
    "EVAL_DATASET": "prompt_canary.eval.dataset",
    "EVAL_CASE_STATUS": "prompt_canary.eval.case.status",
}


def test_every_name_keeps_its_value() -> None:
    assert {name: getattr(names, name) for name in CONTRACT} == CONTRACT
    strings = {name for name in names.__all__ if isinstance(getattr(names, name), str)}
    assert strings == set(CONTRACT), "a new name belongs in the contract above"


def test_the_module_imports_nothing_of_the_package() -> None:
    # Every subpackage imports it, the pure analysis and scoring included: it must stay a leaf.
    tree = ast.parse(Path(names.__file__).read_text(encoding="utf-8"))
    imported = [
        (node.module or "") if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    ]
    assert not [module for module in imported if module.startswith("otel_prompt_canary")]


def test_scoring_re_exports_the_same_prefixes() -> None:
    assert scoring.CHECK_ATTRIBUTE_PREFIX is names.CHECK_PREFIX
    assert scoring.SCORE_ATTRIBUTE_PREFIX is names.SCORE_PREFIX


@pytest.mark.parametrize(
    ("attribute", "kind"),
    [
        ("prompt_canary.check.json_valid", "proportion"),
        ("prompt_canary.score.judge", "mean"),
        ("gen_ai.usage.output_tokens", "mean"),
        ("prompt_canary.cohort", None),
        ("gen_ai.prompt.name", None),
    ],
)
def test_a_signal_prefix_says_which_statistics_it_carries(attribute: str, kind: str | None) -> None:
    assert names.signal_kind(attribute) == kind


def test_signal_kinds_are_the_policys_kinds() -> None:
    assert set(names.SIGNAL_KINDS.values()) == {kind.value for kind in SignalKind}
