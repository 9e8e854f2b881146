"""The rollout controller: judges every active rollout on its reported statistics, and moves it.

Every ``interval_seconds`` the controller reads the routing flags and, for each active rollout
(``ramping`` or ``paused``), applies its policy's judge (:class:`otel_prompt_canary.analysis.Judge`)
to the statistics reported so far (``POST /v1/reports``, or :meth:`RolloutController.observe` in
process):

- a rule proven with action ``rollback``: roll back (from ``ramping`` or ``paused``);
- a rule proven with action ``pause``: pause a ``ramping`` rollout;
- a rule proven with action ``alert``: recorded in the alert log, once per rule;
- no rule in breach and the step ready (its minimum duration and samples reached): advance, or
  promote at the last step (only from ``ramping``: a paused rollout waits for a person). Under a
  policy whose ``promotion`` is ``manual``, the controller never advances into the last step (100%)
  nor promotes: the rollout waits for a person there, and the alert log says so once.

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

Each environment has its own rollouts: the controller judges those of ``environments`` (the
control plane's, by default the default environment alone), each on its own statistics.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pydantic import JsonValue

from otel_prompt_canary.analysis.policy import Promotion, RuleAction
from otel_prompt_canary.analysis.stats import Report
from otel_prompt_canary.analysis.verdict import RuleStatus, RuleVerdict
from otel_prompt_canary.errors import ConflictError, InvalidInputError, PromptCanaryError
from otel_prompt_canary.loop.alerts import AlertAction, AlertNotice
from otel_prompt_canary.loop.assessment import CONTROLLER, Assessment, assess
from otel_prompt_canary.loop.observations import Observations
from otel_prompt_canary.loop.reports import ReportOrigin
from otel_prompt_canary.loop.store import LoopStore, SqlLoopStore
from otel_prompt_canary.loop.ticking import Ticking, TicksInBackground
from otel_prompt_canary.names import DEFAULT_ENVIRONMENT
from otel_prompt_canary.registry.base import Registry
from otel_prompt_canary.registry.models import Action, RolloutState, Route, validate_environment_name
from otel_prompt_canary.registry.sql import SqlRegistry

__all__ = ["Decision", "RolloutController"]

log = logging.getLogger("otel_prompt_canary.loop.controller")


@dataclass(frozen=True, slots=True)
class Decision:
    """What one tick did to one rollout."""

    prompt: str
    rollout_id: str
    action: Action | None
    applied: bool
    reason: str
    route: Route | None = None


def _effective(rule: RuleVerdict, acknowledged: frozenset[str]) -> RuleAction:
    if rule.action is RuleAction.PAUSE and rule.rule_id in acknowledged:
        return RuleAction.ALERT
    return rule.action


class RolloutController(TicksInBackground):
    """Judges and moves every active rollout of a registry; see the module docstring.

    ``store`` holds the rollouts' reports and the alert log; for an
    :class:`~otel_prompt_canary.registry.sql.SqlRegistry` it defaults to its
    :class:`~otel_prompt_canary.loop.store.SqlLoopStore`. Start the background thread with
    :meth:`start` (or use the controller as a context manager), or call :meth:`tick` yourself.
    ``on_change`` is called with the new route after each transition the controller applies.
    ``window_seconds`` is the window size of the statistics :meth:`observe` records.
    """

    def __init__(
        self,
        registry: Registry,
        store: LoopStore | None = None,
        *,
        interval_seconds: float = 1.0,
        time_scale: float = 1.0,
        window_seconds: int = 1,
        on_change: Callable[[Route], None] | None = None,
        clock: Callable[[], float] = time.time,
        environments: Sequence[str] = (DEFAULT_ENVIRONMENT,),
    ) -> None:
        if interval_seconds <= 0:
            raise InvalidInputError(f"interval_seconds must be positive, got {interval_seconds}")
        if time_scale <= 0:
            raise InvalidInputError(f"time_scale must be positive, got {time_scale}")
        if store is None:
            if not isinstance(registry, SqlRegistry):
                raise InvalidInputError(
                    f"give the store of reports and alerts of {type(registry).__name__}: only an "
                    "SqlRegistry has one by default"
                )
            store = SqlLoopStore(registry)
        self._registry = registry
        self._store = store
        self._observations = Observations(window_seconds=window_seconds, clock=clock)
        self.interval_seconds = interval_seconds
        self.time_scale = time_scale
        self._on_change = on_change
        self._clock = clock
        self._recorded: set[str] = set()
        self._warned: set[str] = set()
        self.environments = tuple(validate_environment_name(e) for e in environments)
        # Keyed by (environment, prompt): each environment has its own rollout of a prompt.
        self._assessments: dict[tuple[str, str], Assessment] = {}
        self._ticking = Ticking("prompt-canary-controller", interval_seconds, self.tick)

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return (
            f"RolloutController(every {self.interval_seconds:g} s, time scale {self.time_scale:g}, {state})"
        )

    @property
    def window_seconds(self) -> int:
        """The window size of the statistics :meth:`observe` records."""
        return self._observations.window_seconds

    # -- feeding it in process ----------------------------------------------------------------

    def observe(
        self, rollout_id: str, cohort: str, signal: str, value: bool | float, *, at: float | None = None
    ) -> None:
        """Count one sample: ``value`` of ``signal`` in ``cohort`` (``stable`` or ``canary``).

        A bool is a check (``json_valid`` counts under ``prompt_canary.check.json_valid``), a number
        a score (``prompt_canary.score.<signal>``); a full attribute name is taken as is. Samples
        are stored at the next tick (or :meth:`flush`), exactly as a report would add them.
        """
        self._observations.observe(rollout_id, cohort, signal, value, at=at)

    def add_report(
        self,
        report: Report,
        *,
        prompt: str | None = None,
        source: str = "in-process",
        origin: ReportOrigin | None = ReportOrigin.APPLICATION,
    ) -> None:
        """Add a whole report of statistics (as ``POST /v1/reports`` would, without an id).

        Counted as the application's, as :meth:`observe` is, unless ``origin`` says otherwise: a
        rollout counts the reports of one origin (see :mod:`otel_prompt_canary.loop.reports`).
        """
        self._store.record_report(report, source=source, prompt=prompt, origin=origin)

    def flush(self) -> None:
        """Store the observations counted since the last flush.

        They are the application's own samples (origin ``application``): a rollout whose statistics
        come from the Collector ignores them, and the store logs that once.
        """
        for report in self._observations.drain():
            try:
                self._store.record_report(report, source="in-process", origin=ReportOrigin.APPLICATION)
            except PromptCanaryError as exc:
                log.warning("could not store observations of rollout %s: %s", report.rollout_id, exc)

    # -- judging ----------------------------------------------------------------------------

    def assessment(self, prompt: str, environment: str = DEFAULT_ENVIRONMENT) -> Assessment | None:
        """The last assessment of ``prompt``'s active rollout in ``environment``, if the controller
        made one."""
        return self._assessments.get((environment, prompt))

    def tick(self) -> list[Decision]:
        """Store pending observations, then judge every active rollout once; returns what it did."""
        self.flush()
        decisions: list[Decision] = []
        active = [
            route
            for environment in self.environments
            for route in self._registry.list_routes(environment=environment)
            if route.state.active and route.rollout_id is not None
        ]
        for key in set(self._assessments) - {(r.environment, r.prompt) for r in active}:
            del self._assessments[key]
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
        assessment = assess(self._registry, self._store, route, time_scale=self.time_scale, now=self._clock())
        self._assessments[route.environment, route.prompt] = assessment
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
            if assessment.policy.promotion is Promotion.MANUAL and route.step + 2 >= len(route.ramp):
                # The next move would put the canary in front of everyone: a person's call.
                self._record_waiting(assessment)
                return None
            return self._apply(
                assessment, Action.PROMOTE if last else Action.ADVANCE, _ready_reason(assessment)
            )
        return None

    def _apply(self, assessment: Assessment, action: Action, reason: str) -> Decision:
        route = assessment.route
        assert route.rollout_id is not None
        try:
            after = self._registry.transition(
                route.prompt,
                action,
                actor=CONTROLLER,
                reason=reason[:2000],
                evidence=assessment.evidence(),
                expected_revision=route.revision,
                rollout_id=route.rollout_id,
                environment=route.environment,
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

    def _record_waiting(self, assessment: Assessment) -> None:
        """Say once, in the alert log, that a rollout under manual promotion waits for a person."""
        route = assessment.route
        key = f"controller:{route.rollout_id}:step-{route.step}:manual-promotion"
        if key in self._recorded:
            return
        last = route.step + 1 >= len(route.ramp)
        move = "promotes it" if last else f"promotes it, or advances it to {route.ramp[-1]:g}%"
        reason = (
            f"{_ready_reason(assessment)}; the policy's promotion is manual, so a person {move} "
            f"(prompt-canary rollout promote {route.prompt} --reason ...)"
        )
        alert: JsonValue = {"promotion": Promotion.MANUAL.value, "step": route.step, "ready": True}
        self._record(route, key, reason, alert)

    def _record_alert(self, assessment: Assessment, rule: RuleVerdict) -> None:
        route = assessment.route
        key = f"controller:{route.rollout_id}:{rule.rule_id}"
        if key in self._recorded:
            return
        note = " (its pause was acknowledged by a resume)" if rule.rule_id in assessment.acknowledged else ""
        alert: JsonValue = {"rule": rule.model_dump(mode="json"), "step": route.step}
        self._record(route, key, f"rule {rule.rule_id!r} is {rule.summary}{note}", alert)

    def _record(self, route: Route, key: str, reason: str, alert: JsonValue) -> None:
        """Log ``key`` once, as an alert of the controller's that changes nothing."""
        self._store.receive_alert(
            AlertNotice(
                source="controller",
                key=key,
                prompt=route.prompt,
                action=AlertAction.ALERT,
                rollout_id=route.rollout_id,
                actor=CONTROLLER,
                reason=reason[:2000],
                alert=alert,
            )
        )
        self._recorded.add(key)

    # -- running in the background (TicksInBackground) --------------------------------------

    def _stopped(self) -> None:
        """Store the observations still pending once the thread has ended."""
        try:
            self.flush()
        except Exception:
            log.exception("could not store the last observations")


def _ready_reason(assessment: Assessment) -> str:
    """Why the step may advance, with the minimums of that step (its own, or the ramp's)."""
    route, verdict, ramp = assessment.route, assessment.verdict, assessment.policy.ramp
    min_duration, min_samples = ramp.min_duration_at(verdict.step), ramp.min_samples_at(verdict.step)
    where = f"step {route.step + 1}/{len(route.ramp)} ({verdict.canary_percent:g}%)"
    scaled = f" at time scale {assessment.time_scale:g}" if assessment.time_scale != 1 else ""
    if verdict.canary_percent == 100:
        # The judge exempts the stable cohort here: it receives no traffic, so quoting its count
        # against a minimum would read as a step that advanced short of samples.
        samples = (
            f"{verdict.canary_samples} canary samples (minimum {min_samples}; the stable cohort "
            "receives no traffic at 100%)"
        )
    else:
        samples = (
            f"{verdict.canary_samples} canary and {verdict.stable_samples} stable samples "
            f"(minimum {min_samples} each)"
        )
    return (
        f"{where} is ready: it ran {verdict.elapsed_seconds:.0f} s of its {min_duration:g} s "
        f"minimum{scaled}, with {samples} and no rule in breach"
    )
