"""The OpenTelemetry instrumentor: ``opentelemetry-instrument`` finds it by its entry point.

::

    from otel_prompt_canary.instrumentation import PromptCanaryInstrumentor

    PromptCanaryInstrumentor().instrument(registry="registry.db")   # or OTEL_PROMPT_CANARY_REGISTRY

This module stays light to import: the client libraries, routing and scoring are imported when
:meth:`~PromptCanaryInstrumentor.instrument` runs.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

from otel_prompt_canary.instrumentation._active import set_active_runtime
from otel_prompt_canary.instrumentation.config import InstrumentationConfig
from otel_prompt_canary.instrumentation.package import _instruments, library_problem
from otel_prompt_canary.instrumentation.version import __version__

if TYPE_CHECKING:
    from otel_prompt_canary.instrumentation._setup import Installation

__all__ = ["SCOPE", "PromptCanaryInstrumentor"]

logger = logging.getLogger("otel_prompt_canary.instrumentation")

#: The instrumentation scope of this project's spans, metrics and events.
SCOPE = "otel_prompt_canary.instrumentation"


class PromptCanaryInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Tags LLM call spans with the prompt version and cohort, runs checks, records metrics.

    Keyword arguments of :meth:`instrument`:

    - ``tracer_provider``, ``meter_provider``, ``logger_provider``: the providers to use (default:
      the global ones);
    - ``config``: an :class:`InstrumentationConfig` (default: from ``OTEL_PROMPT_CANARY_*``);
    - any :class:`InstrumentationConfig` field (``registry=``, ``rewrite=``...), overriding the
      environment;
    - ``router``: an application's :class:`~otel_prompt_canary.routing.PromptRouter` to identify
      prompts with, instead of opening ``registry``;
    - ``extra_checks``, ``extra_scorers``: the application's own checks and scorers, run inline.
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        from otel_prompt_canary.instrumentation._setup import install

        config = kwargs.pop("config", None)
        tracer_provider = kwargs.pop("tracer_provider", None)
        meter_provider = kwargs.pop("meter_provider", None)
        logger_provider = kwargs.pop("logger_provider", None)
        router = kwargs.pop("router", None)
        extra_checks: Sequence[Any] = kwargs.pop("extra_checks", ())
        extra_scorers: Sequence[Any] = kwargs.pop("extra_scorers", ())
        if config is None:
            config = InstrumentationConfig.from_env(**kwargs)
        elif kwargs:
            raise TypeError(f"give either config= or settings, not both: {sorted(kwargs)}")
        installation = install(
            config,
            scope=SCOPE,
            version=__version__,
            tracer_provider=tracer_provider,
            meter_provider=meter_provider,
            logger_provider=logger_provider,
            router=router,
            extra_checks=extra_checks,
            extra_scorers=extra_scorers,
            library_problem=library_problem,
        )
        self._installation: Installation | None = installation
        set_active_runtime(installation.runtime)

    def _uninstrument(self, **kwargs: Any) -> None:
        installation: Installation | None = getattr(self, "_installation", None)
        set_active_runtime(None)
        self._installation = None
        if installation is not None:
            installation.remove()

    @property
    def patched(self) -> tuple[str, ...]:
        """The methods currently patched, as ``module:Class.method`` (empty when not instrumented)."""
        installation = getattr(self, "_installation", None)
        return () if installation is None else installation.patcher.patched
