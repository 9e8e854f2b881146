"""``prompt-canary rollout``: start a rollout, show its status and verdict, move it, read its audit trail.

``advance``, ``pause``, ``resume``, ``promote``, ``rollback`` and ``revert`` are one command each,
made by :func:`_transition_command`: each flips the routing flag with a reason for the audit log.
Every command acts in one environment: ``--environment``, else ``OTEL_PROMPT_CANARY_ENVIRONMENT``,
else ``production`` (docs/environments.md).
"""

from __future__ import annotations

import json
from typing import Any

import click

from otel_prompt_canary.cli.files import load_policy_document, naming_the_file
from otel_prompt_canary.cli.group import Group, State, common_options, default_actor, fail_input
from otel_prompt_canary.cli.options import ENVIRONMENT_OPTION, environment_name
from otel_prompt_canary.cli.output import (
    format_fields,
    format_table,
    percent,
    print_json,
    ramp_text,
    time_text,
)
from otel_prompt_canary.cli.verdict import read_verdict, verdict_fields
from otel_prompt_canary.errors import InvalidInputError
from otel_prompt_canary.loop.start import resolve_rollout_policy, start_rollout
from otel_prompt_canary.names import DEFAULT_ENVIRONMENT
from otel_prompt_canary.registry.models import (
    Action,
    AuditRecord,
    Rollout,
    RolloutState,
    Route,
    validate_prompt_name,
)

__all__ = ["rollout"]


@click.group(cls=Group)
def rollout() -> None:
    """Start, inspect and move rollouts (the routing flag of a prompt)."""


_ACTOR_OPTION = click.option(
    "--actor",
    default=default_actor,
    show_default="$USER or 'cli'",
    help="Who asks for the change, for the audit log.",
)
_REVISION_OPTION = click.option(
    "--expected-revision",
    type=click.IntRange(min=1),
    help="Apply only if the routing flag is still at this revision (compare-and-set).",
)


def _route_line(route: Route) -> str:
    if route.state.active and route.canary_version is not None:
        steps = len(route.ramp)
        flow = (
            f"v{route.canary_version} at {percent(route.canary_weight_bp)} "
            f"(step {route.step + 1}/{steps}), stable v{route.stable_version}"
        )
    else:
        flow = f"stable v{route.stable_version}, no canary"
    where = "" if route.environment == DEFAULT_ENVIRONMENT else f" in {route.environment}"
    return f"{route.prompt}{where}: {route.state}, {flow} [revision {route.revision}]"


@rollout.command("start")
@click.argument("name")
@click.argument("version", type=click.IntRange(min=1), required=False)
@click.option(
    "--ramp",
    default=None,
    show_default="the policy's ramp.steps, else 1,5,20,50,100",
    help="Canary percentages, strictly increasing, ending at 100; must agree with the policy's "
    "ramp.steps when the policy gives them.",
)
@click.option("--reason", required=True, help="Why (required: it goes to the audit log).")
@click.option(
    "--policy",
    "policy_file",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="The rollout's policy (YAML or JSON; - for stdin), validated and stored with the rollout. "
    "Default: the default policy.",
)
@click.option(
    "--skip-gate",
    is_flag=True,
    help="Start even if VERSION does not pass the policy's evaluation gate; the audit trail records "
    "it with --reason.",
)
@click.option(
    "--from-environment",
    callback=environment_name,
    help="Promote: the candidate is the version stable in this environment (the one before "
    "--environment in the control plane's order); VERSION may then be left out.",
)
@ENVIRONMENT_OPTION
@_ACTOR_OPTION
@_REVISION_OPTION
@common_options
@click.pass_obj
def rollout_start(
    state: State,
    name: str,
    version: int | None,
    ramp: str | None,
    reason: str,
    policy_file: str | None,
    skip_gate: bool,
    from_environment: str | None,
    environment: str,
    actor: str,
    expected_revision: int | None,
) -> None:
    """Start canarying VERSION of NAME along the ramp, judged by a policy.

    With --from-environment, promote between environments: the candidate is the version stable
    there (for example `--environment production --from-environment staging`), and the audit
    trail says where it came from.

    The policy is validated before anything is written; without --policy the default policy
    applies. Either way the policy is stored with the rollout. A policy with a `gate:` needs a
    passing evaluation of VERSION (`prompt-canary eval run`, docs/evaluations.md): without one the
    start is refused, saying which run is missing or which cases failed, unless --skip-gate.
    """
    validate_prompt_name(name)
    _check_reason(reason)
    if version is None and from_environment is None:
        fail_input("give VERSION, or --from-environment to promote the version stable there")
    policy = load_policy_document(policy_file) if policy_file else None
    with naming_the_file(policy_file):
        resolved = resolve_rollout_policy(policy, ramp)
    route = start_rollout(
        state.registry(),
        name,
        version,
        policy=resolved,
        actor=actor,
        reason=reason,
        expected_revision=expected_revision,
        skip_gate=skip_gate,
        environment=environment,
        from_environment=from_environment,
    )
    if state.as_json:
        print_json(route)
        return
    click.echo(f"started rollout {route.rollout_id}")
    click.echo(_route_line(route))


