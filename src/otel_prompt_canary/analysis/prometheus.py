r"""Prometheus rules that judge one prompt's canary by its policy, with the judge's own bound.

:func:`prometheus_rules` turns a :class:`~otel_prompt_canary.analysis.policy.Policy` into a
Prometheus rule file for one prompt: recording rules that rebuild each signal's per-cohort counts
from the ``prompt_canary.*`` metrics, and one alert per policy rule that fires when the rule is
proven breached, with the same test (the normal mixture centred on a regression), the same
``alpha`` share, ``target_samples``, ``warmup_samples``, margins, ratios and thresholds as the
in-process judge (:mod:`~otel_prompt_canary.analysis.sequential`). The alerts carry the labels the
control plane's Alertmanager receiver reads (``prompt``, ``action``), so a breach flips the routing
flag.

What the metrics allow, and so what the rules compute:

- **Samples since the canary started.** A canary version's counts are ``increase()`` over the
  ``horizon`` (default 24 hours); a canary version only ever receives traffic during its rollout,
  so while the rollout is shorter than the horizon the sample grows from its first call, as the
  judge's does, and the bound stays valid under continuous monitoring. Past the horizon the
  window slides.
- **Concurrent stable traffic.** The stable cohort counts only in the ``resolution`` steps (default
  5 minutes) in which the canary version had samples, through a subquery over the horizon: stable
  traffic from before the rollout is left out.
- **Proportions** (checks) are counts of ``pass`` outcomes, with the judge's regularised variance
  ``q (1 - q)``, ``q = (s + 0.5) / (n + 1)``. A ratio rule compares their failures per call (or, for a
  check harmful when it increases, its passes per call).
- **Means** (scores) come from the score histogram's ``_sum`` and ``_count``, which hold no sum of
  squares: the per-sample variance is bounded instead, by the Bhatia-Davis inequality
  ``(hi - mean) (mean - lo)`` for values in ``[lo, hi]``, times ``n / (n - 1)`` so that it bounds
  the judge's sample variance too. Bounding the variances keeps the test valid, but the bound
  then differs from the judge's, usually wider, sometimes narrower (the variance also centres the
  mixture). ``judge`` and ``user_feedback`` lie in ``[0, 1]``; every other score needs its range
  in ``score_ranges``, with ``lo >= 0`` (the OpenTelemetry SDK drops negative histogram values).
  A cohort whose mean leaves the range records no variance, and its rules cannot fire.
- **Steps.** Prometheus knows no ramp steps: a critical rule fires once proven for ``act_after``
  (default 1 minute); any other rule waits as long as a step's minimum duration, the Prometheus
  counterpart of the judge holding a breach until the step matures. When the steps' minimum
  durations differ, the rules wait the shortest: they cannot tell which step a rollout is at, and
  a longer wait would hold a proven regression past the time the judge lets it act in the
  quickest step.
- **Ended rollouts.** An alert holds only while the canary version still has traffic (within two
  resolution steps), so it resolves soon after a rollback or a promotion.

Counts are ``increase()`` estimates (extrapolated at window edges, the first samples of a new
series unseen), so values differ slightly from the judge's exact counts. The rule group is
evaluated every minute, or every ``resolution`` when that is shorter.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import yaml

from otel_prompt_canary.analysis.policy import (
    Direction,
    Policy,
    Rule,
    RuleAction,
    RuleType,
    Signal,
    SignalKind,
    _check_name,
    parse_duration,
)
from otel_prompt_canary.analysis.sequential import MIXTURE_SPREAD
from otel_prompt_canary.errors import InvalidInputError

__all__ = ["ALERT_NAME", "prometheus_rules"]

#: The name of every alert the generated rules raise; ``prompt_canary_rule`` tells them apart.
ALERT_NAME: Final = "PromptCanaryPolicyBreach"

#: Severity label per action, as the shipped rules and Alertmanager routes use them.
_SEVERITY: Final = {RuleAction.ROLLBACK: "critical", RuleAction.PAUSE: "warning", RuleAction.ALERT: "info"}

_ASKS: Final = {
    RuleAction.ROLLBACK: "Asks the control plane to roll the canary back.",
    RuleAction.PAUSE: "Asks the control plane to pause the rollout.",
    RuleAction.ALERT: "The control plane records it; routing does not change.",
}


#: Labels that identify one canary of one prompt: every recorded series carries them.
_CANARY_KEY: Final = "gen_ai_prompt_name, gen_ai_prompt_version"
#: Per-sample variance bounds need a range; scores other than these need one given.
#: Scores whose range the project knows: the LLM judge's grade, feedback (validated into [0, 1]).
_KNOWN_SCORE_RANGES: Final = {"judge": (0.0, 1.0), "user_feedback": (0.0, 1.0)}


def _seconds(duration: str, what: str, *, zero: bool = False) -> float:
    # The policy's parser: a step's min_duration and these options read durations alike.
    seconds = parse_duration(duration)
    if seconds is None or not math.isfinite(seconds):
        raise InvalidInputError(
            f"invalid {what} {duration!r}: use a Prometheus duration such as 30s, 5m, 1h30m or 24h"
        )
    if seconds <= 0 and not zero:
        raise InvalidInputError(f"invalid {what} {duration!r}: it must be longer than 0")
    return seconds


def _duration(seconds: float) -> str:
    """A Prometheus duration for ``seconds``, in whole milliseconds."""
    millis = round(seconds * 1000)
    return f"{millis // 1000}s" if millis % 1000 == 0 else f"{millis}ms"


def _number(value: float) -> str:
    """A PromQL number literal that reads back as exactly ``value``."""
    return repr(float(value))


def _quote(value: str) -> str:
    # Names are already restricted to [A-Za-z0-9._-]; quoting stays correct for any text anyway.
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class _Literal(str):
    """A string YAML writes as a literal block (``|``), as people write multi-line PromQL."""


def _literal_representer(dumper: yaml.SafeDumper, value: _Literal) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", str(value), style="|")


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_Literal, _literal_representer)


@dataclass(frozen=True)
class _Names:
    """Selectors of one signal's metrics and recorded series, for one prompt."""

    prompt: str
    signal: Signal

    def metric(self, part: str, **labels: str) -> str:
        """The instrumentation's series of this signal: ``samples`` or ``total`` (passes, or sum)."""
        base = {"gen_ai_prompt_name": self.prompt}
        if self.signal.kind is SignalKind.PROPORTION:
            name = "prompt_canary_checks_total"
            base["prompt_canary_check"] = self.signal.name
            if part == "total":
                base["prompt_canary_check_outcome"] = "pass"
        else:
            name = "prompt_canary_score_count" if part == "samples" else "prompt_canary_score_sum"
            base["gen_ai_evaluation_name"] = self.signal.name
        return _selector(name, base | labels)

    def record(self, name: str, **labels: str) -> str:
        """A series recorded by the generated rules for this signal (``prompt_canary:policy_<name>``)."""
        base = {"gen_ai_prompt_name": self.prompt, "prompt_canary_signal": self.signal.name}
        return _selector(f"prompt_canary:policy_{name}", base | labels)


