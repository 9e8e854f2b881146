"""Probes: golden-set evaluations of each prompt's live stable version, on a schedule.

A provider may change the model behind a name, and a prompt with little traffic shows it late. A
probe runs a dataset through the stable version every interval, whatever the traffic, and stores
the run (source ``probe``); each run is compared case by case with the version's baseline run
(:mod:`~otel_prompt_canary.evals.baselines`), and a signal proven worse is logged as an error on
the ``otel_prompt_canary.evals`` logger, naming the cases::

    prompt-canary serve --probes "support-bot=support-golden@1h,faq-bot=faq-golden@6h"

The same run from cron or a Kubernetes CronJob is ``prompt-canary eval run NAME stable --dataset D
--probe`` (docs/evaluations.md). :func:`parse_probes` reads the ``--probes`` text;
:class:`Prober` runs them in a background thread of the control plane.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Final

from opentelemetry.trace import TracerProvider
from pydantic import AfterValidator

from otel_prompt_canary.analysis.policy import parse_duration
from otel_prompt_canary.errors import InvalidInputError
from otel_prompt_canary.evals.baselines import baseline_run
from otel_prompt_canary.evals.comparison import RunComparison, compare_runs
from otel_prompt_canary.evals.datasets import validate_dataset_name
from otel_prompt_canary.evals.results import EvalRun
from otel_prompt_canary.evals.runner import EvalSettings, run_evaluation
from otel_prompt_canary.evals.store import SqlEvalStore
from otel_prompt_canary.registry.models import validate_prompt_name
from otel_prompt_canary.registry.sql import SqlRegistry

__all__ = ["MIN_PROBE_SECONDS", "Probe", "Prober", "ProbesText", "parse_probes"]

logger = logging.getLogger("otel_prompt_canary.evals")

#: The shortest interval between two runs of a probe.
MIN_PROBE_SECONDS: Final = 1.0
#: A signal whose one-sided paired test is below this level is logged as a regression.
REGRESSION_LEVEL: Final = 0.05
_ACTOR: Final = "probe"


@dataclass(frozen=True, slots=True)
class Probe:
    """Run ``dataset`` through the live stable version of ``prompt`` every ``every_seconds``."""

    prompt: str
    dataset: str
    every_seconds: float

    def __str__(self) -> str:
        return f"{self.prompt}={self.dataset}@{self.every_seconds:g}s"


def parse_probes(text: str) -> tuple[Probe, ...]:
    """``PROMPT=DATASET@INTERVAL,...`` (``support-bot=support-golden@1h``); the interval is
    seconds or a duration such as ``30m`` or ``6h``. Empty text: no probe."""
    probes: list[Probe] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        prompt, equal, rest = part.partition("=")
        dataset, at, every = rest.rpartition("@")
        if not equal or not at:
            raise InvalidInputError(
                f"invalid probe {part!r}: write PROMPT=DATASET@INTERVAL, e.g. support-bot=support-golden@1h"
            )
        seconds = float(every) if every.replace(".", "", 1).isdigit() else parse_duration(every)
        if seconds is None or not seconds >= MIN_PROBE_SECONDS:
            raise InvalidInputError(
                f"invalid probe interval {every!r} in {part!r}: give seconds or a duration such as 30m "
                f"or 6h, at least {MIN_PROBE_SECONDS:g} s"
            )
        probes.append(
            Probe(validate_prompt_name(prompt.strip()), validate_dataset_name(dataset.strip()), seconds)
        )
    if len({(p.prompt, p.dataset) for p in probes}) != len(probes):
        raise InvalidInputError("a prompt and dataset are probed once: remove the repeated probe")
    return tuple(probes)


def _checked(text: str) -> str:
    try:
        parse_probes(text)
    except InvalidInputError as exc:
        raise ValueError(str(exc)) from None
    return text.strip()


#: Probes as a setting holds them: text, checked when the setting is read.
ProbesText = Annotated[str, AfterValidator(_checked)]


class Prober:
    """Runs probes on the registry's live stable versions, each at its interval, in one thread.

    ``settings`` gives the evaluation settings of a prompt (by default those the environment
    gives, :func:`~otel_prompt_canary.evals.environment.eval_settings`); they are read when the
    prober is made, so that a bad configuration stops the control plane at start.
    """

    def __init__(
        self,
        registry: SqlRegistry,
        probes: tuple[Probe, ...],
        *,
        settings: Callable[[str], EvalSettings] | None = None,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        if settings is None:
            from otel_prompt_canary.evals.environment import eval_settings

            settings = eval_settings
        self.registry = registry
        self.store = SqlEvalStore(registry)
        self.probes = probes
        self._settings = {probe.prompt: settings(probe.prompt) for probe in probes}
        self._tracer_provider = tracer_provider
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"Prober({', '.join(str(p) for p in self.probes)})"

    def run_probe(self, probe: Probe) -> tuple[EvalRun, RunComparison | None]:
        """Evaluate the live stable version of ``probe.prompt`` now: the stored run, and its
        comparison with the version's baseline run (None for its first run)."""
        route = self.registry.get_route(probe.prompt)
        version = self.registry.get_version(probe.prompt, route.stable_version)
        dataset = self.store.get_dataset(probe.prompt, probe.dataset)
        run = run_evaluation(
            version,
            dataset,
            self._settings[probe.prompt],
            actor=_ACTOR,
            source="probe",
            tracer_provider=self._tracer_provider,
        )
        self.store.record_run(run)
        baseline = baseline_run(self.store, version, dataset, stable_version=route.stable_version)
        comparison = None
        if baseline is not None and baseline.run_id != run.run_id:
            comparison = compare_runs(baseline, run)
        _log(run, comparison)
        return run, comparison

    def start(self) -> None:
        """Run the probes in a background thread: each one at once, then at its interval."""
        if self._thread is not None or not self.probes:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="eval-probes", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the thread (a run under way finishes its calls first)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        due = {probe: time.monotonic() for probe in self.probes}
        while not self._stop.is_set():
            probe = min(due, key=due.__getitem__)
            if self._stop.wait(max(0.0, due[probe] - time.monotonic())):
                return
            try:
                self.run_probe(probe)
            except Exception:
                # A probe that cannot run (a dataset removed, the endpoint down at the start) says
                # so and runs again at its next interval; it never stops the control plane.
                logger.exception("probe %s could not run", probe)
            due[probe] = time.monotonic() + probe.every_seconds


def _log(run: EvalRun, comparison: RunComparison | None) -> None:
    totals = run.totals
    logger.info(
        "probe %s: %s, %d/%d cases passed (run %s)",
        run.ref,
        run.status,
        totals.passed,
        totals.cases,
        run.run_id,
    )
    if run.status != "complete":
        logger.warning("probe %s is incomplete: %s", run.ref, run.note)
    if comparison is None:
        return
    for signal in comparison.signals:
        if signal.candidate < signal.baseline and signal.p_value < REGRESSION_LEVEL:
            logger.error(
                "probe %s: %s fell from %.3g to %.3g against run %s (one-sided %s p=%.3g); cases that got "
                "worse: %s",
                run.ref,
                signal.signal,
                signal.baseline,
                signal.candidate,
                comparison.baseline.run_id,
                signal.test,
                signal.p_value,
                ", ".join(signal.worse_cases) or "-",
            )