@rollout.command("status")
@click.argument("name")
@ENVIRONMENT_OPTION
@common_options
@click.pass_obj
def rollout_status(state: State, name: str, environment: str) -> None:
    """Show the routing flag of NAME, its current (or last) rollout and the judge's verdict.

    For an active rollout the verdict says whether the step is ready, what it waits for and which
    rules are proven, with their evidence. With --json, prints the routing flag (the same object as
    in GET /v1/routes) and, under "verdict", the document of GET .../rollout/verdict (null without an
    active rollout).
    """
    registry = state.registry()
    route = registry.get_route(validate_prompt_name(name), environment=environment)
    problem: str | None = None
    try:
        verdict = read_verdict(registry, route)
    except InvalidInputError as exc:  # a stored policy no judge can apply: show the rest anyway
        verdict, problem = None, str(exc)
    if state.as_json:
        document = route.model_dump(mode="json") | {
            "verdict": None if verdict is None else verdict.model_dump(mode="json")
        }
        if problem is not None:
            document["verdict_error"] = problem
        print_json(document)
        return
    current: Rollout | None = None
    if route.rollout_id is not None:
        current = registry.get_rollout(name, route.rollout_id, environment=route.environment)
    rows = _status_fields(route, current)
    if verdict is not None:
        rows += verdict_fields(verdict)
    elif problem is not None:
        rows.append(("verdict", f"cannot judge: {problem}"))
    click.echo("\n".join(format_fields(rows)))


def _status_fields(route: Route, current: Rollout | None) -> list[tuple[str, str]]:
    step = f" (step {route.step + 1}/{len(route.ramp)})" if route.state.active else ""
    canary = "-"
    if route.canary_version is not None:
        canary = f"v{route.canary_version} at {percent(route.canary_weight_bp)} ({route.canary_weight_bp} bp)"
    rows: list[tuple[str, str]] = [
        ("prompt", route.prompt),
        ("state", f"{route.state}{step}"),
        ("stable", f"v{route.stable_version}"),
        ("canary", canary),
    ]
    if route.environment != DEFAULT_ENVIRONMENT:  # users of one environment never name it
        rows.insert(1, ("environment", route.environment))
    if current is not None:
        ended = f", ended {time_text(current.ended_at)}" if current.ended_at else ""
        rows += [
            (
                "rollout",
                f"{current.rollout_id}: v{current.baseline_version} -> "
                f"v{current.candidate_version}, started {time_text(current.started_at)} "
                f"by {current.started_by}{ended}",
            ),
            ("ramp", ramp_text(current.ramp, route.step if route.state.active else None)),
        ]
    rows.append(("revision", f"{route.revision} (updated {time_text(route.updated_at)})"))
    return rows