def _selector(name: str, labels: Mapping[str, str]) -> str:
    return name + "{" + ", ".join(f"{k}={_quote(v)}" for k, v in labels.items()) + "}"


def _recorded(name: str, expr: str, labels: Mapping[str, str]) -> dict[str, Any]:
    return {
        "record": f"prompt_canary:policy_{name}",
        "expr": _Literal(expr.strip() + "\n"),
        "labels": dict(labels),
    }


def _or_zero(total: str, samples: str) -> str:
    """``total``, or 0 where it has no series but ``samples`` has: a check that never passed."""
    return f"{total}\nor ignoring (prompt_canary_signal)\n{samples} * 0"


def _signal_records(
    names: _Names, relative: bool, score_range: tuple[float, float], horizon: str, resolution: str
) -> list[dict[str, Any]]:
    """Per-cohort samples, totals, means and per-sample variances of one signal."""
    labels = {"prompt_canary_signal": names.signal.name}
    canary = {"prompt_canary_cohort": "canary"}
    stable = {"prompt_canary_cohort": "stable"}

    def counted(part: str) -> str:
        return f"sum by ({_CANARY_KEY}) (increase({names.metric(part, **canary)}[{horizon}]))"

    # A check that never passed has no pass series: its total is 0, not absent.
    records = [
        _recorded("canary_samples", counted("samples"), labels),
        _recorded("canary_total", _or_zero(counted("total"), names.record("canary_samples")), labels),
    ]
    if relative:
        # The canary was live in a resolution step when its version had samples of this signal in it.
        live = (
            f"sum by ({_CANARY_KEY}) (increase({names.metric('samples', **canary)}[{resolution}])) > bool 0"
        )
        for part in ("samples", "total"):
            per_step = f"sum by (gen_ai_prompt_name) (increase({names.metric(part, **stable)}[{resolution}]))"
            concurrent = (
                f"sum_over_time((\n  {per_step}\n  * on (gen_ai_prompt_name) group_right ()\n  ({live})\n)"
                f"[{horizon}:{resolution}])"
            )
            if part == "total":
                concurrent = _or_zero(f"({concurrent})", names.record("stable_samples"))
            records.append(_recorded(f"stable_{part}", concurrent, labels))

    cohorts = ["canary", "stable"] if relative else ["canary"]
    for cohort in cohorts:
        mean = f"{names.record(cohort + '_total')} / {names.record(cohort + '_samples')}"
        records.append(_recorded(f"{cohort}_mean", mean, labels))
    sums = {c: (names.record(c + "_total"), names.record(c + "_samples")) for c in cohorts}
    if relative:
        sums["pooled"] = (
            f"({sums['canary'][0]} + {sums['stable'][0]})",
            f"({sums['canary'][1]} + {sums['stable'][1]})",
        )
    for cohort, (total, samples) in sums.items():
        records.append(
            _recorded(f"{cohort}_variance", _variance(names.signal, total, samples, score_range), labels)
        )
    return records


