"""The evaluation gate: whether a candidate's stored evaluation passes its policy's ``gate``.

:func:`judge_gate` decides on given runs; :func:`gate_verdict` finds them in a store (the
candidate's newest complete run on the gate dataset's newest version, and its baseline, see
:mod:`~otel_prompt_canary.evals.baselines`). A :class:`GateVerdict` lists every problem in words
that say what to do, names the cases that failed or got worse, and gives what was measured as
evidence for the audit record of the rollout it let start (:meth:`GateVerdict.evidence`). The
rules are those of :class:`~otel_prompt_canary.analysis.policy.Gate`: a run that is missing or
incomplete never passes; pass rates and the judge's mean must reach their minimums; and a signal
regresses when its paired drop is larger than ``max_regression`` and proven by its one-sided
paired test at ``alpha``.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, JsonValue

from otel_prompt_canary.analysis.policy import Gate
from otel_prompt_canary.errors import NotFoundError
from otel_prompt_canary.evals.baselines import baseline_run, newest_run
from otel_prompt_canary.evals.comparison import RunComparison, SignalComparison, compare_runs
from otel_prompt_canary.evals.datasets import Dataset
from otel_prompt_canary.evals.results import JUDGE_SCORE, EvalRun, RunTotals
from otel_prompt_canary.evals.store import EvalStore
from otel_prompt_canary.registry.models import PromptVersion

__all__ = ["EVIDENCE_CASES", "GateVerdict", "gate_verdict", "judge_gate"]

_NAMED = 10
#: Cases named per list in a verdict's evidence: a golden set holds up to 1000.
EVIDENCE_CASES = 100


class GateVerdict(BaseModel):
    """Whether the candidate passes the gate, why not, and on which runs and cases."""

    model_config = ConfigDict(frozen=True)

    passed: bool
    prompt: str
    version: int
    dataset: str
    dataset_version: int | None
    run_id: str | None
    baseline_run_id: str | None
    problems: tuple[str, ...]
    failed_cases: tuple[str, ...]
    worse_cases: tuple[str, ...]
    comparison: RunComparison | None = None
    totals: RunTotals | None = None

    def evidence(self) -> dict[str, JsonValue]:
        """What an audit record keeps of the verdict: the runs, what was measured (the run's totals,
        each paired signal's test) and every problem, with the cases named (at most
        :data:`EVIDENCE_CASES` of each list; ``*_count`` says how many there were)."""
        evidence: dict[str, JsonValue] = {
            "passed": self.passed,
            "dataset": self.dataset,
            "dataset_version": self.dataset_version,
            "run_id": self.run_id,
            "baseline_run_id": self.baseline_run_id,
            "problems": list(self.problems),
            "failed_cases": list(self.failed_cases[:EVIDENCE_CASES]),
            "failed_cases_count": len(self.failed_cases),
            "worse_cases": list(self.worse_cases[:EVIDENCE_CASES]),
            "worse_cases_count": len(self.worse_cases),
            "totals": None,
            "signals": [],
        }
        if self.totals is not None:
            totals: dict[str, JsonValue] = self.totals.model_dump(mode="json")
            totals["pass_rate"] = self.totals.pass_rate
            evidence["totals"] = totals
        if self.comparison is not None:
            evidence["signals"] = [
                signal.model_dump(mode="json", exclude={"worse_cases"}) for signal in self.comparison.signals
            ]
        return evidence

    def explain(self) -> str:
        """One paragraph: passed (on which run), or every problem."""
        where = f"{self.prompt}@{self.version} on {self.dataset}"
        if self.dataset_version is not None:
            where += f"@{self.dataset_version}"
        if self.passed:
            return f"the evaluation gate passes: run {self.run_id} of {where}"
        return f"{where} does not pass the evaluation gate: " + "; ".join(self.problems)


def _cases(ids: Sequence[str]) -> str:
    shown = ", ".join(ids[:_NAMED])
    return shown + (f" and {len(ids) - _NAMED} more" if len(ids) > _NAMED else "")


def _run_command(prompt: str, version: int, dataset: str) -> str:
    return f"`prompt-canary eval run {prompt} {version} --dataset {dataset}`"


def _regression(gate: Gate, signal: SignalComparison, baseline: EvalRun) -> str | None:
    assert gate.max_regression is not None
    drop = signal.baseline - signal.candidate
    if drop <= gate.max_regression or signal.p_value >= gate.alpha:
        return None
    if signal.kind == "proportion":
        values = f"from {signal.baseline:.1%} to {signal.candidate:.1%} (-{drop * 100:.1f} points)"
        allowed = f"{gate.max_regression * 100:g} points"
    else:
        values = f"from a mean of {signal.baseline:.2f} to {signal.candidate:.2f} (-{drop:.2f})"
        allowed = f"{gate.max_regression:g}"
    return (
        f"{signal.signal} fell {values} against {baseline.prompt}@{baseline.version} "
        f"(run {baseline.run_id}), more than the {allowed} allowed, proven by a one-sided {signal.test} "
        f"test (p={signal.p_value:.3g} < {gate.alpha:g}); cases that got worse: {_cases(signal.worse_cases)}"
    )


def judge_gate(
    gate: Gate,
    *,
    version: PromptVersion,
    dataset: Dataset,
    run: EvalRun | None,
    baseline: EvalRun | None,
    stable_version: int | None,
    newest_any: EvalRun | None = None,
) -> GateVerdict:
    """The verdict of ``gate`` on ``run`` (the candidate's newest complete run on ``dataset``) and
    ``baseline`` (what it is compared with). ``newest_any``, the candidate's newest run of any
    status, explains a missing complete run."""
    problems: list[str] = []
    failed: tuple[str, ...] = ()
    worse: tuple[str, ...] = ()
    comparison: RunComparison | None = None
    prompt = version.name
    if run is None:
        why = "there is no complete evaluation run"
        if newest_any is not None:
            detail = newest_any.note or "cases failed"
            why += f" (the newest, {newest_any.run_id}, is {newest_any.status}: {detail})"
        problems.append(f"{why}: run {_run_command(prompt, version.version, dataset.name)}")
    else:
        totals = run.totals
        failed = tuple(c.case_id for c in run.cases if c.status != "passed")
        if gate.min_pass_rate is not None and totals.pass_rate < gate.min_pass_rate:
            problems.append(
                f"the pass rate is {totals.pass_rate:.1%} ({totals.passed}/{totals.cases}), below "
                f"{gate.min_pass_rate:.1%}; failed cases: {_cases(failed)}"
            )
        for check, minimum in sorted(gate.min_check_pass_rates.items()):
            tally = totals.checks.get(check)
            if tally is None:
                problems.append(
                    f"check {check!r} applied to no case of the run (the gate needs {minimum:.1%})"
                )
            elif tally.rate < minimum:
                failing = [c.case_id for c in run.cases if c.checks.get(check) is False]
                problems.append(
                    f"{check} passed {tally.rate:.1%} of the {tally.applied} cases it applied to, below "
                    f"{minimum:.1%}; cases: {_cases(failing)}"
                )
        if gate.min_judge_score is not None:
            if totals.judge_mean is None:
                problems.append("the gate needs the judge's score, and the judge graded no case")
            elif totals.judge_mean < gate.min_judge_score:
                problems.append(
                    f"the judge's mean score is {totals.judge_mean:.2f}, below {gate.min_judge_score:.2f}"
                )
        if gate.max_regression is not None:
            if baseline is None:
                against = version.version if stable_version is None else stable_version
                problems.append(
                    f"there is no complete run of {prompt}@{against} on {dataset.ref} to compare with: run "
                    f"{_run_command(prompt, against, dataset.name)}, or set the gate's max_regression to null"
                )
            else:
                comparison = compare_runs(baseline, run)
                worse = comparison.worse_cases
                for signal in comparison.signals:
                    if signal.kind == "mean" and signal.signal != JUDGE_SCORE:
                        continue
                    found = _regression(gate, signal, baseline)
                    if found is not None:
                        problems.append(found)
    return GateVerdict(
        passed=not problems,
        prompt=prompt,
        version=version.version,
        dataset=dataset.name,
        dataset_version=dataset.version,
        run_id=None if run is None else run.run_id,
        baseline_run_id=None if baseline is None else baseline.run_id,
        problems=tuple(problems),
        failed_cases=failed,
        worse_cases=worse,
        comparison=comparison,
        totals=None if run is None else run.totals,
    )


def gate_verdict(
    store: EvalStore, gate: Gate, *, version: PromptVersion, stable_version: int | None
) -> GateVerdict:
    """The verdict of ``gate`` on the runs ``store`` holds for ``version`` on the gate's dataset."""
    try:
        dataset = store.get_dataset(version.name, gate.dataset)
    except NotFoundError:
        return GateVerdict(
            passed=False,
            prompt=version.name,
            version=version.version,
            dataset=gate.dataset,
            dataset_version=None,
            run_id=None,
            baseline_run_id=None,
            problems=(
                f"prompt {version.name!r} has no dataset {gate.dataset!r}: push it with "
                f"`prompt-canary dataset push FILE --prompt {version.name}`, then evaluate the version",
            ),
            failed_cases=(),
            worse_cases=(),
        )
    run = newest_run(store, version.name, version.version, dataset)
    newest_any = (
        None if run is not None else newest_run(store, version.name, version.version, dataset, complete=False)
    )
    baseline = None
    if run is not None and gate.max_regression is not None:
        baseline = baseline_run(store, version, dataset, stable_version=stable_version)
    return judge_gate(
        gate,
        version=version,
        dataset=dataset,
        run=run,
        baseline=baseline,
        stable_version=stable_version,
        newest_any=newest_any,
    )
