"""Counters summed in this process and reported to the SDK as observable counters.

Every LLM call counts one response and one outcome per check. Adding to an SDK ``Counter`` costs
several microseconds per data point (the attribute set is hashed, an aggregation looked up and locked,
the exemplar filter consulted); with the default checks that was a third of the instrumentation's
cost per call. Here a call adds to a total found by the identity of its attribute set (the hot path
hands over the same prebuilt mapping for the same set), under one lock, and the SDK reads the totals
when it collects: an ``ObservableCounter`` reports cumulative sums, which is exactly what a counter
exports (the SDK derives deltas itself for a delta-temporality exporter). What is lost is the
counters' exemplars; the call's ``prompt_canary.duration`` data point keeps its exemplar.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable, Mapping
from typing import Final

from opentelemetry.metrics import CallbackOptions, Meter, Observation
from opentelemetry.util.types import AttributeValue

__all__ = ["CARDINALITY_LIMIT", "OVERFLOW", "LocalCounter", "local_counter"]

#: The most attribute sets a counter keeps apart; later new sets add to :data:`OVERFLOW` (the SDK's
#: default cardinality limit, with the same overflow attribute).
CARDINALITY_LIMIT: Final = 2000
#: The attributes of the data point that counts every set beyond the cardinality limit.
OVERFLOW: Final[Mapping[str, AttributeValue]] = {"otel.metric.overflow": True}

_Key = frozenset[tuple[str, AttributeValue]]
# The mappings seen are remembered by identity (each with a reference, so that its id stays its own);
# this many before that memory starts over, so that fresh mappings on every call cannot grow it.
_IDENTITIES_LIMIT: Final = 4 * CARDINALITY_LIMIT


class LocalCounter:
    """A monotonic counter whose totals live here, read by the SDK at each collection.

    Equal attribute sets add to one total whether or not they are the same mapping; the same mapping
    is found faster. Attribute values must be hashable (strings, numbers, booleans, tuples).
    """

    __slots__ = ("_by_identity", "_lock", "_totals", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        # One-element lists: the total of each attribute set, shared by every mapping equal to it.
        self._totals: dict[_Key, list[int]] = {}
        self._by_identity: dict[int, tuple[Mapping[str, AttributeValue], list[int]]] = {}

    def add(self, amount: int, attributes: Mapping[str, AttributeValue]) -> None:
        """Add ``amount`` (>= 0) to the total of ``attributes``."""
        with self._lock:
            known = self._by_identity.get(id(attributes))
            total = known[1] if known is not None and known[0] is attributes else self._total_of(attributes)
            total[0] += amount

    def add_one_each(self, attribute_sets: Iterable[Mapping[str, AttributeValue]]) -> None:
        """Add 1 to the total of each of ``attribute_sets`` (a call's check outcomes), under one lock."""
        with self._lock:
            by_identity = self._by_identity
            for attributes in attribute_sets:
                known = by_identity.get(id(attributes))
                total = (
                    known[1] if known is not None and known[0] is attributes else self._total_of(attributes)
                )
                total[0] += 1

    def _total_of(self, attributes: Mapping[str, AttributeValue]) -> list[int]:
        key: _Key = frozenset(attributes.items())
        total = self._totals.get(key)
        if total is None:
            if len(self._totals) >= CARDINALITY_LIMIT:
                key = frozenset(OVERFLOW.items())
            total = self._totals.setdefault(key, [0])
        if len(self._by_identity) >= _IDENTITIES_LIMIT:
            self._by_identity.clear()
        self._by_identity[id(attributes)] = (attributes, total)
        return total

    def observe(self, options: CallbackOptions | None = None) -> Iterable[Observation]:
        """The current totals, one observation per attribute set (the SDK's callback)."""
        return [Observation(total, dict(key)) for key, total in self.totals().items()]

    def totals(self) -> dict[_Key, int]:
        """The totals by attribute set (as a frozenset of its items)."""
        with self._lock:
            return {key: total[0] for key, total in self._totals.items()}


# One counter per (meter, name): the SDK keeps the first observable instrument of a name, with its
# callback, for the meter's life, so instrumenting again on the same meter must find the same totals.
_COUNTERS: Final[weakref.WeakKeyDictionary[Meter, dict[str, LocalCounter]]] = weakref.WeakKeyDictionary()
_COUNTERS_LOCK: Final = threading.Lock()


def local_counter(meter: Meter, name: str, *, unit: str, description: str) -> LocalCounter:
    """The counter ``name`` of ``meter``, registered as an observable counter on first use."""
    with _COUNTERS_LOCK:
        try:
            counters = _COUNTERS.setdefault(meter, {})
        except TypeError:  # a meter that takes no weak reference: remember nothing
            counters = {}
        counter = counters.get(name)
        if counter is None:
            counter = counters[name] = LocalCounter(name)
            meter.create_observable_counter(
                name, callbacks=[counter.observe], unit=unit, description=description
            )
    return counter
