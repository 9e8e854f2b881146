"""``prompt-canary prompt``: push a spec as a new version, list prompts, show a version, diff two.

``list`` and ``show`` show the routing flags of one environment: ``--environment``, else
``OTEL_PROMPT_CANARY_ENVIRONMENT``, else ``production`` (docs/environments.md); versions and
reviews belong to no environment.
"""

from __future__ import annotations

import json

import click

from otel_prompt_canary.cli.eval import comparison_lines
from otel_prompt_canary.cli.eval_store import eval_store
from otel_prompt_canary.cli.files import load_spec
from otel_prompt_canary.cli.group import Group, State, common_options, default_actor, fail_input
from otel_prompt_canary.cli.options import ENVIRONMENT_OPTION
from otel_prompt_canary.cli.output import format_fields, format_table, percent, print_json, time_text
from otel_prompt_canary.cli.review import REVIEW_COMMANDS
from otel_prompt_canary.errors import InvalidInputError, NotFoundError
from otel_prompt_canary.evals.baselines import version_comparisons
from otel_prompt_canary.evals.comparison import RunComparison
from otel_prompt_canary.names import DEFAULT_ENVIRONMENT
from otel_prompt_canary.registry.bounds import MAX_VERSION, parse_version, shown
from otel_prompt_canary.registry.models import PromptSummary, PromptVersion, Route, validate_prompt_name

__all__ = ["prompt"]

_SUMMARY_HEADERS = ("NAME", "LATEST", "VERSIONS", "STABLE", "CANARY", "WEIGHT", "STATE", "REVISION")


@click.group(cls=Group)
def prompt() -> None:
    """Push and inspect prompt versions."""


@prompt.command("push")
@click.argument("file", metavar="FILE")
@click.option("--author", help="Author recorded when the spec names none (default: $USER).")
@common_options
@click.pass_obj
def prompt_push(state: State, file: str, author: str | None) -> None:
    """Store the prompt spec in FILE (YAML or JSON; - for stdin) as a new version.

    Pushing content identical to an existing version stores nothing and names that version.
    """
    spec = load_spec(file)
    result = state.registry().push(spec, author=author or default_actor())
    if state.as_json:
        print_json(result)
        return
    note = "new" if result.created else "unchanged: identical content"
    click.echo(f"{result.version.ref} ({note})")


@prompt.command("list")
@click.option("--limit", type=click.IntRange(min=1), help="Only the first N prompts, by name.")
@ENVIRONMENT_OPTION
@common_options
@click.pass_obj
def prompt_list(state: State, limit: int | None, environment: str) -> None:
    """List prompts with their newest version and routing state in the environment, by name.

    From a control plane, every page of the list is read (the first N prompts with --limit).
    """
    summaries = state.registry().list_prompts(limit=limit, environment=environment)
    if state.as_json:
        print_json(summaries)
        return
    if not summaries:
        click.echo("no prompts yet: push one with `prompt-canary prompt push FILE`")
        return
    if environment != DEFAULT_ENVIRONMENT:  # users of one environment never name it
        click.echo(f"routing flags in {environment}")
    click.echo(format_table(_SUMMARY_HEADERS, (_summary_row(s) for s in summaries)))


def _summary_row(s: PromptSummary) -> tuple[object, ...]:
    r = s.route
    canary = r.canary_version
    weight = percent(r.canary_weight_bp) if canary is not None else None
    return (s.name, s.latest_version, s.versions, r.stable_version, canary, weight, r.state, r.revision)


@prompt.command("show")
@click.argument("ref", metavar="NAME[@VERSION]")
@ENVIRONMENT_OPTION
@common_options
@click.pass_obj
def prompt_show(state: State, ref: str, environment: str) -> None:
    """Show one version (the newest without @VERSION) and the prompt's routing flag in the
    environment: whether the version is stable or the canary there. With --json, the version
    only (`rollout status --json` gives the flag)."""
    name, version = _parse_ref(ref)
    registry = state.registry()
    v = registry.get_version(name, version)
    if state.as_json:
        print_json(v)
        return
    click.echo(_describe_version(v, registry.get_route(name, environment=environment)))


