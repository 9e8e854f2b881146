"""``prompt-canary policy``: write a starter policy, validate a policy, print its JSON Schema or the
default, turn it into rules.

A policy file is YAML or JSON (``-`` for stdin); an invalid one exits 2 with every problem named,
led by the file's name. ``policy init`` writes a starter policy watching the checks and scores the
application's instrumentation runs, read from the same settings the instrumentation reads
(``OTEL_PROMPT_CANARY_CHECKS``, ``OTEL_PROMPT_CANARY_SCORING``, ``OTEL_PROMPT_CANARY_JUDGE_ENDPOINT``)
or given as options.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from otel_prompt_canary.analysis.policy import DEFAULT_POLICY_YAML, Ramp, load_policy, policy_json_schema
from otel_prompt_canary.analysis.prometheus import prometheus_rules
from otel_prompt_canary.analysis.starter import starter_policy
from otel_prompt_canary.cli.files import file_name, load_policy_document, naming_the_file
from otel_prompt_canary.cli.group import Group, State, fail_input, json_option
from otel_prompt_canary.cli.output import count, print_json, ramp_text
from otel_prompt_canary.loop.start import resolve_rollout_policy

__all__ = ["policy"]


@click.group(cls=Group)
def policy() -> None:
    """Validate canary policies, print their JSON Schema, turn them into Prometheus rules."""


@policy.command("validate")
@click.argument("file", metavar="FILE")
@click.option(
    "--ramp",
    default=None,
    help="Also check this ramp against the policy's ramp.steps, as `rollout start --ramp` would.",
)
@json_option
@click.pass_obj
def policy_validate(state: State, file: str, ramp: str | None) -> None:
    """Check the policy in FILE (YAML or JSON; - for stdin); exit 2 naming every problem.

    With --json, prints the policy as a rollout would store it (every field explicit).
    """
    document = load_policy_document(file)
    with naming_the_file(file):
        resolved = resolve_rollout_policy(document, ramp)
    if state.as_json:
        print_json(resolved.document)
        return
    p = resolved.policy
    rules = ", ".join(f"{r.id} -> {r.action}" for r in p.rules)
    click.echo(
        f"{file_name(file)}: valid policy: {count(len(p.signals), 'signal')}, {count(len(p.rules), 'rule')} "
        f"({rules}); {_ramp_summary(p.ramp)}; alpha {p.alpha:g}"
    )


def _ramp_summary(ramp: Ramp) -> str:
    """``ramp 1%, 100%, each step at least 600 s and 100 samples per cohort``; each step's own
    minimums when they differ: ``ramp 1% (4h, 500 samples), 100% (10m, 100 samples), ...``."""
    minimums = [(ramp.min_duration_at(i), ramp.min_samples_at(i)) for i in range(len(ramp.steps))]
    if len(set(minimums)) == 1:
        duration, samples = minimums[0]
        return (
            f"ramp {ramp_text(ramp.percents, None)}, each step at least {duration:g} s and {samples} "
            "samples per cohort"
        )
    steps = ", ".join(
        f"{percent:g}% ({_duration_text(duration)}, {count(samples, 'sample')})"
        for percent, (duration, samples) in zip(ramp.percents, minimums, strict=True)
    )
    return f"ramp {steps}: each step's minimum duration and samples per cohort"


def _duration_text(seconds: float) -> str:
    """``4h``, ``1h30m``, ``45s``: as a policy writes a step's duration (``90.5 s`` with a fraction)."""
    if seconds != int(seconds):
        return f"{seconds:g} s"
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{n}{unit}" for n, unit in ((hours, "h"), (minutes, "m"), (secs, "s")) if n]
    return "".join(parts) or "0s"


