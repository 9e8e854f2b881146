"""The judge's verdict on an active rollout, as ``rollout status`` reads and shows it.

Against a control plane the verdict is the document of ``GET /v1/prompts/{name}/rollout/verdict``;
against a store it is judged here, with :func:`otel_prompt_canary.loop.assess` on the store's own
statistics (:class:`~otel_prompt_canary.loop.SqlLoopStore`), at time scale 1. Either way it is one
:class:`~otel_prompt_canary.service.schemas.RolloutVerdict`, with the origin the statistics come from
(application or collector) and the reports of the other origin that were ignored, printed as text by
:func:`verdict_fields` and as JSON beside the routing flag.
"""

from __future__ import annotations

from pydantic import ValidationError

from otel_prompt_canary.analysis.verdict import Decision, RuleVerdict
from otel_prompt_canary.errors import InvalidInputError, NotFoundError, PromptCanaryError
from otel_prompt_canary.loop.assessment import assess
from otel_prompt_canary.loop.store import SqlLoopStore
from otel_prompt_canary.registry.models import Route
from otel_prompt_canary.registry.sql import SqlRegistry
from otel_prompt_canary.routing.remote import RemoteRegistry
from otel_prompt_canary.service.schemas import RolloutVerdict

__all__ = ["NO_REPORTS_HELP", "read_verdict", "verdict_fields"]

#: Where a user whose rollout has no statistics learns how statistics reach the controller.
NO_REPORTS_HELP = "docs/control-plane.md#where-the-statistics-come-from"


def read_verdict(registry: object, route: Route) -> RolloutVerdict | None:
    """The verdict on ``route``'s active rollout now; None when no rollout is active.

    Raises :class:`~otel_prompt_canary.errors.InvalidInputError` when the rollout cannot be judged
    (a stored policy that cannot be decided).
    """
    if not route.state.active or route.rollout_id is None:
        return None
    try:
        if isinstance(registry, RemoteRegistry):
            document = registry.rollout_verdict(route.prompt, environment=route.environment)
            try:
                return RolloutVerdict.model_validate(document)
            except ValidationError as exc:
                raise PromptCanaryError(
                    f"unexpected verdict from the control plane at {registry.base_url}: {exc}"
                ) from exc
        if isinstance(registry, SqlRegistry):
            store = SqlLoopStore(registry)
            return RolloutVerdict.of(assess(registry, store, route), store.report_origin(route.rollout_id))
    except NotFoundError:
        return None  # the rollout ended between the two reads
    raise InvalidInputError(f"cannot judge a rollout on {registry!r}")


def _no_reports(verdict: RolloutVerdict) -> bool:
    """True when not one sample of any of the policy's signals was ever reported for the rollout."""
    return all(
        rule.canary.n == 0 and (rule.stable is None or rule.stable.n == 0) for rule in verdict.verdict.rules
    )


def _step(document: RolloutVerdict) -> str:
    v = document.verdict
    return f"step {v.step + 1}/{len(document.ramp)} ({v.canary_percent:g}%)"


def _headline(document: RolloutVerdict) -> str:
    v = document.verdict
    if v.decision is Decision.BREACH:
        return f"breach: rule {v.rule_id!r} is proven, action {v.action}"
    if v.ready:
        last = v.step + 1 == len(document.ramp)
        return (
            f"ready: the canary may be promoted ({_step(document)})"
            if last
            else f"ready: {_step(document)} may advance"
        )
    return (
        f"not ready: {_step(document)} has run {v.elapsed_seconds:.0f} s, with {v.stable_samples} stable and "
        f"{v.canary_samples} canary samples"
    )


def _evidence(rule: RuleVerdict) -> str:
    cohorts = [("canary", rule.canary), ("stable", rule.stable)]
    shown = [
        f"{name} n={c.n}" + ("" if c.estimate is None else f", {c.estimate:.4g}")
        for name, c in cohorts
        if c is not None
    ]
    statistic = (
        "" if rule.statistic is None else f"; statistic {rule.statistic:.4g} > {rule.statistic_threshold:.4g}"
    )
    return "; ".join(shown) + statistic


def _origin_fields(document: RolloutVerdict) -> list[tuple[str, str]]:
    """Whose reports the statistics come from, and the other origin's reports that were ignored."""
    found = document.report_origin
    if found is None:
        return []
    rows = [
        (
            "reports",
            f"counted from origin {found.origin.value!r} only (the first report of the rollout came "
            f"from {found.first_source!r} at {found.since.isoformat(timespec='seconds')})",
        )
    ]
    if found.ignored_reports:
        last = "" if found.last_ignored_source is None else f"; the last from {found.last_ignored_source!r}"
        rows.append(
            (
                "ignored",
                f"{found.ignored_reports} report(s) of origin {found.ignored_origin.value!r} "
                f"({found.ignored_samples} samples{last}): they report the same calls, and counting both "
                f"would count every call twice; {found.remedy()}",
            )
        )
    return rows


def verdict_fields(document: RolloutVerdict) -> list[tuple[str, str]]:
    """``rollout status``'s lines for a verdict: the decision, what the step waits for, rules in
    breach, and where the statistics come from."""
    v = document.verdict
    rows: list[tuple[str, str]] = [("verdict", _headline(document))]
    for i, reason in enumerate(v.waiting_for):
        rows.append(("waiting" if i == 0 else "", reason))
    proven = dict.fromkeys(v.breached, "breach") | dict.fromkeys(v.held, "held")
    for rule in v.rules:
        if rule.rule_id in proven:
            rows.append((proven[rule.rule_id], f"{rule.rule_id} ({rule.action}): {rule.summary}"))
            rows.append(("", _evidence(rule)))
    if _no_reports(document):
        signals = ", ".join(dict.fromkeys(rule.signal for rule in v.rules))
        rows.append(
            (
                "note",
                f"no reports have arrived: no sample of {signals} was ever reported for this rollout, "
                f"and the controller judges only what is reported to it; see {NO_REPORTS_HELP}",
            )
        )
    rows += _origin_fields(document)
    if document.time_scale != 1:
        rows.append(("", f"(policy time runs {document.time_scale:g} times faster)"))
    return rows
