"""``prompt-canary policy``: validate a policy, print its JSON Schema or the default, turn it into rules.

A policy file is YAML or JSON (``-`` for stdin); an invalid one exits 2 with every problem named,
led by the file's name.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from otel_prompt_canary.analysis.policy import DEFAULT_POLICY_YAML, load_policy, policy_json_schema
from otel_prompt_canary.analysis.prometheus import prometheus_rules
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
        f"({rules}); "
        f"ramp {ramp_text(p.ramp.steps, None)}, each step at least "
        f"{p.ramp.min_duration_seconds:g} s and {p.ramp.min_samples} samples per cohort; alpha {p.alpha:g}"
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
