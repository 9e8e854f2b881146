"""``prompt-canary demo``: the whole loop in one process, in about a minute.

What runs, all on loopback and in a temporary folder:

- an SQLite registry holding two versions of a support assistant's prompt: the stable one answers
  compact JSON; the candidate is "friendlier";
- the control plane (``prompt-canary serve``) with its rollout controller, time-scaled so that a
  policy's one-minute steps last a few seconds;
- a simulated LLM speaking the OpenAI API, whose answers under the candidate prompt are longer and, for
  refund and billing questions, sometimes not valid JSON (HTTP 200 all the same);
- an application: worker threads that pick the prompt version with :class:`~otel_prompt_canary.PromptRouter`
  (sticky per user) and call the model through the real ``openai`` SDK, instrumented by
  :class:`~otel_prompt_canary.instrumentation.PromptCanaryInstrumentor`, whose checks feed the
  controller's judge in process.

It prints a live view (ramp step, canary weight, per-cohort signals with sample counts) until the
controller rolls the canary back (or, with ``healthy``, promotes it), then a short report, and writes
an HTML report with charts of canary against stable over time and the decision with its evidence.

With ``drift``, the candidate is healthy and promoted; then the simulated provider changes its model
behind the same name, and the control plane's drift monitor, judging the promoted version's live
reports against its own baseline, catches it (:mod:`otel_prompt_canary.demo.drift_phase`): the report
says when and on which signal.
"""

from __future__ import annotations

import contextlib
import random
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from otel_prompt_canary.demo.drift_phase import DEMO_DRIFT, DriftPhase, RecentSignals
from otel_prompt_canary.demo.report import CohortPoint, DemoRecord, Tick, Transition, render_html, render_text
from otel_prompt_canary.names import CHECK_PREFIX, SCORE_PREFIX

__all__ = ["DEMO_POLICY", "REQUIRED_MODULES", "DemoResult", "missing_modules", "run_demo"]

#: What :func:`run_demo` imports beyond the package's own dependencies: the ``demo`` extra.
REQUIRED_MODULES = ("openai", "fastapi", "uvicorn", "opentelemetry.sdk")


def missing_modules() -> list[str]:
    """The modules of :data:`REQUIRED_MODULES` that cannot be imported here (the extra is missing)."""
    import importlib.util

    missing = []
    for name in REQUIRED_MODULES:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):  # a parent package missing, or a module blocked
            found = False
        if not found:
            missing.append(name)
    return missing


PROMPT = "support-bot"

STABLE_SYSTEM = (
    "You are the support assistant of Acme. Reply with compact JSON only: "
    '{"topic": "refund|billing|shipping|account|other", "answer": "<one sentence>", "escalate": false}'
)
CANARY_SYSTEM = (
    "You are the warm and friendly support assistant of Acme. Explain every answer fully and kindly, "
    'and reply as JSON: {"topic": "refund|billing|shipping|account|other", "answer": "...", '
    '"escalate": false}'
)

QUESTIONS: dict[str, tuple[str, ...]] = {
    "refund": ("Can I get a refund for order {n}?", "How long does a refund take?"),
    "billing": ("Why was I charged twice on invoice {n}?", "Can I change my billing address?"),
    "shipping": ("Where is my package {n}?", "Do you ship to Canada?"),
    "account": ("I forgot my password.", "How do I change the email of my account?"),
    "other": ("Do you have a store in Lyon?", "Who founded Acme?"),
}

#: The demo's canary policy: the default policy's JSON rule. Output tokens are shown, not ruled on: a
#: proven rule, even an ``alert``, holds the ramp for a person. Steps last a minute of policy time, a
#: few seconds at the demo's time scale.
DEMO_POLICY: dict[str, Any] = {
    "alpha": 0.05,
    "ramp": {"steps": [5, 20, 50, 100], "min_duration_seconds": 60, "min_samples": 40},
    "signals": [{"name": "json_valid", "kind": "proportion", "harmful": "decrease"}],
    "rules": [
        {"signal": "json_valid", "type": "relative", "margin": 0.01, "action": "rollback", "critical": True},
    ],
    "statistics": {"target_samples": 300, "warmup_samples": 30},
}

_JSON_VALID = CHECK_PREFIX + "json_valid"
_OUTPUT_TOKENS = SCORE_PREFIX + "output_tokens"
_LABELS = {_JSON_VALID: "JSON valid (check)", _OUTPUT_TOKENS: "output tokens (score)"}
_SIGNALS = tuple(_LABELS)


