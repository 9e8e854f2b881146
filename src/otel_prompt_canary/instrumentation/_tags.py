"""The prompt identity of one LLM call, as attributes: name, version, cohort and rollout.

The tags of a registry version also carry its output contract, as the scoring plan reads it
(:class:`~otel_prompt_canary.scoring.DeclaredOutput`): whichever way a call was identified (a router
Selection or the request's system text), its checks follow what its version declares.

Every attribute set a call hands the OpenTelemetry SDK is built once per identity and reused: the
span attributes, and the metric attributes of each (identity, data point) pair, such as
(identity, check, outcome). Each cache is bounded, so that names invented per call (an error type, a
custom check) cannot grow memory without limit.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Mapping
from typing import Final, TypeVar, final

from opentelemetry.util.types import AttributeValue

from otel_prompt_canary import names
from otel_prompt_canary.registry.models import PromptVersion
from otel_prompt_canary.scoring import CheckOutcome, DeclaredOutput

__all__ = [
    "FINGERPRINT",
    "SELECTION",
    "UNTAGGED",
    "MetricAttributes",
    "Tags",
    "TagsCache",
    "declared_output",
]

logger = logging.getLogger("otel_prompt_canary.instrumentation")

SELECTION: Final = "selection"
FINGERPRINT: Final = "fingerprint"

#: The most entries each cache of this module holds; a full cache starts over (rare, and harmless).
CACHE_LIMIT: Final = 4096

_K = TypeVar("_K", bound=Hashable)
_V = TypeVar("_V")


def remember(cache: dict[_K, _V], key: _K, value: _V) -> _V:
    """Store ``value`` under ``key`` in a bounded cache (emptied when full) and return it."""
    if len(cache) >= CACHE_LIMIT:
        cache.clear()
    cache[key] = value
    return value


@final
class MetricAttributes:
    """The metric attribute sets of one prompt identity, each built on first use and kept.

    ``base`` carries the identity (prompt name, version, cohort; empty for a call of no known
    prompt); the others add the data point's own attributes to it. The mappings are shared: never
    modify one.
    """

    __slots__ = ("_checks", "_errors", "_outcomes", "_scores", "base", "input_tokens", "output_tokens")

    def __init__(self, base: Mapping[str, AttributeValue]) -> None:
        self.base = base
        self.input_tokens = extend(base, (names.TOKEN_TYPE, "input"))
        self.output_tokens = extend(base, (names.TOKEN_TYPE, "output"))
        self._checks: dict[CheckOutcome, Mapping[str, AttributeValue]] = {}
        self._scores: dict[str, Mapping[str, AttributeValue]] = {}
        self._errors: dict[str, Mapping[str, AttributeValue]] = {}
        self._outcomes: dict[tuple[CheckOutcome, ...], tuple[Mapping[str, AttributeValue], ...]] = {}

    def check(self, outcome: CheckOutcome) -> Mapping[str, AttributeValue]:
        """``prompt_canary.check`` and ``.outcome`` of a check that passed or failed."""
        found = self._checks.get(outcome)
        if found is None:
            label = "pass" if outcome.passed else "fail"
            found = remember(
                self._checks,
                outcome,
                extend(self.base, (names.CHECK, outcome.name, names.CHECK_OUTCOME, label)),
            )
        return found

    def checks(self, outcomes: tuple[CheckOutcome, ...]) -> tuple[Mapping[str, AttributeValue], ...]:
        """The :meth:`check` sets of a call's check outcomes that passed or failed, in order.

        Kept per combination of outcomes: a call's combination is usually one of a few.
        """
        found = self._outcomes.get(outcomes)
        if found is None:
            found = remember(
                self._outcomes,
                outcomes,
                tuple(self.check(outcome) for outcome in outcomes if outcome.passed is not None),
            )
        return found

    def score(self, name: str) -> Mapping[str, AttributeValue]:
        """``gen_ai.evaluation.name`` of a score."""
        found = self._scores.get(name)
        if found is None:
            found = remember(self._scores, name, extend(self.base, (names.EVALUATION_NAME, name)))
        return found

    def error(self, error_type: str) -> Mapping[str, AttributeValue]:
        """``error.type`` of a failed call."""
        found = self._errors.get(error_type)
        if found is None:
            found = remember(self._errors, error_type, extend(self.base, (names.ERROR_TYPE, error_type)))
        return found

    def __len__(self) -> int:
        """How many per-data-point sets are cached (the token sets aside)."""
        return len(self._checks) + len(self._scores) + len(self._errors) + len(self._outcomes)


@final
class Tags:
    """Who a call belongs to: prompt name and version, cohort and rollout, with attributes prebuilt.

    ``version`` is written as a string so that span attributes and metric attributes agree.
    ``cohort`` is None for a version that is neither the stable nor the canary one of the route.
    ``output`` is what the version declares its answers are (None: nothing).
    """

    __slots__ = (
        "cohort",
        "identity",
        "metric_attributes",
        "metrics",
        "name",
        "output",
        "rollout_id",
        "source",
        "span_attributes",
        "version",
    )

    def __init__(
        self,
        name: str,
        version: int | str,
        cohort: str | None,
        rollout_id: str | None,
        source: str,
        *,
        mirrors: frozenset[str] = frozenset(),
        output: DeclaredOutput | None = None,
    ) -> None:
        self.name = name
        self.version = str(version)
        self.cohort = cohort
        self.rollout_id = rollout_id
        self.source = source
        self.output = output
        span: dict[str, AttributeValue] = {
            names.PROMPT_NAME: name,
            names.PROMPT_VERSION: self.version,
            names.PROMPT_SOURCE: source,
        }
        metric: dict[str, AttributeValue] = {names.PROMPT_NAME: name, names.PROMPT_VERSION: self.version}
        if cohort is not None:
            span[names.COHORT] = cohort
            metric[names.COHORT] = cohort
        if rollout_id is not None:
            span[names.ROLLOUT_ID] = rollout_id
        if "openinference" in mirrors:
            span[names.OPENINFERENCE_TEMPLATE_VERSION] = self.version
        if "langfuse" in mirrors:
            span[names.LANGFUSE_PROMPT_NAME] = name
            span[names.LANGFUSE_PROMPT_VERSION] = _int_or_str(self.version)
        self.span_attributes: Mapping[str, AttributeValue] = span
        self.metric_attributes: Mapping[str, AttributeValue] = metric
        #: The metric attribute sets of this identity.
        self.metrics = MetricAttributes(metric)
        #: (prompt name, version, cohort, rollout id), as observers and user feedback see it.
        self.identity: tuple[str, str, str | None, str | None] = (name, self.version, cohort, rollout_id)

    def __repr__(self) -> str:
        return (
            f"Tags(name={self.name!r}, version={self.version!r}, cohort={self.cohort!r}, "
            f"rollout_id={self.rollout_id!r}, source={self.source!r})"
        )


def extend(base: Mapping[str, AttributeValue], pairs: tuple[str, ...]) -> Mapping[str, AttributeValue]:
    """``base`` plus the (key, value) ``pairs``."""
    result = dict(base)
    for index in range(0, len(pairs), 2):
        result[pairs[index]] = pairs[index + 1]
    return result


def _int_or_str(text: str) -> int | str:
    return int(text) if text.isdigit() else text


def declared_output(version: PromptVersion | None) -> DeclaredOutput | None:
    """The output contract of a registry version, as scoring reads it (None: it declares none)."""
    contract = None if version is None else version.output
    if contract is None:
        return None
    try:
        return DeclaredOutput(format=contract.format, json_schema=contract.json_schema)
    except Exception:
        # The registry accepted it, so this is a bug or a newer format: score the call as if the
        # version declared nothing rather than leave it untagged.
        logger.warning("ignoring the output contract of %s", version.ref if version else None, exc_info=True)
        return None


#: The metric attribute sets of calls of no known prompt.
UNTAGGED: Final = MetricAttributes({})


class TagsCache:
    """Tags built once per (name, version, cohort, rollout, source); bounded, thread-safe enough.

    A lost race builds the same Tags twice, which is harmless.
    """

    __slots__ = ("_items", "_mirrors")

    def __init__(self, mirrors: frozenset[str]) -> None:
        self._mirrors = mirrors
        self._items: dict[tuple[str, str, str | None, str | None, str, str | None], Tags] = {}

    def get(
        self,
        name: str,
        version: int | str,
        cohort: str | None,
        rollout_id: str | None,
        source: str,
        prompt_version: PromptVersion | None = None,
    ) -> Tags:
        """The tags of a call; ``prompt_version``, the registry version, gives them its output contract."""
        # A version with a contract is also keyed by its content hash: the same number in another
        # registry (a test, a second router) may declare something else.
        contract_of = None if prompt_version is None or prompt_version.output is None else prompt_version
        key = (
            name,
            str(version),
            cohort,
            rollout_id,
            source,
            None if contract_of is None else contract_of.content_hash,
        )
        found = self._items.get(key)
        if found is None:
            tags = Tags(
                name,
                version,
                cohort,
                rollout_id,
                source,
                mirrors=self._mirrors,
                output=declared_output(contract_of),
            )
            found = remember(self._items, key, tags)
        return found

    def __len__(self) -> int:
        return len(self._items)