def _check_list(_ctx: click.Context, _param: click.Parameter, value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    if value.strip().lower() == "none":
        return ()
    return tuple(part.strip() for part in value.split(",") if part.strip())


@policy.command("init")
@click.argument("file", metavar="FILE")
@click.option(
    "--checks",
    envvar="OTEL_PROMPT_CANARY_CHECKS",
    show_envvar=True,
    callback=_check_list,
    metavar="LIST",
    help="The built-in checks the application runs, as the instrumentation names them: json_valid, "
    "max_output_tokens, truncation, refusal, escalation, output_tokens (a score); none for none. "
    "Default: the instrumentation's default set.",
)
@click.option(
    "--scoring",
    "scoring_file",
    envvar="OTEL_PROMPT_CANARY_SCORING",
    show_envvar=True,
    type=click.Path(dir_okay=False),
    help="The application's scoring settings file (docs/checks.md): its checks and scores are watched.",
)
@click.option("--prompt", "prompt_name", help="Use the scoring settings' overrides for this prompt.")
@click.option(
    "--judge/--no-judge",
    default=None,
    help="The application runs the LLM judge (default: when OTEL_PROMPT_CANARY_JUDGE_ENDPOINT is set "
    "or the scoring settings configure it).",
)
@click.option("--force", is_flag=True, help="Overwrite FILE if it exists.")
def policy_init(
    file: str,
    checks: tuple[str, ...] | None,
    scoring_file: str | None,
    prompt_name: str | None,
    judge: bool | None,
    force: bool,
) -> None:
    """Write a starter policy to FILE (- for stdout) watching the signals the application turns on.

    The signals are the checks and scores the instrumentation runs with the same settings: --checks
    (or OTEL_PROMPT_CANARY_CHECKS), --scoring (or OTEL_PROMPT_CANARY_SCORING) and the judge. Each
    gets a rule in the spirit of the default policy; edit the file, then give it to
    `rollout start --policy`.
    """
    # The instrumentation's own reading of its settings: the policy watches what the app will run.
    from otel_prompt_canary.instrumentation import InstrumentationConfig, settings_of

    config = InstrumentationConfig(scoring=scoring_file, checks=checks)
    scoring = settings_of(config).for_prompt(prompt_name)
    scores = scoring.score_names()
    if judge is None:
        judge = bool(os.environ.get("OTEL_PROMPT_CANARY_JUDGE_ENDPOINT", "").strip()) or "judge" in scores
    scores = [s for s in scores if s != "judge"] + (["judge"] if judge else [])
    text = starter_policy(scoring.check_names(), scores, prompt=prompt_name)
    signals = load_policy(text).signals  # a starter always loads; say what it watches
    summary = ", ".join(s.name for s in signals)
    if file == "-":
        click.echo(text, nl=False)
        return
    target = Path(file)
    if target.exists() and not force:
        fail_input(f"{file} exists: give --force to overwrite it, or another FILE")
    try:
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail_input(f"cannot write {file}: {exc.strerror or exc}")
    click.echo(
        f"{file}: starter policy watching {summary}; edit it, then "
        f"`prompt-canary rollout start NAME VERSION --policy {file} --reason ...`"
    )


@policy.command("schema")
def policy_schema() -> None:
    """Print the JSON Schema of a policy document (draft 2020-12)."""
    click.echo(json.dumps(policy_json_schema(), indent=2, sort_keys=True))


@policy.command("default")
def policy_default() -> None:
    """Print the default policy, the one a rollout without --policy gets (YAML, to copy and edit)."""
    click.echo(DEFAULT_POLICY_YAML, nl=False)


def _score_range(
    _ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
) -> dict[str, tuple[float, float]]:
    ranges: dict[str, tuple[float, float]] = {}
    for value in values:
        name, _, span = value.partition("=")
        lo, _, hi = span.partition(":")
        try:
            ranges[name] = (float(lo), float(hi))
        except ValueError:
            raise click.BadParameter(
                f"{value!r}: write NAME=LO:HI, for example output_tokens=0:4096"
            ) from None
    return ranges


@policy.command("rules")
@click.argument("file", metavar="FILE")
@click.option("--prompt", "prompt_name", required=True, help="The prompt whose canaries the rules judge.")
@click.option(
    "--horizon",
    default="24h",
    show_default=True,
    help="How far back a canary's samples count (longer than a rollout).",
)
@click.option(
    "--resolution",
    default="5m",
    show_default=True,
    help="Step in which stable traffic counts as concurrent: at least four scrape intervals.",
)
@click.option(
    "--for",
    "act_after",
    default="1m",
    show_default=True,
    help="How long a critical rule must stay proven before its alert fires (others wait a ramp step).",
)
@click.option(
    "--score-range",
    "score_ranges",
    multiple=True,
    callback=_score_range,
    metavar="NAME=LO:HI",
    help="Range of a score's values, 0 <= LO < HI (judge and user_feedback: 0:1); repeat per score.",
)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Write here, not to stdout."
)
def policy_rules(
    file: str,
    prompt_name: str,
    horizon: str,
    resolution: str,
    act_after: str,
    score_ranges: dict[str, tuple[float, float]],
    output: str | None,
) -> None:
    """Print Prometheus rules that judge PROMPT's canaries by the policy in FILE (- for stdin).

    One alert per policy rule, with the judge's confidence bound, labelled for the control plane's
    Alertmanager receiver (docs/dashboards.md, "Rules from your policy").
    """
    with naming_the_file(file):
        parsed = load_policy(load_policy_document(file))
    text = prometheus_rules(  # a bad --horizon, --for, ... exits 2 through the group, unprefixed
        parsed,
        prompt_name,
        horizon=horizon,
        resolution=resolution,
        act_after=act_after,
        score_ranges=score_ranges,
    )
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        Path(output).write_text(text, encoding="utf-8")
    except OSError as exc:
        fail_input(f"cannot write {output}: {exc.strerror or exc}")