def _parse_ref(ref: str) -> tuple[str, int | None]:
    name, sep, version = ref.rpartition("@")
    if not sep:
        return validate_prompt_name(ref), None
    validate_prompt_name(name)
    try:
        return name, parse_version(version)
    except InvalidInputError:
        fail_input(
            f"invalid version {shown(version)} in {shown(ref)}: give NAME, NAME@N (N from 1 to "
            f"{MAX_VERSION}, in ASCII digits) or NAME@latest"
        )


def _flag_text(v: PromptVersion, route: Route) -> str:
    """The routing flag in one environment, and this version's part in it."""
    canary = route.canary_version is not None and route.state.active
    if route.stable_version == v.version:
        role = "this version is stable"
    elif canary and route.canary_version == v.version:
        role = f"this version is the canary at {percent(route.canary_weight_bp)}"
    else:
        role = "this version is not routed"
    flow = f"stable v{route.stable_version}"
    if canary:
        flow += f", canary v{route.canary_version} at {percent(route.canary_weight_bp)}"
    return f"{route.environment}: {route.state}, {flow} [revision {route.revision}]; {role}"


def _describe_version(v: PromptVersion, route: Route) -> str:
    env = {k: val for k, val in v.environment.model_dump().items() if val is not None}
    lines = format_fields(
        [
            ("version", f"{v.ref}  {v.content_hash}"),
            ("flag", _flag_text(v, route)),
            ("created", time_text(v.created_at) + (f" by {v.author}" if v.author else "")),
            ("commit", v.commit_message or "-"),
            ("model", v.model or "-"),
            ("config", json.dumps(v.config, sort_keys=True) if v.config else "-"),
            ("environment", ", ".join(f"{k}={val}" for k, val in env.items()) or "-"),
            ("variables", ", ".join(v.variables) or "-"),
            ("output", _output_text(v)),
        ]
    )
    if v.template is not None:
        lines += ["", f"--- template ({v.template_role}) ---", v.template.rstrip("\n")]
    else:
        for i, m in enumerate(v.messages or ()):
            lines += ["", f"--- message {i} ({m.role}) ---", m.content.rstrip("\n")]
    if v.output is not None and v.output.json_schema is not None:
        schema = json.dumps(v.output.json_schema, indent=2, sort_keys=True, ensure_ascii=False)
        lines += ["", "--- output schema ---", schema]
    return "\n".join(lines)


def _output_text(v: PromptVersion) -> str:
    """The output contract in a few words: what the checks hold every answer to."""
    if v.output is None:
        return "-"
    if v.output.json_schema is None:
        return v.output.format
    return f"{v.output.format}, matching the schema below"


@prompt.command("diff")
@click.argument("name")
@click.argument("a", type=click.IntRange(min=1))
@click.argument("b", type=click.IntRange(min=1))
@common_options
@click.pass_obj
def prompt_diff(state: State, name: str, a: int, b: int) -> None:
    """Show what changed from version A to version B: a summary line, then unified diffs, then
    their evaluations side by side (B's newest run against A's, per dataset both ran)."""
    d = state.registry().diff(validate_prompt_name(name), a, b)
    evaluations = _evaluations(state, name, a, b)
    if state.as_json:
        print_json(d.model_dump(mode="json") | {"evaluations": evaluations})
        return
    click.echo(d.summary)
    for part in (d.template_diff, d.config_diff):
        if part:
            click.echo("")
            click.echo(part.rstrip("\n"))
    for comparison in evaluations:
        base, head = comparison.baseline, comparison.candidate
        title = (
            f"Evaluations on {head.dataset}@{head.dataset_version}: v{base.version} (run {base.run_id}) "
            f"-> v{head.version} (run {head.run_id}), {comparison.paired_cases} cases paired"
        )
        click.echo("")
        click.echo("\n".join(comparison_lines(comparison, title=title)))


def _evaluations(state: State, name: str, a: int, b: int) -> list[RunComparison]:
    """The two versions' runs compared (none from a control plane older than evaluations)."""
    try:
        return version_comparisons(eval_store(state), name, a, b)
    except NotFoundError:
        return []


# Reviews of a version (approve, request-changes, reviews) live in their own module.
for _command in REVIEW_COMMANDS:
    prompt.add_command(_command)
