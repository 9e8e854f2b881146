"""The rollout controller: judges every active rollout on its reported statistics, and moves it.

Every ``interval_seconds`` the controller reads the routing flags and, for each active rollout
(``ramping`` or ``paused``), applies its policy's judge (:class:`otel_prompt_canary.analysis.Judge`)
to the statistics reported so far (``POST /v1/reports``, or :meth:`RolloutController.observe` in
process):

- a rule proven with action ``rollback``: roll back (from ``ramping`` or ``paused``);
- a rule proven with action ``pause``: pause a ``ramping`` rollout;
- a rule proven with action ``alert``: recorded in the alert log, once per rule;
- no rule in breach and the step ready (its minimum duration and samples reached): advance, or
  promote at the last step (only from ``ramping``: a paused rollout waits for a person).

A person who resumes a rollout the controller paused acknowledges the rules that paused it: from
then on those rules count as ``alert`` for that rollout (recorded, no pause), while a rule that
rolls back still does. The step stays unready while any rule is proven, so an acknowledged
regression is advanced past by a person, never by the controller.

Every transition has actor ``controller``, a reason in words and the verdict as evidence, and is a
compare-and-set on the revision the verdict was computed for: if anything moved the flag meanwhile
(a person, an alert, another replica's controller), the transition is dropped and the next tick
judges again. Several replicas may therefore each run a controller.

``time_scale`` makes policy durations pass faster: with 60, a step whose policy asks for 60 s is
ready after 1 s of real time (tests and demos). The controller needs no HTTP stack: a single process
(the demo) can run it next to an :class:`~otel_prompt_canary.registry.sql.SqlRegistry` and feed it
observations directly with :meth:`~RolloutController.observe`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from pydantic import JsonValue

from otel_prompt_canary.analysis.judge import Judge
from otel_prompt_canary.analysis.policy import Policy, RuleAction
from otel_prompt_canary.analysis.stats import (
    MeanStats,
    ProportionStats,
    Report,
    quantize,
    window_start,
)
from otel_prompt_canary.analysis.verdict import RuleStatus, RuleVerdict, Verdict
from otel_prompt_canary.errors import ConflictError, InvalidInputError, NotFoundError, PromptCanaryError
from otel_prompt_canary.registry.alerts import AlertAction, AlertNotice
from otel_prompt_canary.registry.base import LoopStore, Registry
from otel_prompt_canary.registry.models import Action, AuditRecord, Rollout, RolloutState, Route
from otel_prompt_canary.service.rollout_policy import policy_of, step_started_at

__all__ = [
    "CHECK_PREFIX",
    "SCORE_PREFIX",
    "Assessment",
    "ControllerStore",
    "Decision",
    "RolloutController",
    "assess",
    "attribute_of",
]

log = logging.getLogger("otel_prompt_canary.service.controller")

CHECK_PREFIX = "prompt_canary.check."
SCORE_PREFIX = "prompt_canary.score."
ACTOR = "controller"
# How much of a prompt's audit trail one judgement reads (pauses and resumes of the rollout).
_RECENT_AUDIT = 256


class ControllerStore(Registry, LoopStore, Protocol):
    """A registry that also stores alerts and reports (:class:`~.registry.sql.SqlRegistry`)."""


@dataclass(frozen=True, slots=True)
class Assessment:
    """A rollout judged at one moment: its route, policy, step timing and the verdict."""

    route: Route
    rollout: Rollout
    policy: Policy
    step_started_at: datetime
    elapsed_seconds: float
    time_scale: float
    verdict: Verdict
    acknowledged: frozenset[str]

    def evidence(self) -> dict[str, JsonValue]:
        """What a transition records as its evidence: the verdict and how it was reached."""
        return {
            "verdict": self.verdict.model_dump(mode="json"),
            "step_started_at": self.step_started_at.isoformat(),
            "elapsed_seconds": self.elapsed_seconds,
            "time_scale": self.time_scale,
            "acknowledged_rules": list[JsonValue](sorted(self.acknowledged)),
        }


@dataclass(frozen=True, slots=True)
class Decision:
    """What one tick did to one rollout."""

    prompt: str
    rollout_id: str
    action: Action | None
    applied: bool
    reason: str
    route: Route | None = None


def attribute_of(signal: str, value: bool | float) -> str:
    """The span attribute a signal's sample counts under: a bool is a check, a number a score."""
    if signal.startswith(("prompt_canary.", "gen_ai.")):
        return signal
    return (CHECK_PREFIX if isinstance(value, bool) else SCORE_PREFIX) + signal


