"""What in-app reports count: every signal of every call, per rollout, cohort and time window.

The runtime hands the tally each recorded call (its check outcomes, scores and token usage) and each
late outcome (a sampled LLM judge's, moderation's, user feedback); the tally counts them with
:class:`~otel_prompt_canary.samples.SampleCounts`, the same sums the Collector processor keeps, so
that the control plane merges both kinds of report alike. Counting is a few dict increments under one
lock, on the caller's thread; nothing here does I/O.

:meth:`Tally.seal` drains the counts into report bodies (``schemas/report.schema.json``), one per
rollout (several when a rollout has more series than one body should carry), each with a new id and
the origin ``application``: a rollout whose statistics come from the Collector processor ignores
them, since it reports the same calls. A call of no rollout counts in its stable version's **live
report** (rollout id ``live:<version>``), which the control plane's drift monitoring reads; every
report names the models that answered (``response_models``, from ``gen_ai.response.model``).
Memory is bounded: beyond ``max_series`` series between two seals, samples are dropped and counted.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

from otel_prompt_canary import names
from otel_prompt_canary.errors import InvalidInputError
from otel_prompt_canary.samples import SampleCounts, SeriesKey, Sums, quantize, window_start
from otel_prompt_canary.scoring import CheckOutcome, ScoreOutcome, ScoringResults

__all__ = ["MAX_SERIES_PER_REPORT", "REPORT_ORIGIN", "Identity", "Tally", "report_source"]

#: The most series one report body carries (about 100 bytes each): a body stays far below the
#: control plane's default 1 MiB limit.
MAX_SERIES_PER_REPORT: Final = 2000

#: (prompt name, version, cohort, rollout id) of one call.
Identity = tuple[str | None, str | None, str | None, str | None]

#: What in-app reports say they are (a report's ``origin``: the Collector's say ``collector``).
REPORT_ORIGIN: Final = "application"
#: The most (rollout, cohort, model, window) counts between two reports, and the longest model name.
_MODELS_LIMIT: Final = 4096
_MODEL_LENGTH: Final = 256

_COHORTS: Final = frozenset({"stable", "canary"})
_PROMPTS_LIMIT: Final = 1024


def _live_rollout(version: str | None, cohort: str) -> str | None:
    """The rollout id of a live report of ``version`` (a call of no rollout), or None when the call
    served no registry version (an application's fallback template is version 0)."""
    if cohort != "stable" or version is None or not version.isdigit() or int(version) < 1:
        return None
    return names.LIVE_ROLLOUT_PREFIX + version


def report_source() -> str:
    """Who reports: ``<host>:<pid>``, or ``<service.name>@<host>:<pid>`` when OTEL_SERVICE_NAME is set."""
    where = f"{socket.gethostname()}:{os.getpid()}"
    service = os.environ.get("OTEL_SERVICE_NAME", "").strip()
    return (f"{service}@{where}" if service else where)[:256]


def _rfc3339(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _wire(sums: Sums) -> dict[str, Any]:
    mean, n, total, total_sq = sums
    if mean:
        return {"kind": "mean", "n": n, "sum": str(total), "sum_sq": str(total_sq)}
    return {"kind": "proportion", "n": n, "successes": total}


class Tally:
    """Samples of the calls of each rollout, counted until sealed into report bodies; thread-safe.

    ``active`` is False until there is a control plane to report to: until then nothing is counted.
    ``on_drop(reason, count)`` hears of samples dropped (``series_limit``...): the reporter counts them.
    """

    def __init__(
        self, *, window_seconds: int, max_series: int, clock: Callable[[], float] = time.time
    ) -> None:
        self.window_seconds = window_seconds
        self.active = False
        self.on_drop: Callable[[str, int], object] = lambda _reason, _count: None
        self._counts = SampleCounts(max_series=max_series)
        self._clock = clock
        self._source = report_source()
        # rollout id -> prompt name, and (rollout id, cohort) -> the version last seen: what a report's
        # envelope names besides its statistics.
        self._prompts: dict[str, str] = {}
        self._versions: dict[tuple[str, str], str] = {}
        # (rollout id, cohort, gen_ai.response.model, window start) -> calls: the reports'
        # response_models, which drift monitoring's model watch reads.
        self._models: dict[tuple[str, str, str, int], int] = {}
        self._models_lock = threading.Lock()

    def count_call(
        self,
        identity: Identity,
        results: ScoringResults,
        input_tokens: int | None,
        output_tokens: int | None,
        model: str | None = None,
    ) -> None:
        """Count one recorded call: its checks, scores, token usage and response ``model``.

        A call of no rollout counts in its stable version's live report (rollout id ``live:<version>``).
        """
        prompt, version, cohort, rollout_id = identity
        if not self.active or prompt is None or cohort not in _COHORTS:
            return
        if rollout_id is None:
            rollout_id = _live_rollout(version, cohort)
            if rollout_id is None:
                return
        samples: list[tuple[str, bool, int]] = [
            (check.attribute, False, check.passed) for check in results.checks if check.passed is not None
        ]
        for score in results.scores:
            if score.value is not None:
                self._add_score(samples, score.attribute, score.value)
        if input_tokens is not None:
            samples.append((names.USAGE_INPUT_TOKENS, True, quantize(input_tokens)))
        if output_tokens is not None:
            samples.append((names.USAGE_OUTPUT_TOKENS, True, quantize(output_tokens)))
        if self._count(prompt, version, cohort, rollout_id, samples) and model:
            self._count_model(rollout_id, cohort, model)

    def count_late(self, identity: Identity, outcome: CheckOutcome | ScoreOutcome) -> None:
        """Count one outcome that arrived after its call: a judge's or moderation's, or feedback."""
        prompt, version, cohort, rollout_id = identity
        if not self.active or prompt is None or cohort not in _COHORTS:
            return
        if rollout_id is None:
            rollout_id = _live_rollout(version, cohort)
            if rollout_id is None:
                return
        samples: list[tuple[str, bool, int]] = []
        if isinstance(outcome, CheckOutcome):
            if outcome.passed is not None:
                samples.append((outcome.attribute, False, outcome.passed))
        elif outcome.value is not None:
            self._add_score(samples, outcome.attribute, outcome.value)
        if samples:
            self._count(prompt, version, cohort, rollout_id, samples)

    def _count_model(self, rollout_id: str, cohort: str, model: str) -> None:
        key = (rollout_id, cohort, model[:_MODEL_LENGTH], window_start(self._clock(), self.window_seconds))
        with self._models_lock:
            models = self._models
            if key in models:
                models[key] += 1
            elif len(models) < _MODELS_LIMIT:
                models[key] = 1
            # Beyond the limit (thousands of model names at once) the names go unreported: the
            # signals do not depend on them.

    def _add_score(self, samples: list[tuple[str, bool, int]], attribute: str, value: float) -> None:
        try:
            samples.append((attribute, True, quantize(value)))
        except InvalidInputError:  # NaN, an infinity or a huge value from a scorer: not a sample
            self.on_drop("invalid_score", 1)

    def _count(
        self,
        prompt: str,
        version: str | None,
        cohort: str,
        rollout_id: str,
        samples: list[tuple[str, bool, int]],
    ) -> bool:
        """Count ``samples``; False when there were none."""
        if not samples:
            return False
        prompts = self._prompts
        if prompts.get(rollout_id) != prompt:
            if len(prompts) >= _PROMPTS_LIMIT:
                prompts.clear()
            prompts[rollout_id] = prompt
        if version is not None:
            if len(self._versions) >= _PROMPTS_LIMIT:
                self._versions.clear()
            self._versions[(rollout_id, cohort)] = version
        start = window_start(self._clock(), self.window_seconds)
        dropped = self._counts.add(rollout_id, cohort, start, samples)
        if dropped:
            self.on_drop("series_limit", dropped)
        return True

    def seal(self) -> list[tuple[str, dict[str, Any]]]:
        """The counts so far as report bodies, as (rollout id, body); counting starts again."""
        by_rollout: dict[str, list[tuple[SeriesKey, Sums]]] = {}
        for key, sums in self._counts.drain().items():
            by_rollout.setdefault(key[0], []).append((key, sums))
        by_model: dict[str, dict[str, dict[str, dict[str, int]]]] = {}
        with self._models_lock:
            models, self._models = self._models, {}
            for key, calls in models.items():
                rollout_id, cohort, model, start = key
                if rollout_id not in by_rollout:
                    # Its samples were counted after the drain above: the models go with them, next time.
                    self._models[key] = calls
                    continue
                cohorts = by_model.setdefault(rollout_id, {})
                cohorts.setdefault(cohort, {}).setdefault(model, {})[str(start)] = calls
        bodies = []
        for rollout_id, series in by_rollout.items():
            prompt = self._prompts.get(rollout_id)
            if prompt is None:  # forgotten (over a thousand rollouts at once): nothing to name it by
                self.on_drop("unknown_prompt", sum(sums[1] for _, sums in series))
                continue
            for first in range(0, len(series), MAX_SERIES_PER_REPORT):
                body = self._body(prompt, rollout_id, series[first : first + MAX_SERIES_PER_REPORT])
                if first == 0 and rollout_id in by_model:
                    body["response_models"] = by_model[rollout_id]
                bodies.append((rollout_id, body))
        return bodies

    def _body(self, prompt: str, rollout_id: str, series: list[tuple[SeriesKey, Sums]]) -> dict[str, Any]:
        cohorts: dict[str, dict[str, dict[str, dict[str, Any]]]] = {"stable": {}, "canary": {}}
        starts = []
        for (_, cohort, attribute, start), sums in series:
            cohorts[cohort].setdefault(attribute, {})[str(start)] = _wire(sums)
            starts.append(start)
        body: dict[str, Any] = {
            "id": "pcr_" + secrets.token_hex(16),
            "type": "prompt_canary.report",
            "source": self._source,
            "origin": REPORT_ORIGIN,
            "prompt": prompt,
            "rollout_id": rollout_id,
            "window_seconds": self.window_seconds,
            "stable": cohorts["stable"],
            "canary": cohorts["canary"],
            "window_start": _rfc3339(min(starts)),
            "window_end": _rfc3339(max(starts) + self.window_seconds),
            "created_at": _rfc3339(self._clock()),
        }
        versions = {c: v for c in ("stable", "canary") if (v := self._versions.get((rollout_id, c)))}
        if versions:
            body["versions"] = versions
        return body

    def reset(self) -> None:
        """Forget every count (a forked child: its parent reports what was counted before the fork)."""
        self._counts.drain()
        self._source = report_source()  # the child's own pid
