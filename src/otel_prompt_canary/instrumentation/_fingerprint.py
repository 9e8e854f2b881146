"""Zero-code prompt identification: which registry prompt version a request's system prompt is.

With no router Selection active, the request's system texts (system/developer messages, Responses
``instructions``, Anthropic ``system``) are compared with the system texts of every prompt's stable
and canary versions, as the router's route cache holds them:

- a text with no ``{{variables}}`` matches exactly (one dictionary lookup);
- a template with variables is compiled once to a regular expression (literal parts escaped, each
  variable a lazy ``(.*?)``, a repeated variable a back-reference) that must match the whole text.

A match names the prompt and version, and so the version's output contract, which the call's checks
follow. The cohort follows from the route: the canary version is the
``canary`` cohort; the stable version is the ``stable`` cohort, except in rewrite mode, where the
call is assigned like the router would (unit key from the ``prompt_canary.unit`` baggage entry,
else at random) and, in the canary cohort, the matched text is replaced by the canary version's text
at the same place, rendered with the variables captured from the stable text.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from opentelemetry import baggage

from otel_prompt_canary import names
from otel_prompt_canary.instrumentation._call import Api
from otel_prompt_canary.instrumentation._tags import FINGERPRINT, Tags, TagsCache
from otel_prompt_canary.instrumentation.config import InstrumentationConfig
from otel_prompt_canary.registry.models import PromptVersion
from otel_prompt_canary.registry.template import VARIABLE_PATTERN, render_text

__all__ = ["Identifier", "PromptIndex", "build_identifier", "compile_template"]

logger = logging.getLogger("otel_prompt_canary.instrumentation")

_SYSTEM_ROLES: Final = ("system", "developer")


def compile_template(text: str) -> re.Pattern[str]:
    """A pattern matching exactly the renderings of ``text`` (variables captured by name)."""
    parts: list[str] = []
    seen: set[str] = set()
    position = 0
    for match in VARIABLE_PATTERN.finditer(text):
        parts.append(re.escape(text[position : match.start()]))
        name = match.group(1)
        parts.append(f"(?P={name})" if name in seen else f"(?P<{name}>.*?)")
        seen.add(name)
        position = match.end()
    parts.append(re.escape(text[position:]))
    return re.compile("".join(parts), re.DOTALL)


def system_texts(version: PromptVersion) -> list[str]:
    """The system texts of a version, in order (a text template counts when its role is system)."""
    if version.template is not None:
        return [version.template] if version.template_role in _SYSTEM_ROLES else []
    return [m.content for m in version.messages or () if m.role in _SYSTEM_ROLES]


@dataclass(frozen=True, slots=True)
class Match:
    """A request text identified as system text number ``position`` of ``version``."""

    entry: Any  # the router's RouteEntry
    version: PromptVersion
    position: int
    text: str
    variables: Mapping[str, str]


class PromptIndex:
    """Exact texts and compiled templates of every stable and canary version of one snapshot."""

    def __init__(self, entries: Mapping[str, Any]) -> None:
        self.exact: dict[str, Match] = {}
        self.templates: list[tuple[str, re.Pattern[str], Any, PromptVersion, int]] = []
        for entry in entries.values():
            versions = [entry.canary, entry.stable] if entry.canary is not None else [entry.stable]
            for version in versions:  # the stable version last: it wins a tie
                for position, text in enumerate(system_texts(version)):
                    if VARIABLE_PATTERN.search(text):
                        prefix = text[: VARIABLE_PATTERN.search(text).start()]  # type: ignore[union-attr]
                        self.templates.append((prefix, compile_template(text), entry, version, position))
                    else:
                        self.exact[text] = Match(entry, version, position, text, {})
        # Longer literal prefixes first: the most specific template wins.
        self.templates.sort(key=lambda t: len(t[0]), reverse=True)

    def find(self, text: str) -> Match | None:
        found = self.exact.get(text)
        if found is not None:
            return found
        for prefix, pattern, entry, version, position in self.templates:
            if not text.startswith(prefix):
                continue
            match = pattern.fullmatch(text)
            if match is not None:
                return Match(entry, version, position, text, match.groupdict())
        return None


Identifier = Callable[[Api, Mapping[str, Any]], "tuple[Tags, dict[str, Any] | None] | None"]


class Catalog:
    """Identifies requests against the router's current snapshot, re-indexed when it changes."""

    def __init__(self, router: Any, *, rewrite: bool, tags: TagsCache) -> None:
        self._router = router
        self._rewrite = rewrite
        self._tags = tags
        self._snapshot: object = None
        self._index = PromptIndex({})
        self._lock = threading.Lock()

    def _current(self) -> PromptIndex:
        snapshot = self._router.snapshot()
        if snapshot is not self._snapshot and snapshot is not None:
            with self._lock:
                if snapshot is not self._snapshot:
                    self._index = PromptIndex(getattr(snapshot, "entries", {}))
                    self._snapshot = snapshot
        return self._index

    def identify(self, api: Api, kwargs: Mapping[str, Any]) -> tuple[Tags, dict[str, Any] | None] | None:
        """The tags of the request, and its rewritten keyword arguments in rewrite mode."""
        texts = api.system_texts(kwargs)
        if not texts:
            return None
        index = self._current()
        match = None
        for text in texts:
            match = index.find(text)
            if match is not None:
                break
        if match is None:
            return None
        entry = match.entry
        name = entry.route.prompt
        rollout_id: str | None = entry.rollout_id
        canary: PromptVersion | None = entry.canary
        # Each version's tags carry its output contract: the checks follow the version identified.
        if canary is not None and match.version.version == canary.version and canary is not entry.stable:
            return self._tags.get(name, canary.version, "canary", rollout_id, FINGERPRINT, canary), None
        if match.version.version != entry.stable.version:
            return self._tags.get(
                name, match.version.version, None, rollout_id, FINGERPRINT, match.version
            ), None
        if self._rewrite and canary is not None and rollout_id is not None:
            unit = baggage.get_baggage(names.UNIT_BAGGAGE_KEY)
            routed = entry.choose(unit if isinstance(unit, str) else None)
            if routed.cohort == "canary":
                replacement = self._replacement(api, kwargs, match, canary)
                if replacement is not None:
                    return self._tags.get(
                        name, canary.version, "canary", rollout_id, FINGERPRINT, canary
                    ), replacement
        return self._tags.get(
            name, entry.stable.version, "stable", rollout_id, FINGERPRINT, entry.stable
        ), None

    @staticmethod
    def _replacement(
        api: Api, kwargs: Mapping[str, Any], match: Match, canary: PromptVersion
    ) -> dict[str, Any] | None:
        texts = system_texts(canary)
        if match.position >= len(texts):
            return None
        try:
            new_text = render_text(texts[match.position], match.variables)
        except Exception as exc:  # a canary variable the stable text does not carry
            logger.debug("cannot rewrite to %s: %s", canary.ref, exc)
            return None
        return api.rewrite(kwargs, match.text, new_text)


def build_identifier(
    config: InstrumentationConfig, router: Any, tags: TagsCache
) -> tuple[Identifier, Callable[[], object]] | None:
    """The identifier of ``router`` (or of a router opened on ``config.registry``), and its closer."""
    close: Callable[[], object] = lambda: None  # noqa: E731
    if router is None:
        try:
            from otel_prompt_canary.routing import PromptRouter

            router = PromptRouter(
                config.registry or "",
                initial_timeout=config.registry_wait,
                token=config.registry_token,
                environment=config.environment,
            )
        except Exception as exc:
            logger.error("zero-code prompt identification is off: cannot open %r: %s", config.registry, exc)
            return None
        close = router.close
    catalog = Catalog(router, rewrite=config.rewrite, tags=tags)
    return catalog.identify, close
