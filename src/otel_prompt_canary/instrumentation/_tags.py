"""The prompt identity of one LLM call, as attributes: name, version, cohort and rollout."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, final

from opentelemetry.util.types import AttributeValue

from otel_prompt_canary.instrumentation import attributes as attr

__all__ = ["FINGERPRINT", "SELECTION", "Tags", "TagsCache"]

SELECTION: Final = "selection"
FINGERPRINT: Final = "fingerprint"

_CACHE_LIMIT: Final = 4096


@final
class Tags:
    """Who a call belongs to: prompt name and version, cohort and rollout, with attributes prebuilt.

    ``version`` is written as a string so that span attributes and metric attributes agree.
    ``cohort`` is None for a version that is neither the stable nor the canary one of the route.
    """

    __slots__ = (
        "_extended",
        "cohort",
        "metric_attributes",
        "name",
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
    ) -> None:
        self.name = name
        self.version = str(version)
        self.cohort = cohort
        self.rollout_id = rollout_id
        self.source = source
        span: dict[str, AttributeValue] = {
            attr.PROMPT_NAME: name,
            attr.PROMPT_VERSION: self.version,
            attr.PROMPT_SOURCE: source,
        }
        metric: dict[str, AttributeValue] = {attr.PROMPT_NAME: name, attr.PROMPT_VERSION: self.version}
        if cohort is not None:
            span[attr.COHORT] = cohort
            metric[attr.COHORT] = cohort
        if rollout_id is not None:
            span[attr.ROLLOUT_ID] = rollout_id
        if "openinference" in mirrors:
            span[attr.OPENINFERENCE_TEMPLATE_VERSION] = self.version
        if "langfuse" in mirrors:
            span[attr.LANGFUSE_PROMPT_NAME] = name
            span[attr.LANGFUSE_PROMPT_VERSION] = _int_or_str(self.version)
        self.span_attributes: Mapping[str, AttributeValue] = span
        self.metric_attributes: Mapping[str, AttributeValue] = metric
        self._extended: dict[tuple[str, ...], Mapping[str, AttributeValue]] = {}

    def extended(self, *pairs: str) -> Mapping[str, AttributeValue]:
        """The metric attributes plus ``pairs`` (key, value, key, value...), built once and kept."""
        found = self._extended.get(pairs)
        if found is None:
            if len(self._extended) >= _CACHE_LIMIT:
                self._extended = {}
            found = extend(self.metric_attributes, pairs)
            self._extended[pairs] = found
        return found

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


class TagsCache:
    """Tags built once per (name, version, cohort, rollout, source); bounded, thread-safe enough.

    A lost race builds the same Tags twice, which is harmless.
    """

    __slots__ = ("_items", "_mirrors")

    def __init__(self, mirrors: frozenset[str]) -> None:
        self._mirrors = mirrors
        self._items: dict[tuple[str, str, str | None, str | None, str], Tags] = {}

    def get(
        self, name: str, version: int | str, cohort: str | None, rollout_id: str | None, source: str
    ) -> Tags:
        key = (name, str(version), cohort, rollout_id, source)
        found = self._items.get(key)
        if found is None:
            if len(self._items) >= _CACHE_LIMIT:
                self._items = {}
            found = Tags(name, version, cohort, rollout_id, source, mirrors=self._mirrors)
            self._items[key] = found
        return found