def _acknowledged(records: Iterable[AuditRecord], route: Route) -> frozenset[str]:
    """Rules whose pause by the controller a person acknowledged by resuming the rollout."""
    paused: set[str] = set()
    acknowledged: set[str] = set()
    for record in records:
        if record.rollout_id != route.rollout_id:
            continue
        if record.action is Action.PAUSE and record.actor == ACTOR and isinstance(record.evidence, dict):
            verdict = record.evidence.get("verdict")
            breached = verdict.get("breached") if isinstance(verdict, dict) else None
            if isinstance(breached, list):
                paused.update(str(rule) for rule in breached)
        elif record.action is Action.RESUME:
            acknowledged |= paused
            paused = set()
    return frozenset(acknowledged)


def assess(
    store: ControllerStore, route: Route, *, time_scale: float = 1.0, now: float | None = None
) -> Assessment:
    """Judge the active rollout of ``route`` now, on everything reported for it.

    Raises :class:`~otel_prompt_canary.errors.InvalidInputError` when its policy cannot be applied
    (a stored policy that cannot be decided, or statistics of the wrong kind for a signal).
    """
    if route.rollout_id is None or not route.state.active:
        raise NotFoundError(f"prompt {route.prompt!r} has no active rollout")
    rollout = store.get_rollout(route.prompt, route.rollout_id)
    policy = policy_of(rollout)
    # One read of the recent audit trail serves both the step's start and the acknowledged rules.
    recent = store.history(route.prompt, limit=_RECENT_AUDIT)
    started = step_started_at(store, route, recent, _RECENT_AUDIT)
    current = time.time() if now is None else now
    since = started.timestamp()
    # Summed by the store, in one read: the cost of a tick does not grow with the rollout's age.
    evidence, in_step = store.rollout_evidence(route.rollout_id, since=since)
    elapsed = max(0.0, current - since) * time_scale
    verdict = Judge(policy).evaluate(
        evidence, step=route.step, elapsed_seconds=elapsed, step_evidence=in_step
    )
    return Assessment(
        route=route,
        rollout=rollout,
        policy=policy,
        step_started_at=started,
        elapsed_seconds=elapsed,
        time_scale=time_scale,
        verdict=verdict,
        acknowledged=_acknowledged(recent, route),
    )


def _effective(rule: RuleVerdict, acknowledged: frozenset[str]) -> RuleAction:
    if rule.action is RuleAction.PAUSE and rule.rule_id in acknowledged:
        return RuleAction.ALERT
    return rule.action


