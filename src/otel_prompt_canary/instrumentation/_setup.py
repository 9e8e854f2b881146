"""Building one instrumentation: providers, instruments, scoring, identification, patches; and undoing it."""

from __future__ import annotations

import contextlib
import logging
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry._logs import get_logger
from opentelemetry.metrics import Meter, get_meter

from otel_prompt_canary.instrumentation._reporter import DEFAULT_MAX_SERIES, Reporter, window_of
from otel_prompt_canary.instrumentation._runtime import Runtime
from otel_prompt_canary.instrumentation._scoring import Scoring, settings_of
from otel_prompt_canary.instrumentation._tags import TagsCache
from otel_prompt_canary.instrumentation._tally import Tally
from otel_prompt_canary.instrumentation._wrappers import Patcher
from otel_prompt_canary.instrumentation.config import InstrumentationConfig
from otel_prompt_canary.instrumentation.instruments import Instruments
from otel_prompt_canary.instrumentation.observers import LISTENERS
from otel_prompt_canary.routing.control_plane import is_remote
from otel_prompt_canary.routing.control_planes import ControlPlane
from otel_prompt_canary.scoring import BoundedLRU, ScoringSettings

__all__ = ["Installation", "install"]

logger = logging.getLogger("otel_prompt_canary.instrumentation")

# The span processor added to each tracer provider, reused when instrumenting again (a provider has
# no way to remove a processor: adding one per instrument() would lengthen every span's path).
_PROCESSORS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


@dataclass
class Installation:
    """Everything one ``instrument()`` set up, so that ``uninstrument()`` undoes exactly that."""

    runtime: Runtime
    patcher: Patcher
    scoring: Scoring
    processor: Any = None
    closers: tuple[Callable[[], object], ...] = ()

    def remove(self) -> None:
        """Unpatch, stop the processor, close background work. Never raises."""
        self.runtime.enabled = False
        self.patcher.unpatch_all()
        if self.processor is not None:
            self.processor.enabled = False
        for close in (*self.closers, self.scoring.close):
            try:
                close()
            except Exception:
                logger.warning("could not close part of the instrumentation", exc_info=True)


def install(
    config: InstrumentationConfig,
    *,
    scope: str,
    version: str,
    tracer_provider: Any,
    meter_provider: Any,
    logger_provider: Any,
    router: Any,
    extra_checks: Sequence[Any],
    extra_scorers: Sequence[Any],
    library_problem: Callable[[str], str | None],
) -> Installation:
    """Set the instrumentation up as ``config`` says and patch the libraries that are present."""
    from otel_prompt_canary.routing import current_selection

    tracer = trace.get_tracer(scope, version, tracer_provider=tracer_provider)
    meter = get_meter(scope, version, meter_provider=meter_provider)
    event_logger = get_logger(scope, version, logger_provider=logger_provider)
    runtime_box: list[Runtime] = []

    def on_late_result(response: Any, outcome: Any) -> None:
        if runtime_box:
            runtime_box[0].late_result(response, outcome)

    try:
        settings = settings_of(config)
    except Exception as exc:
        logger.error("invalid scoring settings (%s); using the defaults", exc)
        settings = ScoringSettings()
    scoring = Scoring(
        settings, on_late_result=on_late_result, extra_checks=extra_checks, extra_scorers=extra_scorers
    )
    closers: list[Callable[[], object]] = []
    identify = None
    tags = TagsCache(config.mirrors)
    if config.fingerprint and (router is not None or config.registry):
        from otel_prompt_canary.instrumentation._fingerprint import build_identifier

        built = build_identifier(config, router, tags)
        if built is not None:
            identify, close = built
            closers.append(close)
    tally, reporter = _reporting(config, meter)
    if reporter is not None:
        closers.append(reporter.close)
    runtime = Runtime(
        config=config,
        tracer=tracer,
        scope=scope,
        instruments=Instruments.create(meter),
        event_logger=event_logger,
        plan_for=scoring.plan_for,
        current_selection=current_selection,
        identify=identify,
        listeners=LISTENERS,
        feedback=BoundedLRU(config.feedback_capacity) if config.feedback_capacity > 0 else None,
        tags=tags,
        tally=tally,
        reporter=reporter,
    )
    runtime_box.append(runtime)
    processor = _add_processor(runtime, tracer_provider)
    patcher = Patcher()
    for library in ("openai", "anthropic", "httpx", "requests"):
        if library not in config.libraries:
            continue
        _patch_library(library, runtime, patcher, library_problem)
    return Installation(runtime, patcher, scoring, processor, tuple(closers))


def _reporting(config: InstrumentationConfig, meter: Meter) -> tuple[Tally | None, Reporter | None]:
    """In-app reports as ``config`` asks (None, None: off); never raises."""
    if config.report_interval <= 0:
        return None, None
    try:
        default = None
        if config.registry and is_remote(config.registry):
            default = ControlPlane(config.registry.rstrip("/"), token=config.registry_token)
        interval = config.report_interval
        tally = Tally(window_seconds=window_of(interval), max_series=DEFAULT_MAX_SERIES)
        reporter = Reporter(
            tally, interval=interval, meter=meter, default_plane=default, token=config.registry_token
        )
        return tally, reporter
    except Exception:
        logger.warning("in-app reports are off: they could not be set up", exc_info=True)
        return None, None


def _add_processor(runtime: Runtime, tracer_provider: Any) -> Any:
    provider: Any = tracer_provider if tracer_provider is not None else trace.get_tracer_provider()
    if not callable(getattr(provider, "add_span_processor", None)):
        logger.info(
            "the tracer provider takes no span processor: other instrumentations' spans are not tagged"
        )
        return None
    from otel_prompt_canary.instrumentation._processor import PromptSpanProcessor

    try:
        existing = _PROCESSORS.get(provider)
    except TypeError:  # a provider that cannot be weakly referenced: add a processor each time
        existing = None
    if isinstance(existing, PromptSpanProcessor) and not existing.enabled:
        existing.rebind(runtime)
        return existing
    processor = PromptSpanProcessor(runtime)
    provider.add_span_processor(processor)
    with contextlib.suppress(TypeError):  # not weakly referenceable: the next call adds another
        _PROCESSORS[provider] = processor
    return processor


def _patch_library(
    library: str, runtime: Runtime, patcher: Patcher, library_problem: Callable[[str], str | None]
) -> None:
    try:
        if library == "httpx":
            from otel_prompt_canary.instrumentation import patch_httpx

            patched = [key for key in ("httpx", "httpx2") if _usable(key, library_problem)]
            if patched:
                patch_httpx.patch(runtime, patcher, patched)
            return
        if not _usable(library, library_problem):
            return
        if library == "openai":
            from otel_prompt_canary.instrumentation import patch_openai

            patch_openai.patch(runtime, patcher)
        elif library == "anthropic":
            from otel_prompt_canary.instrumentation import patch_anthropic

            patch_anthropic.patch(runtime, patcher)
        elif library == "requests":
            from otel_prompt_canary.instrumentation import patch_requests

            patch_requests.patch(runtime, patcher)
    except Exception:
        logger.warning("could not patch %s; it is left uninstrumented", library, exc_info=True)


def _usable(key: str, library_problem: Callable[[str], str | None]) -> bool:
    problem = library_problem(key)
    if problem is not None:
        # A library the application does not use is no news; one in an unsupported version is.
        level = logging.DEBUG if problem.endswith("is not installed") else logging.INFO
        logger.log(level, "not instrumenting %s: %s", key, problem)
        return False
    return True