def _variance(signal: Signal, total: str, samples: str, score_range: tuple[float, float]) -> str:
    """Per-sample variance: the judge's ``q (1 - q)`` for a check; for a score, the Bhatia-Davis bound
    on its sample variance."""
    if signal.kind is SignalKind.PROPORTION:
        # (s + 0.5) / (n + 1): both operands exact, so the same rounded quotient as the judge's.
        q = f"(({total} + 0.5) / ({samples} + 1))"
        return f"{q}\n* (1 - {q})"
    lo, hi = (_number(v) for v in score_range)
    # The mean, only where it lies in the range: outside it, the bound would be wrong.
    mean = f"({total} / {samples} >= {lo} <= {hi})"
    return f"({hi} - {mean})\n* ({mean} - {lo})\n* {samples} / ({samples} - 1)"


def _contrast(names: _Names, rule: Rule) -> tuple[str, str, str]:
    """The rule's contrast, its variance now, and its variance at one sample per cohort (per-sample
    variances, to be divided by ``target_samples``), as the judge computes them."""
    rec = names.record
    if rule.type is RuleType.ABSOLUTE:
        variance = rec("canary_variance")
        return rec("canary_mean"), f"{variance} / {rec('canary_samples')}", variance
    ratio = 1.0 if rule.ratio is None else rule.ratio
    # The canary's variance is floored at the pooled one (times the ratio), as the judge does.
    pooled = rec("pooled_variance") if rule.ratio is None else f"{_number(ratio)} * {rec('pooled_variance')}"
    floored = f"({rec('canary_variance')} >= {pooled} or {pooled})"
    stable = (
        rec("stable_variance")
        if rule.ratio is None
        else f"{_number(ratio * ratio)} * {rec('stable_variance')}"
    )
    variance = f"{floored} / {rec('canary_samples')}\n+ {stable} / {rec('stable_samples')}"
    per_sample = f"({floored} + {stable})"
    if rule.ratio is None:
        return f"{rec('canary_mean')} - {rec('stable_mean')}", variance, per_sample
    # A ratio rule compares rates of bad outcomes: a check's failures when it is harmful decreasing.
    if names.signal.harmful is Direction.DECREASE:
        rates = f"(1 - {rec('canary_mean')}) - {_number(ratio)} * (1 - {rec('stable_mean')})"
    else:
        rates = f"{rec('canary_mean')} - {_number(ratio)} * {rec('stable_mean')}"
    return rates, variance, per_sample