@dataclass(slots=True)
class _Counters:
    """Per-cohort running totals of the demo's two signals, for the live view and the report."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    calls: int = 0
    errors: int = 0
    totals: dict[tuple[str, str], list[float]] = field(default_factory=dict)  # -> [n, sum]

    def add(self, cohort: str, attribute: str, value: float) -> None:
        entry = self.totals.setdefault((cohort, attribute), [0, 0.0])
        entry[0] += 1
        entry[1] += value

    def points(self, cohort: str) -> dict[str, CohortPoint]:
        out = {}
        for attribute in _SIGNALS:
            n, total = self.totals.get((cohort, attribute), (0, 0.0))
            out[attribute] = CohortPoint(int(n), total / n if n else None)
        return out


@dataclass(frozen=True, slots=True)
class DemoResult:
    """How the demo ended: the record behind the report, and where the HTML report is."""

    record: DemoRecord
    report_path: Path

    @property
    def outcome(self) -> str:
        """``rolled_back``, ``promoted``, ``paused`` or ``timeout``."""
        return self.record.outcome


def _question(rng: random.Random) -> str:
    topic = rng.choice(tuple(QUESTIONS))
    return rng.choice(QUESTIONS[topic]).format(n=rng.randrange(1000, 9999))


def run_demo(
    *,
    healthy: bool = False,
    drift: bool = False,
    report_path: Path | None = None,
    out: TextIO | None = None,
    time_scale: float = 6.0,
    calls_per_second: float = 80.0,
    workers: int = 6,
    max_seconds: float | None = None,
    seed: int = 7,
) -> DemoResult:
    """Run the demo (see the module docstring) and return how it ended.

    ``healthy`` makes the candidate as good as the stable prompt, so the rollout walks the ramp to
    promotion; ``drift`` goes on after that promotion until drift monitoring catches the provider's
    model change (outcome ``drift_detected``). ``report_path`` is where the HTML report goes (default
    ``.prompt-canary/demo-report.html``). Needs the ``server`` and ``openai`` extras.
    """
    import sys

    import openai
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider

    from otel_prompt_canary.demo import demo_behaviour, running_simulated_llm
    from otel_prompt_canary.instrumentation import (
        InstrumentationConfig,
        Observation,
        PromptCanaryInstrumentor,
        add_observation_listener,
        remove_observation_listener,
    )
    from otel_prompt_canary.loop import start_rollout
    from otel_prompt_canary.registry import PromptSpec, open_store
    from otel_prompt_canary.routing import PromptRouter
    from otel_prompt_canary.service.server import build_server
    from otel_prompt_canary.service.settings import ServiceSettings

    stream = out if out is not None else sys.stdout
    report_path = report_path or Path(".prompt-canary/demo-report.html")
    limit = max_seconds if max_seconds is not None else (240.0 if drift else 150.0)
    behaviour, model = demo_behaviour(
        stable_prompt=STABLE_SYSTEM,
        canary_prompt=CANARY_SYSTEM,
        broken_topics=("refund", "billing"),
        break_rate=0.35,
        healthy=healthy or drift,
        seed=seed,
    )
    counters = _Counters()
    live = RecentSignals()
    phase: DriftPhase | None = None

    with tempfile.TemporaryDirectory(prefix="prompt-canary-demo-") as tmp:
        registry = open_store(Path(tmp) / "registry.db")
        user = [{"role": "user", "content": "{{ question }}"}]
        for system, message in ((STABLE_SYSTEM, "Support assistant"), (CANARY_SYSTEM, "Friendlier tone")):
            registry.push(
                PromptSpec.model_validate(
                    {
                        "name": PROMPT,
                        "messages": [{"role": "system", "content": system}, *user],
                        "model": "sim-support-1",
                        "config": {"temperature": 0.2},
                        "commit_message": message,
                    }
                ),
                author="demo",
            )
        settings = ServiceSettings(
            insecure_dev=True,
            time_scale=time_scale,
            controller_interval_seconds=0.25,
            drift=DEMO_DRIFT if drift else "off",
            drift_interval_seconds=0.5,
        )
        server = build_server(registry, settings, port=0, log_level="warning")
        server_thread = threading.Thread(target=server.run, name="demo-control-plane", daemon=True)
        server_thread.start()
        tracer_provider, meter_provider = TracerProvider(), MeterProvider()
        instrumentor = PromptCanaryInstrumentor()
        stop = threading.Event()
        listener: Callable[[Observation], None] | None = None
        try:
            _wait_started(server, server_thread)
            base_url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
            controller = server.config.app.state.controller  # type: ignore[union-attr]
            with (
                running_simulated_llm(behaviour) as llm,
                PromptRouter(registry=base_url, initial_timeout=5.0) as router,
            ):
                instrumentor.instrument(
                    tracer_provider=tracer_provider,
                    meter_provider=meter_provider,
                    # The default checks plus the output_tokens score (off by default), which the
                    # live view and the report show beside JSON validity.
                    config=InstrumentationConfig(
                        fingerprint=False,
                        libraries=frozenset({"openai"}),
                        checks=("json_valid", "max_output_tokens", "truncation", "refusal", "output_tokens"),
                        # Without drift, the calls reach the controller in process (below), so no
                        # in-app reports: they would count every call a second time. With drift, the
                        # in-app reports, every second, are how the calls reach the controller and,
                        # after the promotion, the drift monitor.
                        report_interval=1.0 if drift else 0.0,
                    ),
                )

                def on_observation(obs: Observation) -> None:
                    if drift and obs.rollout_id is None and obs.cohort == "stable" and not obs.late:
                        _count_live(obs, live, counters)  # after the promotion: live traffic
                    if obs.rollout_id is None or obs.cohort is None or obs.late:
                        return
                    with counters.lock:
                        counters.calls += 1
                        if obs.error_type is not None:
                            counters.errors += 1
                        for check in obs.results.checks:
                            if check.passed is not None and check.name == "json_valid":
                                if not drift:
                                    controller.observe(obs.rollout_id, obs.cohort, check.name, check.passed)
                                counters.add(obs.cohort, _JSON_VALID, float(check.passed))
                        for score in obs.results.scores:
                            if score.value is not None and score.name == "output_tokens":
                                if not drift:
                                    controller.observe(
                                        obs.rollout_id, obs.cohort, score.name, float(score.value)
                                    )
                                counters.add(obs.cohort, _OUTPUT_TOKENS, score.value)

                listener = on_observation
                add_observation_listener(listener)
                client = openai.OpenAI(base_url=llm.base_url, api_key="demo", max_retries=0)
                route = start_rollout(
                    registry,
                    PROMPT,
                    2,
                    policy=DEMO_POLICY,
                    actor="demo",
                    reason="canary of the friendlier tone",
                )
                assert route.rollout_id is not None
                record = DemoRecord(
                    prompt=PROMPT,
                    stable_version=route.stable_version,
                    canary_version=2,
                    rollout_id=route.rollout_id,
                    scenario=(
                        "clean promotion, then the provider changes its model"
                        if drift
                        else "healthy candidate"
                        if healthy
                        else "candidate breaks JSON for billing/refunds"
                    ),
                    signal_labels=dict(_LABELS),
                )
                started = time.time()
                threads = [
                    threading.Thread(
                        target=_traffic,
                        args=(
                            router,
                            client,
                            stop,
                            random.Random(seed * 1000 + i),
                            calls_per_second / workers,
                        ),
                        name=f"demo-user-{i}",
                        daemon=True,
                    )
                    for i in range(workers)
                ]
                for th in threads:
                    th.start()
                view = _LiveView(stream)
                ended_at: float | None = None
                while True:
                    time.sleep(0.5)
                    now = time.time() - started
                    current = registry.get_route(PROMPT)
                    with counters.lock:
                        tick = Tick(
                            t=now,
                            state=current.state.value,
                            step=current.step,
                            canary_percent=current.canary_percent,
                            stable=live.points() if phase is not None else counters.points("stable"),
                            canary={} if phase is not None else counters.points("canary"),
                        )
                        record.calls = counters.calls
                    record.ticks.append(tick)
                    if phase is not None:
                        phase.step(now)
                    view.show(tick, current.ramp, record, [] if phase is None else phase.view_lines())
                    if not current.state.active and ended_at is None:
                        ended_at = now
                        record.outcome = current.state.value
                        if drift and current.state.value == "promoted":
                            monitor = server.config.app.state.drift_monitor  # type: ignore[union-attr]
                            phase = DriftPhase(monitor, model, record, PROMPT, current.stable_version)
                    if phase is not None and phase.done:
                        record.outcome = "drift_detected"
                        break
                    if phase is None and ended_at is not None and now - ended_at >= 1.0:
                        break
                    if now > limit:
                        record.outcome = "paused" if current.state.value == "paused" else "timeout"
                        break
                stop.set()
                for th in threads:
                    th.join(timeout=10)
                view.done()
                for audit in registry.history(PROMPT):
                    record.transitions.append(
                        Transition(
                            t=max(0.0, _epoch(audit.at) - started),
                            action=audit.action.value,
                            actor=audit.actor,
                            reason=audit.reason,
                            evidence=audit.evidence,
                        )
                    )
        finally:
            stop.set()
            if listener is not None:
                remove_observation_listener(listener)
            if instrumentor.is_instrumented_by_opentelemetry:
                instrumentor.uninstrument()
            server.stop()
            server_thread.join(timeout=10)
            tracer_provider.shutdown()
            meter_provider.shutdown()
            registry.close()

    report_path.parent.mkdir(parents=True, exist_ok=True)
    report_path.write_text(render_html(record), encoding="utf-8")
    stream.write("\n" + render_text(record) + f"\n\nHTML report: {report_path}\n")
    stream.flush()
    return DemoResult(record=record, report_path=report_path)


def _count_live(obs: Any, live: RecentSignals, counters: _Counters) -> None:
    """A call of the promoted version with no rollout: the live view's moving values, and the count."""
    with counters.lock:
        counters.calls += 1
    for check in obs.results.checks:
        if check.passed is not None and check.name == "json_valid":
            live.add(_JSON_VALID, float(check.passed))
    for score in obs.results.scores:
        if score.value is not None and score.name == "output_tokens":
            live.add(_OUTPUT_TOKENS, float(score.value))


