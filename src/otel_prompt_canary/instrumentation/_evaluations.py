"""Check and score outcomes as span attributes and ``gen_ai.evaluation.result`` event attributes.

The span attributes of each combination of check outcomes, and the span attribute name and event
attributes of each check outcome (name, passed, error), are built once and kept: the same few
combinations come back call after call, so that a call looks its attributes up instead of
assembling them. The caches are bounded (see
:data:`~otel_prompt_canary.instrumentation._tags.CACHE_LIMIT`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from opentelemetry.util.types import AttributeValue

from otel_prompt_canary import names
from otel_prompt_canary.instrumentation._tags import remember
from otel_prompt_canary.scoring import CheckOutcome, ScoringResults

__all__ = ["evaluation_events", "record_evaluations", "result_attributes"]

#: Per check outcome: its span attribute name (None for an error) and its event attributes.
_CHECKS: Final[dict[CheckOutcome, tuple[str | None, Mapping[str, AttributeValue]]]] = {}
#: Per score name: its span attribute name.
_SCORE_KEYS: Final[dict[str, str]] = {}
#: Per combination of check outcomes (a call's, in order): their span attributes.
_CHECK_ATTRIBUTES: Final[dict[tuple[CheckOutcome, ...], Mapping[str, AttributeValue]]] = {}


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


def result_attributes(results: ScoringResults) -> Mapping[str, AttributeValue]:
    """The ``prompt_canary.check.*`` and ``prompt_canary.score.*`` span attributes of ``results``.

    A check that passed or failed, or a score that has a value, is one attribute; an outcome that
    did not apply or failed is none. The mapping may be shared: never modify it.
    """
    checks = results.checks
    found = _CHECK_ATTRIBUTES.get(checks)
    if found is None:
        attributes: dict[str, AttributeValue] = {}
        for check in checks:
            if check.passed is not None:
                attributes[names.CHECK_PREFIX + check.name] = check.passed
        found = remember(_CHECK_ATTRIBUTES, checks, attributes)
    if not results.scores:
        return found
    # Score values vary from call to call: they are added to a copy, never cached.
    with_scores = dict(found)
    for score in results.scores:
        if score.value is not None:
            with_scores[_score_key(score.name)] = score.value
    return with_scores


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
    """How many check outcomes, and combinations of them, are cached (for tests of the bound)."""
    return max(len(_CHECKS), len(_CHECK_ATTRIBUTES))