def _radius(v: str, t: str, alpha: float) -> str:
    """The judge's radius (:func:`~.sequential.confidence_radius`) for variance ``v`` and target
    variance ``t``, with the same operations."""
    log_inv = -math.log(alpha)
    spread2 = _number(MIXTURE_SPREAD * MIXTURE_SPREAD)
    m2 = f"{_number(2.0 * log_inv)} * {t}"
    t2 = f"{_number(MIXTURE_SPREAD * MIXTURE_SPREAD * 2.0 * log_inv)} * {t}"
    k = f"{m2} * {v}\n    + {v} * ({v} + {t2}) * ({_number(2.0 * log_inv)} + ln(({v} + {t2}) / {v}))"
    return f"(\n  sqrt({v} * {v} + {spread2} * (\n    {k}\n  )) - {v}\n)\n/ ({spread2} * sqrt({m2}))"


def _rule_records(names: _Names, rule: Rule, target_samples: int, alpha: float) -> list[dict[str, Any]]:
    """The contrast, its variance, the confidence radius and the bound the alert compares."""
    labels = {"prompt_canary_signal": names.signal.name, "prompt_canary_rule": rule.id}
    rec = names.record
    contrast, variance, per_sample = _contrast(names, rule)
    mine = {"prompt_canary_rule": rule.id}
    # Recorded per rule, with the rule's label, so that the radius joins them one to one.
    v, t = rec("contrast_variance", **mine), rec("target_variance", **mine)
    side = "+" if _harmful(rule, names.signal) is Direction.DECREASE else "-"
    bound = f"{rec('contrast', **mine)} {side} {rec('radius', **mine)}"
    return [
        _recorded("contrast", contrast, labels),
        _recorded("contrast_variance", variance, labels),
        _recorded("target_variance", f"{per_sample} / {target_samples}", labels),
        _recorded("radius", _radius(v, t, alpha), labels),
        _recorded("bound", bound, labels),
        # The limit beside the bound, as a series, for graphs: the alert fires where they cross.
        _recorded("limit", f"{rec('bound', **mine)} * 0 + {_number(_limit(rule, names.signal))}", labels),
    ]


def _harmful(rule: Rule, signal: Signal) -> Direction:
    """Which way the rule's contrast moves when the canary is worse: a ratio rule's rises."""
    return Direction.INCREASE if rule.ratio is not None else signal.harmful


def _limit(rule: Rule, signal: Signal) -> float:
    if rule.type is RuleType.ABSOLUTE:
        assert rule.threshold is not None  # guaranteed by Rule's validation
        return rule.threshold
    if rule.ratio is not None:
        return 0.0
    return -rule.tolerance if signal.harmful is Direction.DECREASE else rule.tolerance