def _epoch(at: datetime) -> float:
    return at.timestamp()


def _wait_started(server: Any, thread: threading.Thread, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the demo's control plane did not start")
        time.sleep(0.02)


def _traffic(router: Any, client: Any, stop: threading.Event, rng: random.Random, rate: float) -> None:
    """One worker: paced calls from random users, each routed, rendered and sent through the SDK."""
    interval = 1.0 / rate
    next_call = time.monotonic()
    while not stop.is_set():
        user = f"user-{rng.randrange(5000)}"
        # The traffic outlives a failed call, as an application would (the observation counts it).
        with router.select(PROMPT, unit_key=user) as selection, contextlib.suppress(Exception):
            client.chat.completions.create(
                model=selection.model or "sim-support-1",
                messages=selection.render(question=_question(rng)),
                response_format={"type": "json_object"},
            )
        next_call += interval
        delay = next_call - time.monotonic()
        if delay > 0:
            stop.wait(delay)
        else:
            next_call = time.monotonic()


class _LiveView:
    """Redraws a small status block in a terminal; prints a line every few seconds otherwise."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._tty = bool(getattr(stream, "isatty", lambda: False)())
        self._lines = 0
        self._last_print = -10.0

    def show(
        self, tick: Tick, ramp: tuple[float, ...], record: DemoRecord, extra: list[str] | None = None
    ) -> None:
        steps = " ".join(f"[{s:g}%]" if i == tick.step else f"{s:g}%" for i, s in enumerate(ramp))
        head = (
            f"{tick.t:5.1f}s  {tick.state:<11} ramp {steps}  canary weight {tick.canary_percent:g}%  "
            f"calls {record.calls}"
        )
        rows = [head, f"        {'signal':<24} {'stable':>18} {'canary':>18}"]
        for attribute in _SIGNALS:
            cells = []
            for points in (tick.stable, tick.canary):
                p = points.get(attribute)
                if p is None or p.estimate is None:
                    cells.append("-")
                elif attribute.endswith("json_valid"):
                    cells.append(f"{p.estimate:.1%} (n={p.n})")
                else:
                    cells.append(f"{p.estimate:.1f} (n={p.n})")
            rows.append(f"        {record.label(attribute):<24} {cells[0]:>18} {cells[1]:>18}")
        rows += extra or []
        if self._tty:
            if self._lines:
                self._stream.write(f"\x1b[{self._lines}F\x1b[J")
            self._stream.write("\n".join(rows) + "\n")
            self._lines = len(rows)
        elif tick.t - self._last_print >= 3.0:
            self._stream.write("\n".join(rows) + "\n")
            self._last_print = tick.t
        self._stream.flush()

    def done(self) -> None:
        self._stream.flush()
