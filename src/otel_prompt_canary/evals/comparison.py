"""Two runs on the same dataset version, compared case by case, signal by signal.

The signals are the case's overall outcome (``pass``), every check both runs applied to a case,
and the LLM judge's score (``judge``). Only cases that both runs completed are paired (an error
is no outcome). A pass/fail signal counts the pairs that turned worse (passed in the baseline,
failed in the candidate) and better, and tests them with the exact McNemar test; the judge's score
is tested with the Wilcoxon signed-rank test; both one-sided, towards "the candidate is worse"
(:mod:`~otel_prompt_canary.evals.paired`). Each signal names its cases that got worse: those that
turned from pass to fail, or whose score fell by more than :data:`SCORE_TOLERANCE`.
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import BaseModel, ConfigDict

from otel_prompt_canary.errors import InvalidInputError
from otel_prompt_canary.evals.paired import mcnemar_exact, wilcoxon_signed_rank
from otel_prompt_canary.evals.results import JUDGE_SCORE, PASS_SIGNAL, CaseResult, EvalRun, EvalRunSummary

__all__ = ["SCORE_TOLERANCE", "RunComparison", "SignalComparison", "compare_runs"]

#: A case's judge score that falls by more than this counts as a case that got worse.
SCORE_TOLERANCE: Final = 0.1


class SignalComparison(BaseModel):
    """One signal of two runs on their paired cases: the values, the change, the test, the cases."""

    model_config = ConfigDict(frozen=True)

    signal: str
    kind: Literal["proportion", "mean"]
    cases: int
    baseline: float
    candidate: float
    worse: int
    better: int
    p_value: float
    test: Literal["mcnemar-exact", "wilcoxon-signed-rank"]
    worse_cases: tuple[str, ...]

    @property
    def change(self) -> float:
        """Candidate minus baseline (pass-rate or score points)."""
        return self.candidate - self.baseline


class RunComparison(BaseModel):
    """A candidate run against a baseline run on the same dataset version."""

    model_config = ConfigDict(frozen=True)

    baseline: EvalRunSummary
    candidate: EvalRunSummary
    paired_cases: int
    signals: tuple[SignalComparison, ...]
    unpaired_cases: tuple[str, ...]

    @property
    def worse_cases(self) -> tuple[str, ...]:
        """Every case that got worse on any signal, in dataset order."""
        seen: dict[str, None] = {}
        for signal in self.signals:
            for case in signal.worse_cases:
                seen.setdefault(case, None)
        return tuple(seen)

    def signal(self, name: str) -> SignalComparison | None:
        """The comparison of signal ``name``, if both runs have it."""
        return next((s for s in self.signals if s.signal == name), None)


def _proportion(name: str, pairs: list[tuple[str, bool, bool]]) -> SignalComparison:
    worse = [case for case, before, after in pairs if before and not after]
    better = sum(1 for _, before, after in pairs if after and not before)
    n = len(pairs)
    return SignalComparison(
        signal=name,
        kind="proportion",
        cases=n,
        baseline=sum(before for _, before, _ in pairs) / n,
        candidate=sum(after for _, _, after in pairs) / n,
        worse=len(worse),
        better=better,
        p_value=mcnemar_exact(len(worse), better),
        test="mcnemar-exact",
        worse_cases=tuple(worse),
    )


def _mean(name: str, pairs: list[tuple[str, float, float]]) -> SignalComparison:
    n = len(pairs)
    return SignalComparison(
        signal=name,
        kind="mean",
        cases=n,
        baseline=sum(before for _, before, _ in pairs) / n,
        candidate=sum(after for _, _, after in pairs) / n,
        worse=sum(1 for _, before, after in pairs if after < before),
        better=sum(1 for _, before, after in pairs if after > before),
        p_value=wilcoxon_signed_rank([after - before for _, before, after in pairs]),
        test="wilcoxon-signed-rank",
        worse_cases=tuple(case for case, before, after in pairs if before - after > SCORE_TOLERANCE),
    )


def compare_runs(baseline: EvalRun, candidate: EvalRun) -> RunComparison:
    """Compare ``candidate`` with ``baseline``, case by case (both on one dataset version)."""
    if (baseline.prompt, baseline.dataset, baseline.dataset_version) != (
        candidate.prompt,
        candidate.dataset,
        candidate.dataset_version,
    ):
        raise InvalidInputError(
            f"runs {baseline.run_id} ({baseline.ref}) and {candidate.run_id} ({candidate.ref}) are not "
            "on the same dataset version: only runs on the same cases compare"
        )
    before = {c.case_id: c for c in baseline.cases if c.status != "error"}
    paired: list[tuple[CaseResult, CaseResult]] = [
        (before[c.case_id], c) for c in candidate.cases if c.status != "error" and c.case_id in before
    ]
    paired_ids = {after.case_id for _, after in paired}
    unpaired = sorted(
        {c.case_id for c in (*baseline.cases, *candidate.cases)} - paired_ids,
    )
    signals: list[SignalComparison] = []
    if paired:
        signals.append(
            _proportion(
                PASS_SIGNAL, [(a.case_id, b.status == "passed", a.status == "passed") for b, a in paired]
            )
        )
        names = sorted({name for b, a in paired for name in b.checks if name in a.checks})
        for name in names:
            pairs = [
                (a.case_id, b.checks[name], a.checks[name])
                for b, a in paired
                if name in b.checks and name in a.checks
            ]
            signals.append(_proportion(name, pairs))
        scores = [
            (a.case_id, b.scores[JUDGE_SCORE], a.scores[JUDGE_SCORE])
            for b, a in paired
            if JUDGE_SCORE in b.scores and JUDGE_SCORE in a.scores
        ]
        if scores:
            signals.append(_mean(JUDGE_SCORE, scores))
    return RunComparison(
        baseline=baseline.summary(),
        candidate=candidate.summary(),
        paired_cases=len(paired),
        signals=tuple(signals),
        unpaired_cases=tuple(unpaired),
    )
