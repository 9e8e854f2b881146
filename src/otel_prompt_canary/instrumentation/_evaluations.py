"""Check and score outcomes as span attributes and ``gen_ai.evaluation.result`` event attributes.

The span attribute name and the event attributes of each check outcome (name, passed, error) are
built once and kept, so that a call copies one small dict per event instead of assembling it. The
cache is bounded (see :data:`~otel_prompt_canary.instrumentation._tags.CACHE_LIMIT`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from opentelemetry.util.types import AttributeValue

from otel_prompt_canary import names
from otel_prompt_canary.instrumentation._tags import remember
from otel_prompt_canary.scoring import CheckOutcome, ScoringResults

__all__ = ["evaluation_events", "record_evaluations"]

#: Per check outcome: its span attribute name (None for an error) and its event attributes.
_CHECKS: Final[dict[CheckOutcome, tuple[str | None, Mapping[str, AttributeValue]]]] = {}
#: Per score name: its span attribute name.
_SCORE_KEYS: Final[dict[str, str]] = {}


def _check_entry(check: CheckOutcome) -> tuple[str | None, Mapping[str, AttributeValue]]:
    found = _CHECKS.get(check)
    if found is None:
        event: dict[str, AttributeValue] = {names.EVALUATION_NAME: check.name}
        key = None
        if check.passed is None:
            event[names.ERROR_TYPE] = check.error or "error"
        else:
            event[names.EVALUATION_SCORE_VALUE] = 1.0 if check.passed else 0.0
            event[names.EVALUATION_SCORE_LABEL] = "pass" if check.passed else "fail"
            key = names.CHECK_PREFIX + check.name
        found = remember(_CHECKS, check, (key, event))
    return found


def _score_key(name: str) -> str:
    found = _SCORE_KEYS.get(name)
    if found is None:
        found = remember(_SCORE_KEYS, name, names.SCORE_PREFIX + name)
    return found


def record_evaluations(
    results: ScoringResults, response_id: str | None, span_attributes: dict[str, AttributeValue]
) -> list[dict[str, AttributeValue]]:
    """The event attributes of each result, in order; adds the results' span attributes.

    A check that passed or failed, or a score that has a value, becomes a ``prompt_canary.check.*``
    or ``prompt_canary.score.*`` entry of ``span_attributes``. Every result with a value or an error
    becomes one event (a check: ``1.0``/``pass`` or ``0.0``/``fail``), with ``gen_ai.response.id``
    when known. The events are fresh dicts the caller may extend.
    """
    events: list[dict[str, AttributeValue]] = []
    for check in results.checks:
        passed = check.passed
        if passed is None and check.error is None:
            continue
        key, template = _check_entry(check)
        if key is not None:
            span_attributes[key] = passed
        event = dict(template)
        if response_id:
            event[names.RESPONSE_ID] = response_id
        events.append(event)
    for score in results.scores:
        value = score.value
        if value is None:
            if score.error is None:
                continue
            event = {names.EVALUATION_NAME: score.name, names.ERROR_TYPE: score.error or "error"}
        else:
            span_attributes[_score_key(score.name)] = value
            event = {names.EVALUATION_NAME: score.name, names.EVALUATION_SCORE_VALUE: value}
        if response_id:
            event[names.RESPONSE_ID] = response_id
        events.append(event)
    return events


def evaluation_events(results: ScoringResults, response_id: str | None) -> list[dict[str, AttributeValue]]:
    """The event attributes of each result (see :func:`record_evaluations`), as fresh dicts."""
    return record_evaluations(results, response_id, {})


def cached_outcomes() -> int:
    """How many check outcomes are cached (for tests of the bound)."""
    return len(_CHECKS)