def _alert(names: _Names, rule: Rule, policy: Policy, wait: str, resolution_seconds: float) -> dict[str, Any]:
    signal, prompt = names.signal, names.prompt
    limit = _limit(rule, signal)
    compare = "<" if _harmful(rule, signal) is Direction.DECREASE else ">"
    warmup = policy.statistics.warmup_samples
    on = f"on ({_CANARY_KEY})"
    parts = [
        f"{names.record('bound', prompt_canary_rule=rule.id)} {compare} {_number(limit)}",
        f"and {on} {names.record('canary_samples')} >= {warmup}",
    ]
    if rule.type is RuleType.RELATIVE:
        parts.append(f"and {on} {names.record('stable_samples')} >= {warmup}")
    responses = _selector(
        "prompt_canary_responses_total", {"gen_ai_prompt_name": prompt, "prompt_canary_cohort": "canary"}
    )
    active = _duration(2 * resolution_seconds)
    parts.append(f"and {on} sum by ({_CANARY_KEY}) (increase({responses}[{active}])) > 0")

    worse = "below" if _harmful(rule, signal) is Direction.DECREASE else "above"
    if rule.ratio is not None:
        # Harmful when it decreases: a check, whose bad outcomes are its failures.
        counted = f"{signal.name} failures" if signal.harmful is Direction.DECREASE else signal.name
        claim = f"{counted} per call on the canary are more than {rule.ratio:g} times stable's"
    elif rule.type is RuleType.RELATIVE:
        claim = f"{signal.name} is worse on the canary than on stable by more than {rule.tolerance:g}"
    else:
        claim = f"{signal.name} is {worse} {limit:g} on the canary"
    rec = names.record
    mine = {"prompt_canary_rule": rule.id}

    def shown(series: str, fmt: str = "%.4g") -> str:
        query = series.replace("}", ', gen_ai_prompt_version="%s"}', 1)
        return (
            f"{{{{ with printf `{query}` $labels.gen_ai_prompt_version | query }}}}"
            f'{{{{ . | first | value | printf "{fmt}" }}}}{{{{ end }}}}'
        )

    evidence = f"canary {shown(rec('canary_mean'))} over {shown(rec('canary_samples'), '%.0f')} samples"
    if rule.type is RuleType.RELATIVE:
        evidence += f", stable {shown(rec('stable_mean'))} over {shown(rec('stable_samples'), '%.0f')}"
    description = (
        f"Policy rule {rule.id} ({rule.action.value}): {claim}, proven at alpha {policy.rule_alpha:.4g}. "
        f"{signal.name}: {evidence}; contrast {shown(rec('contrast', **mine))}, its bound "
        f'{{{{ $value | printf "%.4g" }}}} is {worse} the limit {limit:g}. '
        f"{_ASKS[rule.action]}"
    )
    return {
        "alert": ALERT_NAME,
        "expr": _Literal("\n".join(parts) + "\n"),
        "for": wait,
        "labels": {
            "prompt": prompt,
            "action": rule.action.value,
            "severity": _SEVERITY[rule.action],
            "prompt_canary_rule": rule.id,
            "prompt_canary_signal": signal.name,
        },
        "annotations": {
            "summary": (
                f"canary {prompt} v{{{{ $labels.gen_ai_prompt_version }}}} breaches policy rule {rule.id}"
            ),
            "description": description,
        },
    }


def _score_range(signal: Signal, score_ranges: Mapping[str, tuple[float, float]]) -> tuple[float, float]:
    if signal.kind is SignalKind.PROPORTION:
        return (0.0, 1.0)
    if signal.name in score_ranges:
        lo, hi = score_ranges[signal.name]
        if not (math.isfinite(lo) and math.isfinite(hi) and 0 <= lo < hi):
            raise InvalidInputError(
                f"the range of score {signal.name!r} must be two finite numbers 0 <= lo < hi "
                "(the OpenTelemetry SDK drops negative histogram values)"
            )
        return (float(lo), float(hi))
    if signal.name in _KNOWN_SCORE_RANGES:
        return _KNOWN_SCORE_RANGES[signal.name]
    raise InvalidInputError(
        f"score {signal.name!r} has no known range: give the bounds of its values (for example "
        f"{signal.name}=0:4096), without which Prometheus cannot bound its variance"
    )


