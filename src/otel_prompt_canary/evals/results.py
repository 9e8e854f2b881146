"""What an evaluation run records: each case's outcome, and the run's status and totals.

A :class:`CaseResult` is one case run through the model: ``passed`` when every check that applied
passed and the judge (when it graded the case) scored it high enough, ``failed`` otherwise, and
``error`` when the model (or the judge) could not be reached after the retries. An
:class:`EvalRun` is ``complete`` only when every case of its dataset version has a result and none
is an error; an ``incomplete`` run is stored all the same, and never counts as passing a gate.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from datetime import datetime
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "JUDGE_SCORE",
    "PASS_SIGNAL",
    "CaseResult",
    "CaseStatus",
    "CheckTally",
    "EvalRun",
    "EvalRunSummary",
    "RunSource",
    "RunStatus",
    "RunTotals",
]

CaseStatus = Literal["passed", "failed", "error"]
RunStatus = Literal["complete", "incomplete"]
#: ``manual``: someone ran ``eval run``; ``probe``: a scheduled run on the live stable version.
RunSource = Literal["manual", "probe"]

#: The signal of a case's overall outcome in comparisons and gates.
PASS_SIGNAL: Final = "pass"
#: The score the LLM judge gives a case.
JUDGE_SCORE: Final = "judge"

_RUN_ID = re.compile(r"^[0-9a-f]{8,64}$")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CaseResult(_Frozen):
    """One case run through the model: its checks, scores, what failed, and an excerpt of the answer."""

    case_id: str
    status: CaseStatus
    checks: dict[str, bool] = Field(default_factory=dict, description="Each check that applied: passed")
    scores: dict[str, float] = Field(default_factory=dict, description="Each score: judge, output_tokens...")
    failures: tuple[str, ...] = Field((), description="Why the case failed (or errored), one line each")
    output: str = Field("", description="The beginning of the answer")
    attempts: int = Field(0, ge=0, description="Calls made to the model, retries included")
    duration_ms: float = Field(0.0, ge=0, allow_inf_nan=False)
    response_model: str | None = Field(None, description="The model that answered (gen_ai.response.model)")
    tags: tuple[str, ...] = ()

    @field_validator("scores")
    @classmethod
    def _finite(cls, value: dict[str, float]) -> dict[str, float]:
        for name, score in value.items():
            if not math.isfinite(score):
                raise ValueError(f"score {name!r} is not a finite number")
        return value


class CheckTally(_Frozen):
    """How often one check applied, and passed."""

    passed: int
    applied: int

    @property
    def rate(self) -> float:
        """The pass rate among the cases the check applied to (0 when it never applied)."""
        return self.passed / self.applied if self.applied else 0.0


class RunTotals(_Frozen):
    """A run's counts: cases, passed, failed, errors; each check's tally; the judge's mean score."""

    cases: int
    passed: int
    failed: int
    errors: int
    checks: dict[str, CheckTally]
    judge_mean: float | None
    judged: int

    @property
    def pass_rate(self) -> float:
        """Passed cases over all cases (errors count as not passed)."""
        return self.passed / self.cases if self.cases else 0.0

    @classmethod
    def of(cls, cases: Iterable[CaseResult]) -> RunTotals:
        """The totals of ``cases``."""
        listed = list(cases)
        tallies: dict[str, list[int]] = {}
        judged = [c.scores[JUDGE_SCORE] for c in listed if JUDGE_SCORE in c.scores]
        for case in listed:
            for name, passed in case.checks.items():
                tally = tallies.setdefault(name, [0, 0])
                tally[0] += int(passed)
                tally[1] += 1
        return cls(
            cases=len(listed),
            passed=sum(c.status == "passed" for c in listed),
            failed=sum(c.status == "failed" for c in listed),
            errors=sum(c.status == "error" for c in listed),
            checks={name: CheckTally(passed=p, applied=a) for name, (p, a) in sorted(tallies.items())},
            judge_mean=sum(judged) / len(judged) if judged else None,
            judged=len(judged),
        )


class EvalRunSummary(_Frozen):
    """One line of ``eval list``: a run without its cases."""

    run_id: str
    prompt: str
    version: int
    dataset: str
    dataset_version: int
    status: RunStatus
    source: RunSource
    cases: int
    passed: int
    model: str | None
    started_at: datetime
    finished_at: datetime

    @property
    def pass_rate(self) -> float:
        """Passed cases over all cases."""
        return self.passed / self.cases if self.cases else 0.0


class EvalRun(_Frozen):
    """One evaluation of a prompt version on a dataset version, case by case.

    ``note`` says why a run is incomplete (errors, an interruption). ``model`` is the model asked
    (the version's), ``provider`` the API spoken (``openai`` or ``anthropic``).
    """

    run_id: str
    prompt: str
    version: int = Field(ge=1)
    dataset: str
    dataset_version: int = Field(ge=1)
    dataset_hash: str
    model: str | None = None
    provider: str
    status: RunStatus
    source: RunSource = "manual"
    actor: str = Field(min_length=1, max_length=256)
    started_at: datetime
    finished_at: datetime
    note: str = ""
    cases: tuple[CaseResult, ...]

    @field_validator("run_id")
    @classmethod
    def _valid_run_id(cls, value: str) -> str:
        if not _RUN_ID.fullmatch(value):
            raise ValueError("a run id is 8-64 lowercase hexadecimal digits")
        return value

    @property
    def totals(self) -> RunTotals:
        """The run's counts."""
        return RunTotals.of(self.cases)

    @property
    def ref(self) -> str:
        """``prompt@version on dataset@version``."""
        return f"{self.prompt}@{self.version} on {self.dataset}@{self.dataset_version}"

    def summary(self) -> EvalRunSummary:
        """The run without its cases."""
        totals = self.totals
        return EvalRunSummary(
            run_id=self.run_id,
            prompt=self.prompt,
            version=self.version,
            dataset=self.dataset,
            dataset_version=self.dataset_version,
            status=self.status,
            source=self.source,
            cases=totals.cases,
            passed=totals.passed,
            model=self.model,
            started_at=self.started_at,
            finished_at=self.finished_at,
        )
