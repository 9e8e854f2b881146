"""Holding one answer to its case's expectations and to the project's checks.

The project's checks are those the instrumentation runs on live traffic (a
:class:`~otel_prompt_canary.scoring.ScoringPlan`: refusal, truncation, the token budget, and the
version's output contract, ``json_valid`` and ``json_schema``); the case adds its own:

- ``must_contain``: every phrase appears in the answer (case aside);
- ``must_not_contain``: none does;
- ``expected_schema``: the answer is one JSON document matching the case's schema.

:func:`grade` returns each check that applied (name: passed) and, for each failure, one line that
says what was wrong. The LLM judge is graded apart (:mod:`~otel_prompt_canary.evals.runner`).
"""

from __future__ import annotations

from typing import Final

from otel_prompt_canary.evals.datasets import Expectations
from otel_prompt_canary.json_schemas import schema_validator
from otel_prompt_canary.scoring import LLMResponse, ScoringResults, parse_json_output

__all__ = ["CONTRACT_CHECKS", "grade"]

#: The checks a version's output contract adds; a case with ``contract: false`` does not count them.
CONTRACT_CHECKS: Final = frozenset({"json_valid", "json_schema"})

_EXCERPT: Final = 60


def _quoted(phrases: list[str]) -> str:
    return ", ".join(repr(p[:_EXCERPT]) for p in phrases)


def _schema_failure(expect: Expectations, text: str) -> str | None:
    """Why ``text`` does not match the case's schema, or None when it does."""
    assert expect.json_schema is not None
    valid, value = parse_json_output(text, allow_fence=False)
    if not valid:
        return "expected_schema: the answer is not one JSON document"
    error = next(iter(schema_validator(expect.json_schema).iter_errors(value)), None)
    if error is None:
        return None
    where = "/".join(str(part) for part in error.absolute_path) or "(root)"
    return f"expected_schema: at {where}: {error.message[:200]}"


def grade(
    expect: Expectations, response: LLMResponse, results: ScoringResults
) -> tuple[dict[str, bool], list[str]]:
    """The checks that applied to ``response`` (name: passed) and why each failed one failed.

    ``results`` are the project's checks on the response; those the case ignores, and the
    contract's when ``expect.contract`` is false, are left out. A check that raised counts as
    failed.
    """
    ignored = set(expect.ignore_checks) | (set() if expect.contract else set(CONTRACT_CHECKS))
    checks: dict[str, bool] = {}
    failures: list[str] = []
    for outcome in results.checks:
        if outcome.name in ignored:
            continue
        if outcome.error is not None:
            checks[outcome.name] = False
            failures.append(f"{outcome.name}: the check raised {outcome.error}")
        elif outcome.passed is not None:
            checks[outcome.name] = outcome.passed
            if not outcome.passed:
                failures.append(f"{outcome.name}: failed")
    text = response.output_text
    folded = text.casefold()
    if expect.must_contain:
        missing = [p for p in expect.must_contain if p.casefold() not in folded]
        checks["must_contain"] = not missing
        if missing:
            failures.append(f"must_contain: missing {_quoted(missing)}")
    if expect.must_not_contain:
        found = [p for p in expect.must_not_contain if p.casefold() in folded]
        checks["must_not_contain"] = not found
        if found:
            failures.append(f"must_not_contain: found {_quoted(found)}")
    if expect.json_schema is not None:
        problem = _schema_failure(expect, text)
        checks["expected_schema"] = problem is None
        if problem is not None:
            failures.append(problem)
    return checks, failures