def prometheus_rules(
    policy: Policy,
    prompt: str,
    *,
    horizon: str = "24h",
    resolution: str = "5m",
    act_after: str = "1m",
    score_ranges: Mapping[str, tuple[float, float]] | None = None,
) -> str:
    """A Prometheus rule file (YAML text) that judges ``prompt``'s canaries by ``policy``.

    ``horizon`` is how far back a canary's samples are counted (a Prometheus duration; make it longer
    than your rollouts), ``resolution`` the step in which stable traffic counts as concurrent (at
    least four scrape intervals, so that each step holds enough samples for ``increase()``),
    ``act_after`` the ``for`` of critical rules. ``score_ranges`` maps a score name to the
    ``(lo, hi)`` its values lie in (needed for every score but ``judge`` and ``user_feedback``).
    Raises :class:`~otel_prompt_canary.errors.InvalidInputError` on a bad prompt name, duration
    or range. See the module docstring for what the rules compute.
    """
    try:
        _check_name(prompt, "prompt name")
    except ValueError as exc:
        raise InvalidInputError(str(exc)) from None
    horizon_seconds = _seconds(horizon, "horizon")
    resolution_seconds = _seconds(resolution, "resolution")
    act_seconds = _seconds(act_after, "act_after", zero=True)
    if resolution_seconds * 4 > horizon_seconds:
        raise InvalidInputError(
            f"the horizon {horizon} must be at least four resolution steps ({resolution})"
        )
    ranges = dict(score_ranges or {})
    judged = {rule.signal for rule in policy.rules}
    unknown = sorted(set(ranges) - {s.name for s in policy.signals if s.kind is SignalKind.MEAN})
    if unknown:
        raise InvalidInputError(f"score ranges given for {unknown}, which the policy judges as no score")

    rules: list[dict[str, Any]] = []
    for signal in policy.signals:
        if signal.name not in judged:
            continue  # a must_have_data signal: it gates the judge's steps, no alert reads it
        names = _Names(prompt, signal)
        relative = any(r.type is RuleType.RELATIVE for r in policy.rules if r.signal == signal.name)
        rules += _signal_records(names, relative, _score_range(signal, ranges), horizon, resolution)
    for rule in policy.rules:
        names = _Names(prompt, policy.signal(rule.signal))
        rules += _rule_records(names, rule, policy.statistics.target_samples, policy.rule_alpha)
    # The shortest step's minimum: see "Steps" in the module docstring.
    step_seconds = min(policy.ramp.min_duration_at(i) for i in range(len(policy.ramp.steps)))
    for rule in policy.rules:
        wait = act_seconds if policy.is_critical(rule) else max(act_seconds, step_seconds)
        rules.append(
            _alert(
                _Names(prompt, policy.signal(rule.signal)), rule, policy, _duration(wait), resolution_seconds
            )
        )

    # Every minute at most: a breach is acted on within a minute of the data proving it.
    interval = _duration(min(resolution_seconds, 60.0))
    document = {"groups": [{"name": f"prompt-canary.policy.{prompt}", "interval": interval, "rules": rules}]}
    header = (
        f"# Prometheus rules judging the canaries of prompt {prompt!r} by its policy, written by\n"
        f"# `prompt-canary policy rules`: {len(policy.rules)} rule(s) at alpha {policy.alpha:g}\n"
        f"# ({policy.rule_alpha:.4g} each), target_samples {policy.statistics.target_samples}, "
        f"warmup_samples {policy.statistics.warmup_samples};\n"
        f"# horizon {horizon}, resolution {resolution}. Regenerate them when the policy changes; see\n"
        '# docs/dashboards.md, "Rules from your policy", for what they compute and their limits.\n'
    )
    return header + yaml.dump(document, Dumper=_Dumper, sort_keys=False, width=110, allow_unicode=True)
