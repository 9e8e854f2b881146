"""Starter policies: a first policy that watches only the signals an application produces.

``prompt-canary policy init`` writes one from the checks and scores the application's scoring runs
(docs/cli.md says how it finds them). Each known signal comes with a rule that suits it, in the
spirit of the default policy (docs/judge.md): relative to concurrent stable traffic, rollback at once
on user-visible failures (broken JSON, refusals, flagged outputs), pause for a person on noisier or
costlier signals. A check or score it does not know gets a cautious ``pause`` rule and a comment
asking for a look. No signal is ``must_have_data``: a signal without data never blocks a step, and
a rollout cannot require data that was never reported for its prompt (``rollout start`` refuses it).

The document is YAML with comments, meant to be read and edited; :func:`starter_policy` returns it
and it always loads with :func:`~otel_prompt_canary.analysis.policy.load_policy`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from otel_prompt_canary.errors import InvalidInputError

__all__ = ["starter_policy"]


@dataclass(frozen=True, slots=True)
class _Watch:
    """How a starter policy watches one signal: what it is, which way is worse, its rule."""

    what: str
    harmful: str
    margin: float
    action: str
    critical: bool
    why: str


#: Checks (proportions of "passed"): every one is harmful when it decreases.
_CHECKS: Final[dict[str, _Watch]] = {
    "json_valid": _Watch(
        "the output parses as JSON",
        "decrease",
        0.01,
        "rollback",
        True,
        "broken JSON breaks the caller: act at once",
    ),
    "json_schema": _Watch(
        "the output is valid against your schema",
        "decrease",
        0.01,
        "rollback",
        True,
        "an answer of the wrong shape breaks the caller: act at once",
    ),
    "refusal": _Watch(
        "the model answered rather than refused",
        "decrease",
        0.01,
        "rollback",
        True,
        "a model that starts refusing fails users: act at once",
    ),
    "safety": _Watch(
        "the classifier did not flag the output",
        "decrease",
        0.005,
        "rollback",
        True,
        "more flagged outputs must not wait for the end of a step",
    ),
    "truncation": _Watch(
        "no answer was cut at the token limit",
        "decrease",
        0.01,
        "rollback",
        False,
        "cut-off answers fail users; judged at step boundaries",
    ),
    "max_output_tokens": _Watch(
        "the answer stayed within its token budget",
        "decrease",
        0.02,
        "pause",
        False,
        "longer answers cost more: a person decides",
    ),
    "escalation": _Watch(
        "the model kept the conversation rather than handing it to a person",
        "decrease",
        0.02,
        "pause",
        False,
        "more hand-overs cost people's time: a person decides",
    ),
}

#: Scores (means of a number).
_SCORES: Final[dict[str, _Watch]] = {
    "judge": _Watch(
        "the LLM judge's grade in [0, 1], sampled",
        "decrease",
        0.05,
        "pause",
        False,
        "a sampled grader is noisy: a proven drop pauses for a person",
    ),
    "output_tokens": _Watch(
        "output tokens per answer",
        "increase",
        100,
        "alert",
        False,
        "answers more than 100 tokens longer on average: tell someone",
    ),
}

_UNKNOWN_CHECK = _Watch(
    "your check (True passes)",
    "decrease",
    0.01,
    "pause",
    False,
    "a check this command does not know: review it",
)
_UNKNOWN_SCORE = _Watch(
    "your score",
    "decrease",
    0.05,
    "pause",
    False,
    "a score this command does not know: review its direction and margin",
)

_HEADER = """\
# Starter canary policy{for_prompt}, written by `prompt-canary policy init`.
# It watches the signals the application turns on: {watched}.
# Edit it (docs/judge.md explains every field), check it with `prompt-canary policy validate FILE`,
# then start a canary with `prompt-canary rollout start NAME VERSION --policy FILE --reason "..."`.
# No signal is must_have_data, so a signal without data never blocks a step. Once a signal has been
# reported for the prompt, `must_have_data: true` makes every step wait for its samples.
alpha: 0.05                      # chance of any false breach over a whole rollout, all rules together
ramp:
  steps: [1, 5, 20, 50, 100]     # percent of traffic on the canary at each step
  min_duration_seconds: 600      # each step runs at least 10 minutes...
  min_samples: 100               # ...and sees at least 100 samples in each cohort
"""

_FOOTER = """\
statistics:
  target_samples: 500            # canary samples at which the bound is tightest
  warmup_samples: 30             # samples each compared cohort needs before a rule may breach
"""


def _number(value: float) -> str:
    return f"{value:g}"


def _line(code: str, comment: str | None = None) -> str:
    """A line of YAML, its comment (if any) in the column of the header's comments."""
    return code if comment is None else f"{code:<32} # {comment}"


def starter_policy(checks: Iterable[str], scores: Iterable[str], *, prompt: str | None = None) -> str:
    """The starter policy (YAML) watching ``checks`` (proportions) and ``scores`` (means).

    Raises :class:`~otel_prompt_canary.errors.InvalidInputError` when there is nothing to watch.
    """
    watched = [(name, "proportion", _CHECKS.get(name, _UNKNOWN_CHECK)) for name in dict.fromkeys(checks)]
    watched += [(name, "mean", _SCORES.get(name, _UNKNOWN_SCORE)) for name in dict.fromkeys(scores)]
    if not watched:
        raise InvalidInputError(
            "no check or score is turned on, so a policy would have nothing to watch: name the "
            "application's checks (--checks json_valid,refusal) or turn the judge on (--judge)"
        )
    listed = ", ".join(
        f"{name} ({'check' if kind == 'proportion' else 'score'})" for name, kind, _ in watched
    )
    header = _HEADER.format(for_prompt=f" for prompt {prompt!r}" if prompt else "", watched=listed)
    lines = [header.rstrip("\n"), "signals:"]
    for name, kind, watch in watched:
        prefix = "check" if kind == "proportion" else "score"
        lines += [
            _line(f"  - name: {name}", f"prompt_canary.{prefix}.{name}: {watch.what}"),
            f"    kind: {kind}",
            f"    harmful: {watch.harmful}",
        ]
    lines.append("rules:")
    for name, _kind, watch in watched:
        side = "worse" if watch.harmful == "decrease" else "higher"
        lines += [
            _line(f"  - signal: {name}", watch.why),
            _line("    type: relative", f"canary {side} than stable by more than the margin"),
            f"    margin: {_number(watch.margin)}",
            f"    action: {watch.action}",
        ]
        if watch.critical:
            lines.append(_line("    critical: true", "acts as soon as it is proven, at any step"))
    return "\n".join(lines) + "\n" + _FOOTER
