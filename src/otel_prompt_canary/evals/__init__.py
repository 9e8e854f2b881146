"""Golden-set evaluations: datasets of known cases, runs through the real SDK, the rollout gate, probes.

- **datasets** (:class:`DatasetSpec`, read from JSONL or YAML by :func:`read_dataset`): a prompt's
  cases with what a good answer has; stored content-addressed and versioned beside the prompt
  (:class:`EvalStore`: :class:`SqlEvalStore` in the registry's database, :class:`RemoteEvalStore`
  on a control plane);
- **runs** (:func:`run_evaluation`): every case through the version's model with the real
  ``openai`` or ``anthropic`` SDK, bounded concurrency and retries, the project's checks, the case's
  expectations and the LLM judge; each case a span. An :class:`EvalRun` is stored linked to its
  version: its first complete run on a dataset version is the version's eval baseline;
- **comparisons** (:func:`compare_runs`): two runs on the same cases, per signal, with exact
  McNemar and Wilcoxon signed-rank tests, naming the cases that got worse;
- **the gate** (:func:`gate_verdict`): what a policy's ``gate:`` asks of a candidate before its
  rollout starts;
- **probes** (:mod:`otel_prompt_canary.evals.probes`): runs of the live stable version on a
  schedule.

docs/evaluations.md is the user's guide.
"""

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from otel_prompt_canary.evals.baselines import baseline_run, newest_run, version_comparisons
    from otel_prompt_canary.evals.comparison import RunComparison, SignalComparison, compare_runs
    from otel_prompt_canary.evals.dataset_files import read_dataset
    from otel_prompt_canary.evals.datasets import (
        Case,
        Dataset,
        DatasetDiff,
        DatasetPushResult,
        DatasetSpec,
        DatasetSummary,
        Expectations,
        JudgeSettings,
    )
    from otel_prompt_canary.evals.gate import GateVerdict, gate_verdict, judge_gate
    from otel_prompt_canary.evals.remote import RemoteEvalStore, open_eval_store
    from otel_prompt_canary.evals.report import html_report
    from otel_prompt_canary.evals.results import CaseResult, EvalRun, EvalRunSummary, RunTotals
    from otel_prompt_canary.evals.runner import EvalSettings, JudgeEndpoint, run_evaluation
    from otel_prompt_canary.evals.store import EvalStore, SqlEvalStore

#: Where each public name lives: imported on first use, so that a module of the package (the gate
#: that ``rollout start`` reads, say) loads only what it needs.
_HOMES = {
    "baseline_run": "baselines",
    "newest_run": "baselines",
    "version_comparisons": "baselines",
    "RunComparison": "comparison",
    "SignalComparison": "comparison",
    "compare_runs": "comparison",
    "read_dataset": "dataset_files",
    "Case": "datasets",
    "Dataset": "datasets",
    "DatasetDiff": "datasets",
    "DatasetPushResult": "datasets",
    "DatasetSpec": "datasets",
    "DatasetSummary": "datasets",
    "Expectations": "datasets",
    "JudgeSettings": "datasets",
    "GateVerdict": "gate",
    "gate_verdict": "gate",
    "judge_gate": "gate",
    "RemoteEvalStore": "remote",
    "open_eval_store": "remote",
    "html_report": "report",
    "CaseResult": "results",
    "EvalRun": "results",
    "EvalRunSummary": "results",
    "RunTotals": "results",
    "EvalSettings": "runner",
    "JudgeEndpoint": "runner",
    "run_evaluation": "runner",
    "EvalStore": "store",
    "SqlEvalStore": "store",
}


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)


__all__ = [
    "Case",
    "CaseResult",
    "Dataset",
    "DatasetDiff",
    "DatasetPushResult",
    "DatasetSpec",
    "DatasetSummary",
    "EvalRun",
    "EvalRunSummary",
    "EvalSettings",
    "EvalStore",
    "Expectations",
    "GateVerdict",
    "JudgeEndpoint",
    "JudgeSettings",
    "RemoteEvalStore",
    "RunComparison",
    "RunTotals",
    "SignalComparison",
    "SqlEvalStore",
    "baseline_run",
    "compare_runs",
    "gate_verdict",
    "html_report",
    "judge_gate",
    "newest_run",
    "open_eval_store",
    "read_dataset",
    "run_evaluation",
    "version_comparisons",
]
