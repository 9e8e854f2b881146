"""A scoring plan: the checks and scorers of one prompt, built once from its configuration.

The instrumentation builds a :class:`ScoringPlan` per prompt (:func:`build_scoring`) and, on every
LLM response, calls :meth:`ScoringPlan.run` (inline checks and scorers, cheap, never raises) and
:meth:`ScoringPlan.submit_late` (samples the slow evaluations and queues them on the background
worker, never blocks). Late outcomes arrive through the ``on_late_result`` callback.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from otel_prompt_canary.errors import InvalidInputError
from otel_prompt_canary.scoring._budget import MaxOutputTokensCheck, OutputTokensScorer, TruncationCheck
from otel_prompt_canary.scoring._config import ScoringConfig
from otel_prompt_canary.scoring._declared import DeclaredOutput
from otel_prompt_canary.scoring._detectors import EscalationCheck, RefusalCheck
from otel_prompt_canary.scoring._format import JsonSchemaCheck, JsonValidCheck, RegexCheck
from otel_prompt_canary.scoring._judge import LLMJudge
from otel_prompt_canary.scoring._outcomes import Check, Scorer, ScoringResults, validate_evaluation_name
from otel_prompt_canary.scoring._response import LLMResponse
from otel_prompt_canary.scoring._runner import PreparedChecks
from otel_prompt_canary.scoring._safety import ModerationClassifier, SafetyCheck, SafetyClassifier
from otel_prompt_canary.scoring._sampling import Sampler
from otel_prompt_canary.scoring._worker import LateResultCallback, ScoringWorker

if TYPE_CHECKING:
    import httpx

__all__ = ["LateEvaluation", "ScoringPlan", "build_scoring"]

_logger = logging.getLogger("otel_prompt_canary.scoring")


@dataclass(frozen=True, slots=True)
class LateEvaluation:
    """A slow check or scorer, run in the background on the responses its ``sampler`` keeps."""

    evaluator: Check | Scorer
    sampler: Sampler


def _is_scorer(evaluator: object) -> bool:
    return callable(getattr(evaluator, "score", None))


class ScoringPlan:
    """The checks, scorers and late evaluations of one prompt.

    Names are validated and must be unique among checks (inline and late) and among scores, since
    each becomes a span attribute. A plan given late evaluations needs a ``worker``.
    """

    __slots__ = ("_checks", "_late", "_owns_worker", "_prepared", "_scorers", "_shutdown_timeout", "_worker")

    def __init__(
        self,
        *,
        checks: Sequence[Check] = (),
        scorers: Sequence[Scorer] = (),
        late: Sequence[LateEvaluation] = (),
        worker: ScoringWorker | None = None,
        owns_worker: bool = False,
        shutdown_timeout: float = 5.0,
    ) -> None:
        check_names = [c.name for c in checks] + [
            e.evaluator.name for e in late if not _is_scorer(e.evaluator)
        ]
        score_names = [s.name for s in scorers] + [e.evaluator.name for e in late if _is_scorer(e.evaluator)]
        for kind, names in (("check", check_names), ("score", score_names)):
            for name in names:
                validate_evaluation_name(name)
            duplicates = sorted({n for n in names if names.count(n) > 1})
            if duplicates:
                raise InvalidInputError(f"two {kind}s are named {', '.join(duplicates)}")
        if late and worker is None:
            raise InvalidInputError(
                "late evaluations (judge, moderation) need a background worker: pass on_late_result "
                "or a ScoringWorker"
            )
        self._checks = tuple(checks)
        self._scorers = tuple(scorers)
        self._prepared = PreparedChecks(self._checks, self._scorers)
        self._late = tuple(late)
        self._worker = worker
        self._owns_worker = owns_worker
        self._shutdown_timeout = shutdown_timeout

    @property
    def checks(self) -> tuple[Check, ...]:
        """The inline checks, in run order."""
        return self._checks

    @property
    def scorers(self) -> tuple[Scorer, ...]:
        """The inline scorers, in run order."""
        return self._scorers

    @property
    def late(self) -> tuple[LateEvaluation, ...]:
        """The sampled background evaluations."""
        return self._late

    @property
    def worker(self) -> ScoringWorker | None:
        """The background worker the late evaluations go to."""
        return self._worker

    def run(self, response: LLMResponse) -> ScoringResults:
        """Run the inline checks and scorers on ``response``; never raises."""
        return self._prepared.run(response)

    def submit_late(self, response: LLMResponse) -> int:
        """Queue the late evaluations whose sampler keeps ``response``; returns how many were queued.

        Never blocks and never raises: a full queue drops the evaluation and counts it in the
        worker's stats.
        """
        worker = self._worker
        if worker is None or not self._late:
            return 0
        queued = 0
        for late in self._late:
            try:
                if late.sampler.should_sample(response.response_id) and worker.submit(
                    response, late.evaluator
                ):
                    queued += 1
            except Exception:
                _logger.debug("sampling failed", exc_info=True)
        return queued

    def close(self, timeout: float | None = None) -> bool:
        """Shut down the worker if this plan created it, then close evaluators' HTTP clients.

        Returns False when the worker did not finish within ``timeout`` (default: the configured
        ``background.shutdown_timeout_s``).
        """
        joined = True
        if self._worker is not None and self._owns_worker:
            joined = self._worker.shutdown(self._shutdown_timeout if timeout is None else timeout)
        for evaluator in (*self._checks, *self._scorers, *(e.evaluator for e in self._late)):
            close = getattr(evaluator, "close", None)
            if callable(close):
                try:
                    close()
                except Exception:
                    _logger.debug("closing %r failed", evaluator, exc_info=True)
        return joined

    def __repr__(self) -> str:
        return (
            f"ScoringPlan(checks={[c.name for c in self._checks]}, "
            f"scorers={[s.name for s in self._scorers]}, "
            f"late={[e.evaluator.name for e in self._late]})"
        )


def build_scoring(
    config: ScoringConfig | None = None,
    *,
    on_late_result: LateResultCallback | None = None,
    worker: ScoringWorker | None = None,
    classifier: SafetyClassifier | None = None,
    extra_checks: Iterable[Check] = (),
    extra_scorers: Iterable[Scorer] = (),
    extra_late: Iterable[LateEvaluation] = (),
    http_client: httpx.Client | None = None,
    environ: Mapping[str, str] | None = None,
    declared_output: DeclaredOutput | None = None,
) -> ScoringPlan:
    """Build the :class:`ScoringPlan` that ``config`` describes (the defaults when None).

    Args:
        config: The prompt's configuration.
        on_late_result: Receives late outcomes (judge, moderation); the plan then creates and owns a
            worker with the configured queue size. Ignored when ``worker`` is given.
        worker: A worker to share between plans (its owner shuts it down).
        classifier: The application's safety classifier (returns flagged); needs
            ``safety.enabled`` and no ``safety.moderation``. Runs inline.
        extra_checks: The application's own checks, run inline after the built-in ones.
        extra_scorers: The application's own scorers, run inline after the built-in ones.
        extra_late: The application's own slow evaluations, with their samplers.
        http_client: An ``httpx.Client`` for the judge and moderation endpoints to share.
        environ: Where ``api_key_env`` variables are read (default: ``os.environ``).
        declared_output: What the prompt version declares its answers are (its output contract).
            ``format: json`` runs ``json_valid`` on every response, whatever the request asked, unless
            the configuration turns ``json_valid`` off; a declared schema is checked by
            ``json_schema`` in place of the configured one, unless ``json_schema.enabled`` is false.

    Raises:
        InvalidInputError: a bad parameter, a name clash, an unset ``api_key_env``, a late
            evaluation without ``on_late_result`` or ``worker``, or an ambiguous safety source.
    """
    cfg = config if config is not None else ScoringConfig()
    env = os.environ if environ is None else environ
    checks: list[Check] = []
    scorers: list[Scorer] = []
    late: list[LateEvaluation] = []

    jv = cfg.json_valid
    # The version's contract outranks the request: `auto` guesses from response_format only for lack
    # of anything better, while a declared format says what every answer must be. An explicit `false`
    # is the operator's choice of checks and stays off.
    declares_json = declared_output is not None and declared_output.format == "json"
    if jv.enabled is not False:
        checks.append(
            JsonValidCheck(
                name=jv.name,
                when="requested" if jv.enabled == "auto" and not declares_json else "always",
                allow_fence=jv.allow_fence,
                require_object=jv.require_object,
            )
        )
    js = cfg.json_schema
    declared_schema = None if declared_output is None else declared_output.json_schema
    if declared_schema is not None and (js is None or js.enabled):
        # The version's own schema replaces the prompt-wide one: a new version may change its format
        # on purpose, and its contract says how. Fences are accepted as the JSON check accepts them.
        if js is None:
            checks.append(JsonSchemaCheck(declared_schema, allow_fence=jv.allow_fence))
        else:
            checks.append(JsonSchemaCheck(declared_schema, name=js.name, allow_fence=js.allow_fence))
    elif js is not None and js.enabled:
        checks.append(JsonSchemaCheck(js.json_schema, name=js.name, allow_fence=js.allow_fence))
    for rx in cfg.regex:
        checks.append(
            RegexCheck(
                rx.pattern,
                name=rx.name,
                must_match=rx.must_match,
                ignore_case=rx.ignore_case,
                multiline=rx.multiline,
                dot_all=rx.dot_all,
                full_match=rx.full_match,
                max_chars=rx.max_chars,
            )
        )
    if cfg.max_output_tokens.enabled:
        checks.append(MaxOutputTokensCheck(cfg.max_output_tokens.budget, name=cfg.max_output_tokens.name))
    if cfg.truncation.enabled:
        checks.append(TruncationCheck(name=cfg.truncation.name))
    rf = cfg.refusal
    if rf.enabled:
        checks.append(
            RefusalCheck(
                name=rf.name,
                languages=rf.languages,
                extra_phrases=rf.extra_phrases,
                scan_chars=rf.scan_chars,
            )
        )
    esc = cfg.escalation
    if esc.enabled:
        checks.append(EscalationCheck(name=esc.name, tool_names=esc.tool_names, phrases=esc.phrases))

    safety = cfg.safety
    if safety.enabled:
        if classifier is not None and safety.moderation is not None:
            raise InvalidInputError("safety: give either a classifier or safety.moderation, not both")
        if classifier is not None:
            checks.append(SafetyCheck(classifier, name=safety.name))
        elif safety.moderation is not None:
            mod = safety.moderation
            moderation = ModerationClassifier(
                mod.base_url,
                api_key=mod.resolve_api_key(env),
                model=mod.model,
                timeout=mod.timeout_s,
                max_chars=mod.max_chars,
                headers=mod.headers,
                client=http_client,
            )
            late.append(
                LateEvaluation(
                    SafetyCheck(moderation, name=safety.name), Sampler(safety.sample_rate, salt=safety.name)
                )
            )
        else:
            raise InvalidInputError(
                "safety is enabled but has no classifier: configure safety.moderation or pass classifier="
            )
    elif classifier is not None:
        raise InvalidInputError("a safety classifier was given but safety.enabled is false")

    checks.extend(extra_checks)

    if cfg.output_tokens.enabled:
        scorers.append(OutputTokensScorer(name=cfg.output_tokens.name))
    scorers.extend(extra_scorers)

    judge = cfg.judge
    if judge is not None and judge.enabled:
        late.append(
            LateEvaluation(
                LLMJudge(
                    base_url=judge.base_url,
                    model=judge.model,
                    rubric=judge.rubric,
                    api_key=judge.resolve_api_key(env),
                    name=judge.name,
                    timeout=judge.timeout_s,
                    max_context_chars=judge.max_context_chars,
                    max_output_chars=judge.max_output_chars,
                    json_mode=judge.json_mode,
                    max_tokens=judge.max_tokens,
                    headers=judge.headers,
                    client=http_client,
                ),
                Sampler(judge.sample_rate, salt=judge.name),
            )
        )
    late.extend(extra_late)

    owns_worker = False
    if late and worker is None:
        if on_late_result is None:
            raise InvalidInputError(
                "late evaluations (judge, moderation) need on_late_result= or worker= to deliver results"
            )
        worker = ScoringWorker(on_late_result, queue_size=cfg.background.queue_size)
        owns_worker = True
    try:
        return ScoringPlan(
            checks=checks,
            scorers=scorers,
            late=late,
            worker=worker,
            owns_worker=owns_worker,
            shutdown_timeout=cfg.background.shutdown_timeout_s,
        )
    except Exception:
        if owns_worker and worker is not None:
            worker.shutdown(0)
        raise
