"""The settings of an evaluation as the application's own settings say: its checks and its judge.

An evaluation holds answers to the checks the application runs on live traffic, so it reads the
instrumentation's settings (:class:`~otel_prompt_canary.instrumentation.InstrumentationConfig`,
from the ``OTEL_PROMPT_CANARY_*`` environment by default): the scoring settings file
(``OTEL_PROMPT_CANARY_SCORING``) for the prompt, the built-in checks
(``OTEL_PROMPT_CANARY_CHECKS``), and the LLM judge (``OTEL_PROMPT_CANARY_JUDGE_ENDPOINT``,
``OTEL_PROMPT_CANARY_JUDGE_MODEL``, ``OTEL_PROMPT_CANARY_JUDGE_API_KEY_ENV``, or the scoring
settings' ``judge``). The judge grades every case that asks for it (its sample rate is the
application's business, not the evaluation's).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from otel_prompt_canary.evals.runner import EvalSettings, JudgeEndpoint
from otel_prompt_canary.instrumentation import InstrumentationConfig, settings_of

__all__ = ["eval_settings"]


def eval_settings(
    prompt: str | None = None,
    *,
    config: InstrumentationConfig | None = None,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> EvalSettings:
    """:class:`EvalSettings` with the checks and judge the application's settings give ``prompt``,
    then ``overrides`` (any field of :class:`EvalSettings`) on top.

    Raises :class:`~otel_prompt_canary.errors.InvalidInputError` for a scoring file that cannot be
    read, or a judge whose API key variable is unset.
    """
    env = os.environ if environ is None else environ
    config = config if config is not None else InstrumentationConfig.from_env(env)
    scoring = settings_of(config).for_prompt(prompt)
    judge = None
    if scoring.judge is not None and scoring.judge.enabled:
        judge = JudgeEndpoint(
            base_url=scoring.judge.base_url,
            model=scoring.judge.model,
            api_key=scoring.judge.resolve_api_key(env),
            timeout_seconds=scoring.judge.timeout_s,
        )
    values: dict[str, Any] = {"scoring": scoring, "judge": judge}
    values.update(overrides)
    return EvalSettings(**values)