_TRANSITION_HELP: dict[Action, str] = {
    Action.ADVANCE: "Move the canary of NAME to the next ramp step.",
    Action.PAUSE: "Pause the rollout of NAME (the canary keeps its current weight).",
    Action.RESUME: "Resume a paused rollout of NAME.",
    Action.PROMOTE: "Make the canary of NAME the stable version.",
    Action.ROLLBACK: "Roll back the canary of NAME: weight 0, never routed again.",
    Action.REVERT: "Undo the promotion of NAME: everyone back on the previous stable version.\n\n"
    "The flag becomes rolled_back: the promoted candidate is never routed again under that "
    "rollout. --to routes everyone to another existing version instead.",
}

_TO_OPTION = click.option(
    "--to",
    "to_version",
    type=click.IntRange(min=1),
    help="The version everyone goes back to (default: the stable version before the promotion).",
)


def _check_reason(reason: str) -> None:
    if not reason.strip():
        fail_input("--reason must not be empty: it goes to the audit log")


def _transition_command(action: Action) -> click.Command:
    @click.argument("name")
    @click.option("--reason", required=True, help="Why (required: it goes to the audit log).")
    @click.option("--evidence", help="Supporting evidence as a JSON value, for the audit log.")
    @click.option("--rollout-id", help="Apply only if this rollout is the current one (compare-and-set).")
    @ENVIRONMENT_OPTION
    @_ACTOR_OPTION
    @_REVISION_OPTION
    @common_options
    @click.pass_obj
    def command(
        state: State,
        name: str,
        reason: str,
        evidence: str | None,
        rollout_id: str | None,
        environment: str,
        actor: str,
        expected_revision: int | None,
        to_version: int | None = None,
    ) -> None:
        validate_prompt_name(name)
        _check_reason(reason)
        evidence_value = _evidence(evidence)
        route = state.registry().transition(
            name,
            action,
            actor=actor,
            reason=reason,
            evidence=evidence_value,
            expected_revision=expected_revision,
            rollout_id=rollout_id,
            to_version=to_version,
            environment=environment,
        )
        if state.as_json:
            print_json(route)
            return
        click.echo(_route_line(route))

    command.__doc__ = _TRANSITION_HELP[action]
    if action is Action.REVERT:
        command = _TO_OPTION(command)
    return rollout.command(action.value)(command)


def _evidence(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        fail_input(f"--evidence is not valid JSON: {exc.msg} at character {exc.pos}")


for _action in _TRANSITION_HELP:
    _transition_command(_action)


@rollout.command("history")
@click.argument("name")
@click.option("--limit", type=click.IntRange(min=1), help="Only the newest N records.")
@ENVIRONMENT_OPTION
@common_options
@click.pass_obj
def rollout_history(state: State, name: str, limit: int | None, environment: str) -> None:
    """Show the audit trail of NAME's routing flag, oldest first.

    From a control plane, every page of the trail is read (the newest N records with --limit).
    """
    records = state.registry().history(validate_prompt_name(name), limit=limit, environment=environment)
    if state.as_json:
        print_json(records)
        return
    if not records:
        click.echo(f"{name}: no transitions yet")
        return
    headers = ("ID", "AT", "ACTION", "ACTOR", "STATE", "REVISION", "STABLE", "CANARY", "REASON")
    click.echo(format_table(headers, (_history_row(r) for r in records)))


def _history_row(r: AuditRecord) -> tuple[object, ...]:
    from_state = r.from_state.value if isinstance(r.from_state, RolloutState) else "-"
    canary = f"v{r.canary_version} {percent(r.canary_weight_bp)}" if r.canary_version else None
    return (
        r.id,
        time_text(r.at),
        r.action,
        r.actor,
        f"{from_state} -> {r.to_state}",
        f"{r.from_revision or '-'} -> {r.to_revision}",
        f"v{r.stable_version}",
        canary,
        r.reason or "-",
    )
