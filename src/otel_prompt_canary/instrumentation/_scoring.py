"""The scoring plans the instrumentation runs: one per prompt, built on first use, sharing one worker.

The scoring settings (``OTEL_PROMPT_CANARY_SCORING``, a YAML file) give a default configuration and
per-prompt overrides; ``checks`` and the ``judge_*`` settings adjust the default. A prompt version
that declares its output (its output contract) gets a plan of its own, built from the prompt's
configuration and that declaration. A prompt whose
configuration cannot be built (a missing API key variable, say) is logged once and scored with no
checks, so a configuration mistake never breaks a call.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path

from opentelemetry.instrumentation.utils import suppress_instrumentation

from otel_prompt_canary.instrumentation.config import InstrumentationConfig
from otel_prompt_canary.scoring import (
    Check,
    DeclaredOutput,
    JudgeConfig,
    LateEvaluation,
    LateResultCallback,
    LLMResponse,
    Scorer,
    ScoringConfig,
    ScoringPlan,
    ScoringSettings,
    ScoringWorker,
    build_scoring,
    load_scoring_settings,
)

__all__ = ["Scoring", "settings_of"]

logger = logging.getLogger("otel_prompt_canary.instrumentation")

_SECTIONS = ("json_valid", "max_output_tokens", "truncation", "refusal", "escalation", "output_tokens")


def settings_of(config: InstrumentationConfig) -> ScoringSettings:
    """The scoring settings ``config`` describes (raises InvalidInputError for a bad file)."""
    settings = load_scoring_settings(Path(config.scoring)) if config.scoring else ScoringSettings()
    default = settings.default
    if config.checks is not None:
        wanted = dict(check.partition(":")[::2] for check in config.checks)
        updates: dict[str, object] = {}
        for section in _SECTIONS:
            current = getattr(default, section)
            change: dict[str, object] = {}
            if section == "json_valid":
                change["enabled"] = "auto" if section in wanted else False
            else:
                change["enabled"] = section in wanted
            if section == "max_output_tokens" and wanted.get(section):
                change["budget"] = int(wanted[section])
            updates[section] = current.model_copy(update=change)
        default = default.model_copy(update=updates)
    if config.judge_endpoint is not None and config.judge_model:
        judge = JudgeConfig(
            base_url=config.judge_endpoint,
            model=config.judge_model,
            sample_rate=config.judge_sample_rate,
            api_key_env=config.judge_api_key_env,
        )
        default = default.model_copy(update={"judge": judge})
    return settings.model_copy(update={"default": default})


class _SuppressedCheck:
    """A late check whose HTTP calls run with OpenTelemetry instrumentation suppressed."""

    def __init__(self, inner: Check) -> None:
        self._inner = inner
        self.name = inner.name

    def check(self, response: LLMResponse) -> bool | None:
        with suppress_instrumentation():
            return self._inner.check(response)

    def close(self) -> None:
        close = getattr(self._inner, "close", None)
        if callable(close):
            close()


class _SuppressedScorer:
    """A late scorer whose HTTP calls run with OpenTelemetry instrumentation suppressed."""

    def __init__(self, inner: Scorer) -> None:
        self._inner = inner
        self.name = inner.name

    def score(self, response: LLMResponse) -> float | None:
        with suppress_instrumentation():
            return self._inner.score(response)

    def close(self) -> None:
        close = getattr(self._inner, "close", None)
        if callable(close):
            close()


def _suppressed(evaluator: Check | Scorer) -> Check | Scorer:
    if callable(getattr(evaluator, "score", None)):
        return _SuppressedScorer(evaluator)  # type: ignore[arg-type]
    return _SuppressedCheck(evaluator)  # type: ignore[arg-type]


def _has_late(config: ScoringConfig) -> bool:
    return (config.judge is not None and config.judge.enabled) or (
        config.safety.enabled and config.safety.moderation is not None
    )


class Scoring:
    """The plan of each prompt and declared output (None: calls of no known prompt), built once and cached."""

    def __init__(
        self,
        settings: ScoringSettings,
        *,
        on_late_result: LateResultCallback,
        extra_checks: Sequence[Check] = (),
        extra_scorers: Sequence[Scorer] = (),
    ) -> None:
        self._settings = settings
        self._extra_checks = tuple(extra_checks)
        self._extra_scorers = tuple(extra_scorers)
        # One plan per (prompt, declared output): distinct declarations are few, one per version at most.
        self._plans: dict[tuple[str | None, DeclaredOutput | None], ScoringPlan] = {}
        self._lock = threading.RLock()  # re-entered: a contract that fails to build falls back
        configs = [settings.default, *settings.prompts.values()]
        self.worker: ScoringWorker | None = None
        if any(_has_late(c) for c in configs):
            self.worker = ScoringWorker(
                on_late_result, queue_size=max(c.background.queue_size for c in configs)
            )

    def plan_for(self, prompt_name: str | None, declared_output: DeclaredOutput | None = None) -> ScoringPlan:
        """The plan of ``prompt_name`` for a version that declares ``declared_output``; never raises."""
        key = (prompt_name, declared_output)
        plan = self._plans.get(key)
        if plan is not None:
            return plan
        with self._lock:
            plan = self._plans.get(key)
            if plan is None:
                plan = self._build(prompt_name, declared_output)
                self._plans[key] = plan
        return plan

    def _build(self, prompt_name: str | None, declared_output: DeclaredOutput | None) -> ScoringPlan:
        try:
            plan = build_scoring(
                self._settings.for_prompt(prompt_name),
                worker=self.worker,
                extra_checks=self._extra_checks,
                extra_scorers=self._extra_scorers,
                declared_output=declared_output,
            )
            if not plan.late:
                return plan
            # The judge and moderation calls are LLM calls too: they must not be recorded (nor judged).
            return ScoringPlan(
                checks=plan.checks,
                scorers=plan.scorers,
                late=[LateEvaluation(_suppressed(e.evaluator), e.sampler) for e in plan.late],
                worker=self.worker,
            )
        except Exception as exc:
            if declared_output is not None:
                # The configuration alone may still build: keep the prompt's other checks running.
                logger.error("the output contract of prompt %r is not checked: %s", prompt_name, exc)
                return self.plan_for(prompt_name, None)
            logger.error("scoring for prompt %r is disabled: %s", prompt_name, exc)
            return ScoringPlan()

    def close(self, timeout: float = 5.0) -> None:
        """Close every plan's clients and shut the worker down."""
        with self._lock:
            # A contract that failed to build shares the plain plan: close each plan once.
            plans = list({id(plan): plan for plan in self._plans.values()}.values())
            self._plans.clear()
        for plan in plans:
            try:
                plan.close(0)
            except Exception:
                logger.debug("closing a scoring plan failed", exc_info=True)
        if self.worker is not None:
            self.worker.shutdown(timeout)
