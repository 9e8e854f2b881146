"""The canary policy of one prompt: its ramp, the signals it watches and the rules that judge them.

A policy is one YAML or JSON document per prompt::

    alpha: 0.05                      # chance of any false breach over a whole rollout
    ramp:
      steps: [1, 5, 20, 50, 100]     # percent of traffic routed to the canary at each step
      min_duration_seconds: 600      # a step lasts at least this long...
      min_samples: 100               # ...and collects at least this many samples per cohort
    signals:
      - name: json_valid             # span attribute prompt_canary.check.json_valid
        kind: proportion             # proportion of True of a boolean check
        harmful: decrease            # a drop is a regression
    rules:
      - signal: json_valid
        type: relative               # compared with concurrent stable traffic
        margin: 0.01                 # breach: canary worse than stable by more than 1 point
        action: rollback
        critical: true               # act as soon as it is proven, at any step

A signal of kind ``proportion`` reads the boolean check ``prompt_canary.check.<name>``; a signal of kind
``mean`` reads the numeric score ``prompt_canary.score.<name>``. A check's True is its good outcome
(``refusal`` passes when the model did not refuse), so a check signal is harmful when it decreases;
a score may be harmful either way (``output_tokens`` when it increases). A rule is ``absolute`` (the canary
against a fixed ``threshold``) or ``relative`` (the canary against the stable cohort, with a tolerated
``margin``); either way it breaches only when an anytime-valid confidence bound proves the canary is
on the harmful side (see :mod:`otel_prompt_canary.analysis.sequential`).

A step may hold for a time and a number of samples of its own: ``steps`` mixes bare percentages with
step objects, ``{percent: 1, min_duration: 4h, min_samples: 500}``, and the ramp's
``min_duration_seconds`` and ``min_samples`` apply to every step that sets none (see :class:`Ramp`).

A policy may require a golden-set evaluation before its rollout starts: ``gate: {dataset:
support-golden, min_pass_rate: 0.9}`` (see :class:`Gate` and docs/evaluations.md).

:func:`load_policy` reads a document and raises :class:`~otel_prompt_canary.errors.InvalidInputError`
with every problem and where it is; :func:`policy_json_schema` is the JSON Schema other languages use
(committed as ``schemas/policy.schema.json``; regenerate it with
``python -m otel_prompt_canary.analysis > schemas/policy.schema.json``).
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Final

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from otel_prompt_canary.errors import InvalidInputError, describe_validation_errors
from otel_prompt_canary.names import CHECK_PREFIX, SCORE_PREFIX
from otel_prompt_canary.yaml_documents import YamlLimitError, load_yaml

__all__ = [
    "DEFAULT_POLICY",
    "DEFAULT_POLICY_YAML",
    "DEFAULT_RAMP",
    "Direction",
    "Gate",
    "Policy",
    "Promotion",
    "Ramp",
    "RampStep",
    "Rule",
    "RuleAction",
    "RuleType",
    "Signal",
    "SignalKind",
    "Statistics",
    "load_policy",
    "parse_duration",
    "policy_json_schema",
]

#: The default ramp, in percent of traffic routed to the canary at each step.
DEFAULT_RAMP: Final[tuple[float, ...]] = (1.0, 5.0, 20.0, 50.0, 100.0)

#: The largest count a policy may hold: a signed 64-bit integer, what the store and the Go
#: processor hold.
_MAX_COUNT: Final = 2**63 - 1

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_NAME_HELP = "1-128 characters from letters, digits, '_', '.' and '-', starting with a letter or digit"
#: Check and score names, as the scoring package and the span attributes spell them.
_SIGNAL_NAME = re.compile(r"^[a-z0-9_]{1,64}$")

#: Duration units in milliseconds, from the largest to the smallest: Prometheus's, so that a policy
#: and the ``prompt-canary policy rules`` options read durations alike. The Go processor's
#: ``internal/policy`` has the same table and pattern (its schema test compares the pattern).
_DURATION_UNITS_MS: Final = {
    "y": 365 * 86_400_000,
    "w": 7 * 86_400_000,
    "d": 86_400_000,
    "h": 3_600_000,
    "m": 60_000,
    "s": 1000,
    "ms": 1,
}
# [0-9], not \d: \d would also take other scripts' digits, which Go's regexp and Prometheus refuse.
_DURATION_PATTERN: Final = "^" + "".join(f"(?:([0-9]+){unit})?" for unit in _DURATION_UNITS_MS) + "$"
_DURATION = re.compile(_DURATION_PATTERN)
_DURATION_HELP = "give seconds (14400) or a duration such as 30m, 4h or 1h30m"


def parse_duration(text: str) -> float | None:
    """The seconds in a duration such as ``30s``, ``4h`` or ``1h30m``; None when ``text`` is not one.

    Whole numbers with units from the largest to the smallest, each at most once (Prometheus's
    syntax). The sum is exact (integer milliseconds) and divided once, correctly rounded, so that
    Go computes the same float; a sum too large for a float is ``inf``.
    """
    match = _DURATION.fullmatch(text)
    if not text or match is None:
        return None
    millis = sum(int(n) * ms for n, ms in zip(match.groups(), _DURATION_UNITS_MS.values(), strict=True) if n)
    try:
        return millis / 1000
    except OverflowError:
        return math.inf


class SignalKind(StrEnum):
    """What a signal measures: the proportion of True of a check, or the mean of a score."""

    PROPORTION = "proportion"
    MEAN = "mean"


class Direction(StrEnum):
    """Which way a signal moves when the canary is worse."""

    DECREASE = "decrease"
    INCREASE = "increase"


class RuleType(StrEnum):
    """``absolute``: the canary against a fixed threshold; ``relative``: against the stable cohort."""

    ABSOLUTE = "absolute"
    RELATIVE = "relative"


class RuleAction(StrEnum):
    """What a breach asks the rollout controller to do, most severe first."""

    ROLLBACK = "rollback"
    PAUSE = "pause"
    ALERT = "alert"

    @property
    def severity(self) -> int:
        """3 for rollback, 2 for pause, 1 for alert: when several rules breach, the highest wins."""
        return {"rollback": 3, "pause": 2, "alert": 1}[self.value]


class Promotion(StrEnum):
    """Who takes a healthy rollout to everyone: the rollout controller or a person.

    ``automatic``: the controller advances through every step, 100% included, and promotes the
    canary once the last step is ready. ``manual``: the controller advances only through the steps
    below 100% and never promotes; when the step before 100% is ready the rollout waits for a person
    to promote it (or advance it to 100% and promote it then). Reports are the controller's
    evidence, so under ``manual`` whoever can post reports cannot put the canary in front of
    everyone.
    """

    AUTOMATIC = "automatic"
    MANUAL = "manual"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _id_schema(schema: dict[str, Any]) -> None:
    # The default is computed from other fields; the schema shows the field as simply optional.
    schema.pop("default", None)
    schema["pattern"] = _NAME.pattern


def _check_name(value: str, what: str) -> str:
    if not _NAME.fullmatch(value):
        raise ValueError(f"invalid {what} {value!r}: use {_NAME_HELP}")
    return value


def _step_duration(value: object) -> object:
    """A step's ``min_duration`` as seconds: a duration string is parsed, anything else is left
    to the float validation (numbers are seconds)."""
    if not isinstance(value, str):
        return value
    seconds = parse_duration(value)
    if seconds is None:
        raise ValueError(f"invalid duration {value!r}: {_DURATION_HELP}")
    return seconds


def _longer_than_zero(seconds: float | None) -> float | None:
    if seconds is not None and seconds <= 0:
        raise ValueError(
            "a step's minimum duration must be longer than 0; leave min_duration out for the ramp's "
            "min_duration_seconds"
        )
    return seconds


_DURATION_SCHEMA: Final = {
    "anyOf": [
        {"type": "number", "exclusiveMinimum": 0, "description": "seconds"},
        {"type": "string", "pattern": _DURATION_PATTERN, "minLength": 2, "examples": ["30m", "4h", "1h30m"]},
        {"type": "null"},
    ]
}


class RampStep(_Model):
    """One ramp step that sets its own minimums: ``{percent: 5, min_duration: 12h, min_samples: 1000}``.

    ``min_duration`` is seconds or a duration (``30m``, ``4h``, ``1h30m``: Prometheus's syntax) and
    must be longer than 0; ``min_samples`` is at least 1. Either may be left out, and the ramp's
    ``min_duration_seconds`` or ``min_samples`` applies.
    """

    percent: float = Field(description="Canary traffic in percent at this step")
    min_duration: Annotated[
        float | None,
        BeforeValidator(_step_duration),
        AfterValidator(_longer_than_zero),
        WithJsonSchema(_DURATION_SCHEMA),
    ] = Field(
        None,
        allow_inf_nan=False,
        description="Minimum duration of this step: seconds, or a duration such as 30m, 4h or 1h30m; "
        "default: the ramp's min_duration_seconds",
    )
    min_samples: int | None = Field(
        None,
        ge=1,
        le=_MAX_COUNT,
        description="Minimum samples per cohort collected during this step; default: the ramp's min_samples",
    )


_PERCENT: Final = TypeAdapter(float)


def _ramp_step(value: object) -> object:
    """A bare percentage stays a float; a mapping becomes a :class:`RampStep`.

    Deciding here, not in a union, keeps each error at the step's own location
    (``ramp.steps.1.min_samples``) instead of once per member of the union.
    """
    if isinstance(value, RampStep):
        return value
    if isinstance(value, Mapping):
        return RampStep.model_validate(value)
    return _PERCENT.validate_python(value)


class Ramp(_Model):
    """The steps of a rollout and how long each one lasts at least.

    ``steps`` are percentages of traffic routed to the canary: strictly increasing, each in (0, 100]
    with at most two decimals, ending at 100. A step is a bare percentage or an object (``RampStep``)
    that sets its own ``min_duration`` and ``min_samples``. A step may advance once it has run for
    its minimum duration and collected its minimum samples in each cohort (the stable cohort is
    exempt at 100%, where it receives no traffic); ``min_duration_seconds`` and ``min_samples`` are
    those minimums for every step that sets none.
    """

    steps: tuple[Annotated[float | RampStep, BeforeValidator(_ramp_step)], ...] = Field(
        DEFAULT_RAMP,
        description="Canary traffic in percent at each step, strictly increasing and ending at 100: "
        "a number, or {percent, min_duration, min_samples} for a step with minimums of its own",
        min_length=1,
    )
    min_duration_seconds: float = Field(
        600.0,
        ge=0,
        allow_inf_nan=False,
        description="Minimum duration of each step that sets no min_duration, in seconds",
    )
    min_samples: int = Field(
        100,
        ge=1,
        le=_MAX_COUNT,
        description="Minimum samples per cohort collected during each step that sets none",
    )

    @field_validator("steps")
    @classmethod
    def _valid_steps(cls, steps: tuple[float | RampStep, ...]) -> tuple[float | RampStep, ...]:
        percents = _percents(steps)
        for s in percents:
            if not (math.isfinite(s) and 0 < s <= 100):
                raise ValueError(f"every ramp step must be in (0, 100], got {s}")
            if abs(round(s * 100) - s * 100) > 1e-6:
                raise ValueError(f"ramp step {s}% is finer than 0.01%")
        if any(b <= a for a, b in itertools.pairwise(percents)):
            raise ValueError(f"ramp steps must be strictly increasing, got {list(percents)}")
        if percents[-1] != 100:
            raise ValueError(f"the last ramp step must be 100, got {percents[-1]}")
        return steps

    @property
    def percents(self) -> tuple[float, ...]:
        """The canary's percentage at each step: what the routing flag's ``ramp`` holds."""
        return _percents(self.steps)

    def min_duration_at(self, step: int) -> float:
        """The minimum duration of step ``step`` (an index into ``steps``), in seconds."""
        own = self.steps[step]
        if isinstance(own, RampStep) and own.min_duration is not None:
            return own.min_duration
        return self.min_duration_seconds

    def min_samples_at(self, step: int) -> int:
        """The minimum samples per cohort of step ``step`` (an index into ``steps``)."""
        own = self.steps[step]
        if isinstance(own, RampStep) and own.min_samples is not None:
            return own.min_samples
        return self.min_samples


def _percents(steps: tuple[float | RampStep, ...]) -> tuple[float, ...]:
    return tuple(s.percent if isinstance(s, RampStep) else s for s in steps)


class Signal(_Model):
    """One quality signal of the prompt, read from its LLM call spans.

    A ``proportion`` signal is the share of True of the boolean check ``prompt_canary.check.<name>``;
    a ``mean`` signal is the average of the numeric score ``prompt_canary.score.<name>``.
    """

    name: str = Field(
        description="Check or score name ([a-z0-9_], 1-64), e.g. json_valid or judge",
        json_schema_extra={"pattern": _SIGNAL_NAME.pattern},
    )
    kind: SignalKind = Field(description="proportion (boolean check, share of True) or mean (numeric score)")
    harmful: Direction = Field(description="Direction of a regression: decrease or increase")
    critical: bool = Field(
        False, description="Every rule on this signal acts as soon as it breaches, at any step"
    )
    must_have_data: bool = Field(
        False,
        description="A step cannot advance until this signal has min_samples in both cohorts",
    )

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not _SIGNAL_NAME.fullmatch(value):
            raise ValueError(
                f"invalid signal name {value!r}: a check or score name is 1-64 characters from "
                "a-z, 0-9 and '_'"
            )
        return value

    @property
    def attribute(self) -> str:
        """The span attribute the signal reads, e.g. ``prompt_canary.check.json_valid``."""
        prefix = CHECK_PREFIX if self.kind is SignalKind.PROPORTION else SCORE_PREFIX
        return prefix + self.name


class Rule(_Model):
    """When a signal proves the canary worse, and what to do then.

    An ``absolute`` rule breaches when the canary's value is proven on the harmful side of
    ``threshold`` (below it for a signal whose harmful direction is ``decrease``, above it for
    ``increase``). A ``relative`` rule breaches when the canary is proven worse than the concurrent
    stable traffic by more than ``margin``, or, given a ``ratio`` instead, when the canary's rate of
    bad outcomes (a check's failures, a score's events per call) is proven above ``ratio`` times
    stable's. ``id`` defaults to ``<signal>.<type>``.
    """

    id: str = Field(
        "",
        description="Unique rule id; defaults to '<signal>.<type>'",
        json_schema_extra=_id_schema,
    )
    signal: str = Field(description="Name of the signal the rule judges")
    type: RuleType = Field(description="absolute (against threshold) or relative (against stable)")
    threshold: float | None = Field(
        None, allow_inf_nan=False, description="Absolute rules: the limit the canary must not cross"
    )
    margin: float | None = Field(
        None,
        ge=0,
        allow_inf_nan=False,
        description="Relative rules: how much worse than stable is tolerated (default 0)",
    )
    # Left out of the document when unset, as ``Policy.promotion``: a Collector processor older than
    # the field, which refuses fields it does not know, still reads every rule that does not set it.
    ratio: float | None = Field(
        None,
        ge=1,
        allow_inf_nan=False,
        description="Relative rules on count data, instead of margin: breach when the canary's rate of "
        "bad outcomes (failures of a check, events per call of a score) is proven above ratio times "
        "stable's",
        exclude_if=lambda value: value is None,
    )
    action: RuleAction = Field(description="rollback, pause or alert")
    critical: bool = Field(False, description="Act as soon as it breaches, at any step")

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: object) -> object:
        if not isinstance(data, Mapping):
            return data
        signal, rule_type = data.get("signal"), data.get("type")
        filled = dict(data)
        if not filled.get("id") and isinstance(signal, str) and isinstance(rule_type, str):
            filled["id"] = f"{signal}.{rule_type}"
        if (
            rule_type == RuleType.RELATIVE
            and filled.get("margin") is None
            and "threshold" not in filled
            and filled.get("ratio") is None
        ):
            filled["margin"] = 0.0
        return filled

    @field_validator("id")
    @classmethod
    def _valid_id(cls, value: str) -> str:
        return _check_name(value, "rule id")

    @model_validator(mode="after")
    def _limit_matches_type(self) -> Rule:
        if self.type is RuleType.ABSOLUTE:
            if self.margin is not None:
                raise ValueError(
                    f"rule {self.id!r}: an absolute rule takes 'threshold', not 'margin' "
                    "(use type: relative to compare with stable traffic)"
                )
            if self.threshold is None:
                raise ValueError(f"rule {self.id!r}: an absolute rule needs a 'threshold'")
            if self.ratio is not None:
                raise ValueError(
                    f"rule {self.id!r}: an absolute rule takes 'threshold', not 'ratio' "
                    "(use type: relative to compare rates with stable traffic)"
                )
        else:
            if self.threshold is not None:
                raise ValueError(
                    f"rule {self.id!r}: a relative rule takes 'margin' (how much worse than stable "
                    "is tolerated), not 'threshold'"
                )
            if self.margin is not None and self.ratio is not None:
                raise ValueError(
                    f"rule {self.id!r}: a relative rule takes 'margin' (a difference) or 'ratio' (a "
                    "rate ratio), not both"
                )
            if self.margin is None and self.ratio is None:
                raise ValueError(f"rule {self.id!r}: a relative rule needs a 'margin' (0 or more)")
        return self

    @property
    def tolerance(self) -> float:
        """The margin of a relative rule (0 when unset); 0 for an absolute rule."""
        return self.margin or 0.0


class Statistics(_Model):
    """Tuning of the sequential test; the defaults suit most rollouts.

    ``target_samples`` is the number of samples per cohort around which the test proves a regression
    fastest (it centres the mixture on the regression an SPRT would prove quickest there); the test
    stays valid at every sample size, only its power moves.
    ``warmup_samples`` is how many samples each compared cohort needs before a rule may breach: the
    bound rests on a normal approximation, which needs a few dozen samples.
    """

    target_samples: int = Field(
        500, ge=1, le=_MAX_COUNT, description="Samples per cohort around which regressions are proven fastest"
    )
    warmup_samples: int = Field(
        30, ge=2, le=_MAX_COUNT, description="Samples each compared cohort needs before a rule may breach"
    )


class Gate(_Model):
    """A golden-set evaluation the candidate must pass before its rollout may start.

    ``rollout start`` reads the candidate's newest evaluation run on the newest version of
    ``dataset`` (``prompt-canary eval run``, docs/evaluations.md). The run must be complete and
    reach ``min_pass_rate`` (the share of cases that pass every expectation), each
    ``min_check_pass_rates`` entry (the share of the cases a check applied to that passed it) and
    ``min_judge_score`` (the mean score of the LLM judge). Compared case by case with the stable
    version's newest complete run on the same dataset version, no signal may be proven worse by
    more than ``max_regression`` (one-sided exact McNemar test for pass/fail signals, Wilcoxon
    signed-rank for the judge's score, each at ``alpha``); null compares nothing. The Collector
    processor reads and ignores it.
    """

    dataset: str = Field(
        description="The prompt's golden-set dataset (its newest version is the one evaluated)",
        json_schema_extra={"pattern": _NAME.pattern},
    )
    min_pass_rate: float | None = Field(
        None,
        ge=0,
        le=1,
        allow_inf_nan=False,
        description="Share of the cases that must pass every expectation (0..1); null: not checked",
    )
    min_check_pass_rates: dict[
        Annotated[str, Field(pattern=_SIGNAL_NAME.pattern)],
        Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)],
    ] = Field(
        default_factory=dict,
        description="Per check (json_valid, must_contain...): share of the cases it applied to that passed",
    )
    min_judge_score: float | None = Field(
        None, ge=0, le=1, allow_inf_nan=False, description="Mean LLM-judge score required; null: not checked"
    )
    max_regression: float | None = Field(
        0.0,
        ge=0,
        le=1,
        allow_inf_nan=False,
        description="Largest allowed drop against the stable version's run on the same cases, per signal "
        "(pass-rate or score points), once proven by a paired test; null: no comparison",
    )
    alpha: float = Field(
        0.05, gt=0, le=0.5, description="Level of each one-sided paired test of the comparison"
    )

    @field_validator("dataset")
    @classmethod
    def _valid_dataset(cls, value: str) -> str:
        return _check_name(value, "dataset name")


class Policy(_Model):
    """The canary policy of one prompt; see the module docstring for the document format."""

    alpha: float = Field(
        0.05,
        gt=0,
        le=0.5,
        description="Chance of any false breach over a whole rollout, shared equally by the rules",
    )
    ramp: Ramp = Field(default_factory=Ramp, description="Steps and their minimum duration/samples")
    signals: tuple[Signal, ...] = Field(description="The quality signals the rules judge")
    rules: tuple[Rule, ...] = Field(description="Rules, each with an action on breach")
    statistics: Statistics = Field(default_factory=Statistics, description="Tuning of the sequential test")
    # Left out of the document at its default, so that a Collector processor older than the field,
    # which refuses fields it does not know, still reads every policy that does not set it.
    promotion: Promotion = Field(
        Promotion.AUTOMATIC,
        description="automatic: the rollout controller walks the whole ramp and promotes the canary when "
        "the last step is ready; manual: it stops before the 100% step, and a person promotes",
        exclude_if=lambda value: value is Promotion.AUTOMATIC,
    )
    # Absent unless set, like promotion: older processors refuse fields they do not know.
    gate: Gate | None = Field(
        None,
        description="An evaluation the candidate must pass before rollout start (docs/evaluations.md)",
        exclude_if=lambda value: value is None,
    )

    @model_validator(mode="after")
    def _decidable(self) -> Policy:
        problems = _problems(self.signals, self.rules)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def signal(self, name: str) -> Signal:
        """The signal called ``name``."""
        for signal in self.signals:
            if signal.name == name:
                return signal
        raise InvalidInputError(f"the policy has no signal {name!r}")

    def is_critical(self, rule: Rule) -> bool:
        """True when ``rule`` acts at any step: the rule or its signal is critical."""
        return rule.critical or self.signal(rule.signal).critical

    @property
    def rule_alpha(self) -> float:
        """Each rule's share of ``alpha`` (Bonferroni), so that all rules together stay within it."""
        return self.alpha / len(self.rules)


def _problems(signals: tuple[Signal, ...], rules: tuple[Rule, ...]) -> list[str]:
    """Everything that keeps a policy from being decided, in document order."""
    if not signals:
        return ["a policy needs at least one signal: without signals there is nothing to judge"]
    if not rules:
        return ["a policy needs at least one rule: without rules nothing can breach"]
    problems = []
    by_name: dict[str, Signal] = {}
    for signal in signals:
        if signal.name in by_name:
            problems.append(f"signal {signal.name!r} is declared twice; signal names are unique")
        by_name.setdefault(signal.name, signal)
    seen: set[str] = set()
    for rule in rules:
        if rule.id in seen:
            problems.append(f"rule id {rule.id!r} is used twice; give the rules distinct 'id' values")
        seen.add(rule.id)
        judged_signal = by_name.get(rule.signal)
        if judged_signal is None:
            known = ", ".join(repr(n) for n in by_name)
            problems.append(
                f"rule {rule.id!r} names unknown signal {rule.signal!r}; the signals are: {known}"
            )
        elif judged_signal.kind is SignalKind.PROPORTION:
            problems.extend(_proportion_rule_problems(rule, judged_signal))
        elif rule.ratio is not None and judged_signal.harmful is Direction.DECREASE:
            problems.append(
                f"rule {rule.id!r} compares rates (ratio) on score {judged_signal.name!r}, which is harmful "
                "when it decreases: a ratio rule needs a score that counts bad events per call "
                "(harmful: increase)"
            )
    judged = {rule.signal for rule in rules}
    for signal in signals:
        if signal.name not in judged and not signal.must_have_data:
            problems.append(
                f"signal {signal.name!r} is judged by no rule and is not must_have_data: "
                "add a rule on it or remove it"
            )
    return problems


def _proportion_rule_problems(rule: Rule, signal: Signal) -> list[str]:
    where = f"rule {rule.id!r} on proportion signal {signal.name!r}"
    if rule.type is RuleType.RELATIVE:
        if rule.tolerance >= 1:
            return [f"{where}: margin {rule.margin} can never be exceeded; a proportion margin is in [0, 1)"]
        return []
    threshold = rule.threshold
    assert threshold is not None  # guaranteed by Rule's own validation
    if not 0 <= threshold <= 1:
        return [f"{where}: threshold {threshold} is outside [0, 1]"]
    if signal.harmful is Direction.DECREASE and threshold == 0:
        return [f"{where}: a proportion can never be proven below 0; raise the threshold"]
    if signal.harmful is Direction.INCREASE and threshold == 1:
        return [f"{where}: a proportion can never be proven above 1; lower the threshold"]
    return []


#: The default policy, as a document (see ``docs/judge.md`` for why it looks like this).
DEFAULT_POLICY_YAML: Final = """\
# Default canary policy. A check's True is its good outcome ("passed"), so every check signal is
# harmful when it decreases. Roll back on a proven drop of JSON validity or of the answer rate
# (refusal passes when the model did not refuse); pause on a proven drop of the LLM judge's score.
# A signal without data (no JSON asked for, no judge configured) never blocks a step.
alpha: 0.05
ramp:
  steps: [1, 5, 20, 50, 100]
  min_duration_seconds: 600
  min_samples: 100
signals:
  - name: json_valid
    kind: proportion
    harmful: decrease
  - name: refusal
    kind: proportion
    harmful: decrease
  - name: judge
    kind: mean
    harmful: decrease
rules:
  - signal: json_valid
    type: relative
    margin: 0.01
    action: rollback
    critical: true
  - signal: refusal
    type: relative
    margin: 0.01
    action: rollback
    critical: true
  - signal: judge
    type: relative
    margin: 0.05
    action: pause
statistics:
  target_samples: 500
  warmup_samples: 30
"""


def _read_source(source: str | os.PathLike[str]) -> tuple[str, str]:
    """Return ``(text, where)`` for a path or a document given inline."""
    if isinstance(source, os.PathLike):
        path = Path(source)
    elif "\n" not in source and source.strip().endswith((".yaml", ".yml", ".json")):
        path = Path(source.strip())
    else:
        return source, "policy"
    try:
        return path.read_text(encoding="utf-8"), f"policy {str(path)!r}"
    except FileNotFoundError:
        raise InvalidInputError(f"policy file {str(path)!r} does not exist") from None
    except OSError as exc:
        raise InvalidInputError(f"cannot read policy file {str(path)!r}: {exc}") from exc


def _parse(text: str, where: str) -> object:
    if text.lstrip().startswith("{"):
        try:
            return json.loads(text)
        except ValueError:
            pass  # maybe a YAML flow mapping: {signals: [...], ...}
    try:
        return load_yaml(text)
    except YamlLimitError as exc:
        raise InvalidInputError(f"invalid {where}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise InvalidInputError(f"invalid {where}: not valid YAML or JSON: {exc}") from exc


def load_policy(source: str | os.PathLike[str] | Mapping[str, Any]) -> Policy:
    """Read and validate a policy.

    ``source`` is a path (a :class:`os.PathLike`, or a one-line string ending in ``.yaml``, ``.yml`` or
    ``.json``), the YAML or JSON text itself, or an already parsed mapping. Raises
    :class:`~otel_prompt_canary.errors.InvalidInputError` naming every problem and where it is.
    """
    where = "policy"
    if isinstance(source, Mapping):
        data: object = source
    else:
        text, where = _read_source(source)
        data = _parse(text, where)
    if not isinstance(data, Mapping):
        raise InvalidInputError(
            f"invalid {where}: expected a mapping with 'signals' and 'rules', got {type(data).__name__}"
        )
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        raise InvalidInputError(f"invalid {where}: {describe_validation_errors(exc.errors())}") from exc


def policy_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a policy document."""
    schema = Policy.model_json_schema(mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **schema,
        "title": "otel-prompt-canary policy",
    }


#: The default policy, parsed from :data:`DEFAULT_POLICY_YAML`.
DEFAULT_POLICY: Final[Policy] = load_policy(DEFAULT_POLICY_YAML)