class RolloutController:
    """Judges and moves every active rollout of a store; see the module docstring.

    ``store`` is an :class:`~otel_prompt_canary.registry.sql.SqlRegistry` (a registry that also
    stores alerts and reports). Start the background thread with :meth:`start` (or use the
    controller as a context manager), or call :meth:`tick` yourself. ``on_change`` is called with
    the new route after each transition the controller applies. ``window_seconds`` is the window
    size of the statistics :meth:`observe` records.
    """

    def __init__(
        self,
        store: ControllerStore,
        *,
        interval_seconds: float = 1.0,
        time_scale: float = 1.0,
        window_seconds: int = 1,
        on_change: Callable[[Route], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if interval_seconds <= 0:
            raise InvalidInputError(f"interval_seconds must be positive, got {interval_seconds}")
        if time_scale <= 0:
            raise InvalidInputError(f"time_scale must be positive, got {time_scale}")
        if window_seconds < 1:
            raise InvalidInputError(f"window_seconds must be at least 1, got {window_seconds}")
        self._store = store
        self.interval_seconds = interval_seconds
        self.time_scale = time_scale
        self.window_seconds = window_seconds
        self._on_change = on_change
        self._clock = clock
        self._lock = threading.Lock()
        # (rollout, cohort, attribute, window start) -> [kind is mean, n, successes or sum, sum_sq]
        self._pending: dict[tuple[str, str, str, int], list[int]] = {}
        self._recorded: set[str] = set()
        self._warned: set[str] = set()
        self._assessments: dict[str, Assessment] = {}
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return (
            f"RolloutController(every {self.interval_seconds:g} s, time scale {self.time_scale:g}, {state})"
        )

    # -- feeding it in process ----------------------------------------------------------------

    def observe(
        self, rollout_id: str, cohort: str, signal: str, value: bool | float, *, at: float | None = None
    ) -> None:
        """Count one sample: ``value`` of ``signal`` in ``cohort`` (``stable`` or ``canary``).

        A bool is a check (``json_valid`` counts under ``prompt_canary.check.json_valid``), a number
        a score (``prompt_canary.score.<signal>``); a full attribute name is taken as is. Samples
        are stored at the next tick (or :meth:`flush`), exactly as a report would add them.
        """
        if cohort not in ("stable", "canary"):
            raise InvalidInputError(f"unknown cohort {cohort!r}: use 'stable' or 'canary'")
        attribute = attribute_of(signal, value)
        if attribute.startswith(CHECK_PREFIX) and not isinstance(value, bool):
            raise InvalidInputError(f"{attribute} is a check: its samples are True or False")
        if attribute.startswith(SCORE_PREFIX) and isinstance(value, bool):
            raise InvalidInputError(f"{attribute} is a score: its samples are numbers")
        mean = not isinstance(value, bool)
        q = quantize(value) if mean else int(value)
        start = window_start(self._clock() if at is None else at, self.window_seconds)
        key = (rollout_id, cohort, attribute, start)
        with self._lock:
            entry = self._pending.setdefault(key, [int(mean), 0, 0, 0])
            if entry[0] != int(mean):
                raise InvalidInputError(f"{attribute} mixes checks and scores in rollout {rollout_id}")
            entry[1] += 1
            entry[2] += q
            entry[3] += q * q if mean else 0

    def add_report(self, report: Report, *, prompt: str | None = None, source: str = "in-process") -> None:
        """Add a whole report of statistics (as ``POST /v1/reports`` would, without an id)."""
        self._store.record_report(report, source=source, prompt=prompt)

    def flush(self) -> None:
        """Store the observations counted since the last flush."""
        with self._lock:
            pending, self._pending = self._pending, {}
        reports: dict[str, dict[str, dict[str, dict[int, ProportionStats | MeanStats]]]] = {}
        for (rollout_id, cohort, attribute, start), (mean, n, total, total_sq) in pending.items():
            stats: ProportionStats | MeanStats = (
                MeanStats(n=n, sum=total, sum_sq=total_sq) if mean else ProportionStats(n=n, successes=total)
            )
            cohorts = reports.setdefault(rollout_id, {"stable": {}, "canary": {}})
            cohorts[cohort].setdefault(attribute, {})[start] = stats
        for rollout_id, cohorts in reports.items():
            report = Report(
                rollout_id=rollout_id,
                window_seconds=self.window_seconds,
                stable=cohorts["stable"],
                canary=cohorts["canary"],
            )
            try:
                self._store.record_report(report, source="in-process")
            except PromptCanaryError as exc:
                log.warning("could not store observations of rollout %s: %s", rollout_id, exc)

    # -- judging ----------------------------------------------------------------------------

    def assessment(self, prompt: str) -> Assessment | None:
        """The last assessment of ``prompt``'s active rollout, if the controller made one."""
        return self._assessments.get(prompt)

    def tick(self) -> list[Decision]:
        """Store pending observations, then judge every active rollout once; returns what it did."""
        self.flush()
        decisions: list[Decision] = []
        active = [r for r in self._store.list_routes() if r.state.active and r.rollout_id is not None]
        for prompt in set(self._assessments) - {r.prompt for r in active}:
            del self._assessments[prompt]
        for route in active:
            try:
                decision = self._judge(route)
            except PromptCanaryError as exc:
                self._warn(route, exc)
                continue
            if decision is not None:
                decisions.append(decision)
        return decisions

    def _warn(self, route: Route, exc: Exception) -> None:
        key = f"{route.rollout_id}:{type(exc).__name__}"
        if key not in self._warned:
            self._warned.add(key)
            log.warning("cannot judge rollout %s of %r: %s", route.rollout_id, route.prompt, exc)

    def _judge(self, route: Route) -> Decision | None:
        assessment = assess(self._store, route, time_scale=self.time_scale, now=self._clock())
        self._assessments[route.prompt] = assessment
        verdict = assessment.verdict
        breached = [r for r in verdict.rules if r.status is RuleStatus.BREACH]
        stopping = [r for r in breached if _effective(r, assessment.acknowledged) is not RuleAction.ALERT]
        if stopping:
            deciding = max(stopping, key=lambda r: _effective(r, assessment.acknowledged).severity)
            action = Action.ROLLBACK if deciding.action is RuleAction.ROLLBACK else Action.PAUSE
            if action is Action.PAUSE and route.state is RolloutState.PAUSED:
                return None
            reason = f"rule {deciding.rule_id!r} is {deciding.summary}"
            return self._apply(assessment, action, reason)
        for rule in breached:
            self._record_alert(assessment, rule)
        if verdict.ready and route.state is RolloutState.RAMPING:
            last = route.step + 1 >= len(route.ramp)
            return self._apply(
                assessment, Action.PROMOTE if last else Action.ADVANCE, _ready_reason(assessment)
            )
        return None

    def _apply(self, assessment: Assessment, action: Action, reason: str) -> Decision:
        route = assessment.route
        assert route.rollout_id is not None
        try:
            after = self._store.transition(
                route.prompt,
                action,
                actor=ACTOR,
                reason=reason[:2000],
                evidence=assessment.evidence(),
                expected_revision=route.revision,
                rollout_id=route.rollout_id,
            )
        except ConflictError as exc:
            # The flag moved since the verdict: the next tick judges the new state.
            return Decision(route.prompt, route.rollout_id, action, False, f"not applied: {exc}")
        log.info("%s %s of %r: %s", action, route.rollout_id, route.prompt, reason)
        if self._on_change is not None:
            try:
                self._on_change(after)
            except Exception:  # a listener's failure must not stop the controller
                log.exception("on_change listener failed")
        return Decision(route.prompt, route.rollout_id, action, True, reason, after)

    def _record_alert(self, assessment: Assessment, rule: RuleVerdict) -> None:
        route = assessment.route
        key = f"controller:{route.rollout_id}:{rule.rule_id}"
        if key in self._recorded:
            return
        note = " (its pause was acknowledged by a resume)" if rule.rule_id in assessment.acknowledged else ""
        self._store.receive_alert(
            AlertNotice(
                source="controller",
                key=key,
                prompt=route.prompt,
                action=AlertAction.ALERT,
                rollout_id=route.rollout_id,
                actor=ACTOR,
                reason=f"rule {rule.rule_id!r} is {rule.summary}{note}"[:2000],
                alert={"rule": rule.model_dump(mode="json"), "step": route.step},
            )
        )
        self._recorded.add(key)

    # -- running in the background ----------------------------------------------------------

    @property
    def running(self) -> bool:
        """True while the background thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> RolloutController:
        """Tick every ``interval_seconds`` on a daemon thread until :meth:`stop`."""
        if self.running:
            return self
        self._stopping = False
        self._wake.clear()
        self._thread = threading.Thread(target=self._run, name="prompt-canary-controller", daemon=True)
        self._thread.start()
        return self

    def wake(self) -> None:
        """Tick now instead of at the end of the current interval."""
        self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait(self.interval_seconds)
            self._wake.clear()
            if self._stopping:
                return
            try:
                self.tick()
            except Exception:  # the store is down, say: try again at the next tick
                log.exception("rollout controller tick failed")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the background thread and store pending observations."""
        self._stopping = True
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
        try:
            self.flush()
        except Exception:
            log.exception("could not store the last observations")

    def __enter__(self) -> RolloutController:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _ready_reason(assessment: Assessment) -> str:
    route, verdict, ramp = assessment.route, assessment.verdict, assessment.policy.ramp
    where = f"step {route.step + 1}/{len(route.ramp)} ({verdict.canary_percent:g}%)"
    scaled = f" at time scale {assessment.time_scale:g}" if assessment.time_scale != 1 else ""
    return (
        f"{where} is ready: it ran {verdict.elapsed_seconds:.0f} s of its {ramp.min_duration_seconds:g} s "
        f"minimum{scaled}, with {verdict.canary_samples} canary and {verdict.stable_samples} stable samples "
        f"(minimum {ramp.min_samples} each) and no rule in breach"
    )
