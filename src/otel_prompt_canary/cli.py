"""The ``prompt-canary`` command line: push and inspect prompts, drive rollouts, run the control plane.

Every command works against a local store (an SQLite file by default, or a PostgreSQL URL) or a
running control plane (an ``http(s)://`` URL), through the same
:class:`~otel_prompt_canary.registry.base.Registry` interface.

Exit codes: 0 success; 1 the command could not be carried out (unknown prompt, illegal transition,
revision mismatch, wrong token, unreachable registry); 2 bad input (usage, an invalid spec file,
ramp or name). Errors print one line, ``error: <message>``, on stderr.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any, NoReturn, TypeVar

import click
import yaml
from pydantic import BaseModel, ValidationError

from otel_prompt_canary._version import __version__
from otel_prompt_canary.analysis.policy import DEFAULT_POLICY_YAML, load_policy, policy_json_schema
from otel_prompt_canary.analysis.prometheus import prometheus_rules
from otel_prompt_canary.client import is_remote, open_registry
from otel_prompt_canary.errors import (
    AuthenticationError,
    InvalidInputError,
    PromptCanaryError,
)
from otel_prompt_canary.registry.base import Registry
from otel_prompt_canary.registry.models import (
    Action,
    AuditRecord,
    PromptSpec,
    PromptSummary,
    PromptVersion,
    Rollout,
    RolloutState,
    Route,
    validate_prompt_name,
)
from otel_prompt_canary.registry.sql import open_store
from otel_prompt_canary.service.rollout_policy import resolve_rollout_policy

__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILURE", "cli", "load_spec", "main"]

EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2

DEFAULT_REGISTRY = ".prompt-canary/registry.db"
REGISTRY_ENV = "OTEL_PROMPT_CANARY_REGISTRY"
TOKEN_ENV = "OTEL_PROMPT_CANARY_TOKEN"

_F = TypeVar("_F", bound=Callable[..., Any])


# -- errors -------------------------------------------------------------------------------------


class CommandFailed(click.ClickException):
    """An expected failure: printed as one ``error:`` line, with its exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILURE, hint: str | None = None):
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # click declares it on the class
        self.hint = hint

    def show(self, file: IO[Any] | None = None) -> None:
        stream = file if file is not None else sys.stderr
        click.echo(f"error: {self.format_message()}", file=stream)
        if self.hint:
            click.echo(self.hint, file=stream)


def _failure_for(exc: PromptCanaryError, state: _State | None) -> CommandFailed:
    message = str(exc)
    if isinstance(exc, AuthenticationError) and state is not None and not state.token:
        message += f" (give the token with --token or {TOKEN_ENV})"
    code = EXIT_BAD_INPUT if isinstance(exc, InvalidInputError) else EXIT_FAILURE
    return CommandFailed(message, code)


def _usage_failure(exc: click.UsageError) -> CommandFailed:
    hint = None
    if exc.ctx is not None:
        hint = f"Try '{exc.ctx.command_path} --help' for help."
    return CommandFailed(exc.format_message(), EXIT_BAD_INPUT, hint)


class _Group(click.Group):
    """A group that turns the package's errors and usage errors into one ``error:`` line."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as exc:
            raise _usage_failure(exc) from exc

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            raise _usage_failure(exc) from exc
        except PromptCanaryError as exc:
            state = ctx.find_object(_State)
            raise _failure_for(exc, state) from exc


# -- state and output -----------------------------------------------------------------------------


@dataclass
class _State:
    """What the global options say, and the registry opened on first use."""

    registry_target: str = DEFAULT_REGISTRY
    token: str | None = None
    as_json: bool = False
    _registry: Registry | None = field(default=None, repr=False)

    def registry(self) -> Registry:
        if self._registry is None:
            self._registry = open_registry(self.registry_target, token=self.token)
        return self._registry

    def close(self) -> None:
        if self._registry is not None:
            self._registry.close()
            self._registry = None


def _set_registry(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.ensure_object(_State).registry_target = value


def _set_token(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.ensure_object(_State).token = value


def _set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.ensure_object(_State).as_json = True


def _common_options(command: _F) -> _F:
    """Let ``--registry``, ``--token`` and ``--json`` also follow the command's name."""
    options = [
        click.option(
            "--registry",
            callback=_set_registry,
            expose_value=False,
            help="Registry: a path, a database URL or the http(s):// URL of a control plane.",
        ),
        click.option(
            "--token",
            callback=_set_token,
            expose_value=False,
            help="Bearer token for writes to a control plane.",
        ),
        click.option(
            "--json",
            "as_json",
            is_flag=True,
            callback=_set_json,
            expose_value=False,
            help="Print JSON instead of text.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def _print_json(value: Any) -> None:
    click.echo(json.dumps(_jsonable(value), indent=2, ensure_ascii=False))


def format_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Left-aligned columns separated by two spaces; ``None`` shows as ``-``."""
    cells = [[str(h) for h in headers]]
    cells += [["-" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines)


def _time(value: datetime | None) -> str:
    if value is None:
        return "-"
    return value.strftime("%Y-%m-%d %H:%M:%S") + ("Z" if value.utcoffset() is not None else "")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _percent(bp: int) -> str:
    return f"{bp / 100:g}%"


def _default_actor() -> str:
    for var in ("USER", "USERNAME", "LOGNAME"):
        value = os.environ.get(var, "").strip()
        if value:
            return value
    return "cli"


def _fail_input(message: str) -> NoReturn:
    raise CommandFailed(message, EXIT_BAD_INPUT)


def describe_validation_error(exc: ValidationError) -> str:
    """One line naming each invalid field of a spec and why."""
    parts: list[str] = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()))
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        if err.get("type") == "extra_forbidden":
            msg = "unknown field"
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


def load_spec(path: str) -> PromptSpec:
    """Read a prompt spec from a YAML or JSON file (``-`` for standard input)."""
    shown = "<stdin>" if path == "-" else path
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        _fail_input(f"cannot read {shown}: {exc.strerror or exc}")
    except UnicodeDecodeError:
        _fail_input(f"cannot read {shown}: it is not UTF-8 text")
    data: object
    if path.lower().endswith(".json"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            _fail_input(f"{shown}: malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}")
    else:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(exc, "problem", None) or str(exc)
            _fail_input(f"{shown}: malformed YAML{where}: {problem}")
    if not isinstance(data, dict):
        _fail_input(f"{shown}: a prompt spec is a mapping with 'name' and one of 'template' or 'messages'")
    try:
        return PromptSpec.model_validate(data)
    except ValidationError as exc:
        _fail_input(f"{shown}: invalid prompt spec: {describe_validation_error(exc)}")


def _load_json_object(path: str, what: str) -> dict[str, Any]:
    shown = "<stdin>" if path == "-" else path
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
        data = yaml.safe_load(text)  # YAML is a superset of JSON
    except OSError as exc:
        _fail_input(f"cannot read {what} {shown}: {exc.strerror or exc}")
    except UnicodeDecodeError:
        _fail_input(f"cannot read {what} {shown}: it is not UTF-8 text")
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        _fail_input(f"{shown}: malformed {what}{where}: {problem}")
    path = shown
    if not isinstance(data, dict):
        _fail_input(f"{path}: the {what} must be a mapping (a JSON object)")
    try:
        json.dumps(data)
    except (TypeError, ValueError) as exc:
        _fail_input(f"{path}: the {what} must hold JSON values only: {exc}")
    return data


def _parse_ref(ref: str) -> tuple[str, int | None]:
    name, sep, version = ref.rpartition("@")
    if not sep:
        return validate_prompt_name(ref), None
    validate_prompt_name(name)
    if version == "latest":
        return name, None
    if not version.isdigit() or int(version) < 1:
        _fail_input(f"invalid version {version!r} in {ref!r}: give NAME, NAME@N or NAME@latest")
    return name, int(version)


# -- the command tree ---------------------------------------------------------------------------


@click.group("prompt-canary", cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--registry",
    envvar=REGISTRY_ENV,
    default=DEFAULT_REGISTRY,
    show_default=True,
    show_envvar=True,
    help="Registry: a path (SQLite), a postgresql:// URL or the http(s):// URL of a control plane.",
)
@click.option(
    "--token",
    envvar=TOKEN_ENV,
    show_envvar=True,
    help="Bearer token for writes to a control plane (and the token `serve` requires).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.version_option(__version__, prog_name="prompt-canary")
@click.pass_context
def cli(ctx: click.Context, registry: str, token: str | None, as_json: bool) -> None:
    """Canary releases for LLM prompts: versioned prompts, rollouts, the control plane."""
    state = ctx.ensure_object(_State)
    state.registry_target = registry
    state.token = token or None
    state.as_json = as_json
    ctx.call_on_close(state.close)


@cli.group(cls=_Group)
def prompt() -> None:
    """Push and inspect prompt versions."""


@prompt.command("push")
@click.argument("file", metavar="FILE")
@click.option("--author", help="Author recorded when the spec names none (default: $USER).")
@_common_options
@click.pass_obj
def prompt_push(state: _State, file: str, author: str | None) -> None:
    """Store the prompt spec in FILE (YAML or JSON; - for stdin) as a new version.

    Pushing content identical to an existing version stores nothing and names that version.
    """
    spec = load_spec(file)
    result = state.registry().push(spec, author=author or _default_actor())
    if state.as_json:
        _print_json(result)
        return
    note = "new" if result.created else "unchanged: identical content"
    click.echo(f"{result.version.ref} ({note})")


@prompt.command("list")
@_common_options
@click.pass_obj
def prompt_list(state: _State) -> None:
    """List prompts with their newest version and routing state."""
    summaries = state.registry().list_prompts()
    if state.as_json:
        _print_json(summaries)
        return
    if not summaries:
        click.echo("no prompts yet: push one with `prompt-canary prompt push FILE`")
        return
    click.echo(format_table(_SUMMARY_HEADERS, (_summary_row(s) for s in summaries)))


_SUMMARY_HEADERS = ("NAME", "LATEST", "VERSIONS", "STABLE", "CANARY", "WEIGHT", "STATE", "REVISION")


def _summary_row(s: PromptSummary) -> tuple[object, ...]:
    r = s.route
    canary = r.canary_version
    weight = _percent(r.canary_weight_bp) if canary is not None else None
    return (s.name, s.latest_version, s.versions, r.stable_version, canary, weight, r.state, r.revision)


@prompt.command("show")
@click.argument("ref", metavar="NAME[@VERSION]")
@_common_options
@click.pass_obj
def prompt_show(state: _State, ref: str) -> None:
    """Show one version (the newest without @VERSION)."""
    name, version = _parse_ref(ref)
    v = state.registry().get_version(name, version)
    if state.as_json:
        _print_json(v)
        return
    click.echo(_describe_version(v))


def _describe_version(v: PromptVersion) -> str:
    env = {k: val for k, val in v.environment.model_dump().items() if val is not None}
    rows: list[tuple[str, str]] = [
        ("version", f"{v.ref}  {v.content_hash}"),
        ("created", _time(v.created_at) + (f" by {v.author}" if v.author else "")),
        ("commit", v.commit_message or "-"),
        ("model", v.model or "-"),
        ("config", json.dumps(v.config, sort_keys=True) if v.config else "-"),
        ("environment", ", ".join(f"{k}={val}" for k, val in env.items()) or "-"),
        ("variables", ", ".join(v.variables) or "-"),
    ]
    width = max(len(k) for k, _ in rows)
    lines = [f"{k.ljust(width)}  {val}" for k, val in rows]
    if v.template is not None:
        lines += ["", f"--- template ({v.template_role}) ---", v.template.rstrip("\n")]
    else:
        for i, m in enumerate(v.messages or ()):
            lines += ["", f"--- message {i} ({m.role}) ---", m.content.rstrip("\n")]
    return "\n".join(lines)


@prompt.command("diff")
@click.argument("name")
@click.argument("a", type=click.IntRange(min=1))
@click.argument("b", type=click.IntRange(min=1))
@_common_options
@click.pass_obj
def prompt_diff(state: _State, name: str, a: int, b: int) -> None:
    """Show what changed from version A to version B: a summary line, then unified diffs."""
    d = state.registry().diff(validate_prompt_name(name), a, b)
    if state.as_json:
        _print_json(d)
        return
    click.echo(d.summary)
    for part in (d.template_diff, d.config_diff):
        if part:
            click.echo("")
            click.echo(part.rstrip("\n"))


# -- rollouts -------------------------------------------------------------------------------------


@cli.group(cls=_Group)
def rollout() -> None:
    """Start, inspect and move rollouts (the routing flag of a prompt)."""


_ACTOR_OPTION = click.option(
    "--actor",
    default=_default_actor,
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
            f"v{route.canary_version} at {_percent(route.canary_weight_bp)} "
            f"(step {route.step + 1}/{steps}), stable v{route.stable_version}"
        )
    else:
        flow = f"stable v{route.stable_version}, no canary"
    return f"{route.prompt}: {route.state}, {flow} [revision {route.revision}]"


@rollout.command("start")
@click.argument("name")
@click.argument("version", type=click.IntRange(min=1))
@click.option(
    "--ramp",
    default=None,
    show_default="the policy's ramp.steps, else 1,5,20,50,100",
    help="Canary percentages, strictly increasing, ending at 100; must agree with the policy's "
    "ramp.steps when the policy gives them.",
)
@click.option("--reason", default="", help="Why, for the audit log.")
@click.option(
    "--policy",
    "policy_file",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="The rollout's policy (YAML or JSON; - for stdin), validated and stored with the rollout. "
    "Default: the default policy.",
)
@_ACTOR_OPTION
@_REVISION_OPTION
@_common_options
@click.pass_obj
def rollout_start(
    state: _State,
    name: str,
    version: int,
    ramp: str | None,
    reason: str,
    policy_file: str | None,
    actor: str,
    expected_revision: int | None,
) -> None:
    """Start canarying VERSION of NAME along the ramp, judged by a policy.

    The policy is validated before anything is written; without --policy the default policy
    applies. Either way the policy is stored with the rollout.
    """
    validate_prompt_name(name)
    policy = _load_json_object(policy_file, "policy") if policy_file else None
    try:
        resolved = resolve_rollout_policy(policy, ramp)
    except InvalidInputError as exc:
        where = f"{'<stdin>' if policy_file == '-' else policy_file}: " if policy_file else ""
        _fail_input(f"{where}{exc}")
    route = state.registry().start_rollout(
        name,
        version,
        ramp=resolved.ramp,
        actor=actor,
        reason=reason,
        policy=resolved.document,
        expected_revision=expected_revision,
    )
    if state.as_json:
        _print_json(route)
        return
    click.echo(f"started rollout {route.rollout_id}")
    click.echo(_route_line(route))


@rollout.command("status")
@click.argument("name")
@_common_options
@click.pass_obj
def rollout_status(state: _State, name: str) -> None:
    """Show the routing flag of NAME and its current (or last) rollout.

    With --json, prints the routing flag (the same object as in GET /v1/routes).
    """
    registry = state.registry()
    route = registry.get_route(validate_prompt_name(name))
    if state.as_json:
        _print_json(route)
        return
    current: Rollout | None = None
    if route.rollout_id is not None:
        current = registry.get_rollout(name, route.rollout_id)
    click.echo(_describe_status(route, current))


def _ramp_text(ramp: Sequence[float], current: int | None) -> str:
    """``1%, [5%], 20%``: the ramp, with the current step in brackets while a rollout is active."""
    steps = [f"{p:g}%" for p in ramp]
    if current is not None and 0 <= current < len(steps):
        steps[current] = f"[{steps[current]}]"
    return ", ".join(steps)


def _describe_status(route: Route, current: Rollout | None) -> str:
    step = f" (step {route.step + 1}/{len(route.ramp)})" if route.state.active else ""
    rows: list[tuple[str, str]] = [
        ("prompt", route.prompt),
        ("state", f"{route.state}{step}"),
        ("stable", f"v{route.stable_version}"),
    ]
    if route.canary_version is not None:
        rows.append(
            (
                "canary",
                f"v{route.canary_version} at {_percent(route.canary_weight_bp)} "
                f"({route.canary_weight_bp} bp)",
            )
        )
    else:
        rows.append(("canary", "-"))
    if current is not None:
        ended = f", ended {_time(current.ended_at)}" if current.ended_at else ""
        rows += [
            (
                "rollout",
                f"{current.rollout_id}: v{current.baseline_version} -> "
                f"v{current.candidate_version}, started {_time(current.started_at)} "
                f"by {current.started_by}{ended}",
            ),
            ("ramp", _ramp_text(current.ramp, route.step if route.state.active else None)),
        ]
    rows.append(("revision", f"{route.revision} (updated {_time(route.updated_at)})"))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


def _transition_command(action: Action) -> click.Command:
    @click.argument("name")
    @click.option("--reason", required=True, help="Why (required: it goes to the audit log).")
    @click.option("--evidence", help="Supporting evidence as a JSON value, for the audit log.")
    @click.option("--rollout-id", help="Apply only if this rollout is the current one (compare-and-set).")
    @_ACTOR_OPTION
    @_REVISION_OPTION
    @_common_options
    @click.pass_obj
    def command(
        state: _State,
        name: str,
        reason: str,
        evidence: str | None,
        rollout_id: str | None,
        actor: str,
        expected_revision: int | None,
    ) -> None:
        validate_prompt_name(name)
        if not reason.strip():
            _fail_input("--reason must not be empty: it goes to the audit log")
        evidence_value: Any = None
        if evidence is not None:
            try:
                evidence_value = json.loads(evidence)
            except json.JSONDecodeError as exc:
                _fail_input(f"--evidence is not valid JSON: {exc.msg} at character {exc.pos}")
        route = state.registry().transition(
            name,
            action,
            actor=actor,
            reason=reason,
            evidence=evidence_value,
            expected_revision=expected_revision,
            rollout_id=rollout_id,
        )
        if state.as_json:
            _print_json(route)
            return
        click.echo(_route_line(route))

    command.__doc__ = _TRANSITION_HELP[action]
    return rollout.command(action.value)(command)


_TRANSITION_HELP: dict[Action, str] = {
    Action.ADVANCE: "Move the canary of NAME to the next ramp step.",
    Action.PAUSE: "Pause the rollout of NAME (the canary keeps its current weight).",
    Action.RESUME: "Resume a paused rollout of NAME.",
    Action.PROMOTE: "Make the canary of NAME the stable version.",
    Action.ROLLBACK: "Roll back the canary of NAME: weight 0, never routed again.",
}

for _action in (Action.ADVANCE, Action.PAUSE, Action.RESUME, Action.PROMOTE, Action.ROLLBACK):
    _transition_command(_action)


@rollout.command("history")
@click.argument("name")
@click.option("--limit", type=click.IntRange(min=1), help="Only the newest N records.")
@_common_options
@click.pass_obj
def rollout_history(state: _State, name: str, limit: int | None) -> None:
    """Show the audit trail of NAME's routing flag, oldest first."""
    records = state.registry().history(validate_prompt_name(name), limit=limit)
    if state.as_json:
        _print_json(records)
        return
    if not records:
        click.echo(f"{name}: no transitions yet")
        return
    headers = ("ID", "AT", "ACTION", "ACTOR", "STATE", "REVISION", "STABLE", "CANARY", "REASON")
    click.echo(format_table(headers, (_history_row(r) for r in records)))


def _history_row(r: AuditRecord) -> tuple[object, ...]:
    from_state = r.from_state.value if isinstance(r.from_state, RolloutState) else "-"
    canary = f"v{r.canary_version} {_percent(r.canary_weight_bp)}" if r.canary_version else None
    return (
        r.id,
        _time(r.at),
        r.action,
        r.actor,
        f"{from_state} -> {r.to_state}",
        f"{r.from_revision or '-'} -> {r.to_revision}",
        f"v{r.stable_version}",
        canary,
        r.reason or "-",
    )


# -- policies -------------------------------------------------------------------------------------


@cli.group(cls=_Group)
def policy() -> None:
    """Validate canary policies, print their JSON Schema, turn them into Prometheus rules."""


def _json_option(command: _F) -> _F:
    option = click.option(
        "--json",
        "as_json",
        is_flag=True,
        callback=_set_json,
        expose_value=False,
        help="Print JSON instead of text.",
    )
    return option(command)


@policy.command("validate")
@click.argument("file", metavar="FILE")
@click.option(
    "--ramp",
    default=None,
    help="Also check this ramp against the policy's ramp.steps, as `rollout start --ramp` would.",
)
@_json_option
@click.pass_obj
def policy_validate(state: _State, file: str, ramp: str | None) -> None:
    """Check the policy in FILE (YAML or JSON; - for stdin); exit 2 naming every problem.

    With --json, prints the policy as a rollout would store it (every field explicit).
    """
    shown = "<stdin>" if file == "-" else file
    document = _load_json_object(file, "policy")
    try:
        resolved = resolve_rollout_policy(document, ramp)
    except InvalidInputError as exc:
        _fail_input(f"{shown}: {exc}")
    if state.as_json:
        _print_json(resolved.document)
        return
    p = resolved.policy
    rules = ", ".join(f"{r.id} -> {r.action}" for r in p.rules)
    click.echo(
        f"{shown}: valid policy: {_count(len(p.signals), 'signal')}, {_count(len(p.rules), 'rule')} "
        f"({rules}); "
        f"ramp {_ramp_text(p.ramp.steps, None)}, each step at least "
        f"{p.ramp.min_duration_seconds:g} s and {p.ramp.min_samples} samples per cohort; alpha {p.alpha:g}"
    )


@policy.command("schema")
def policy_schema() -> None:
    """Print the JSON Schema of a policy document (draft 2020-12)."""
    click.echo(json.dumps(policy_json_schema(), indent=2, sort_keys=True))


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
    shown = "<stdin>" if file == "-" else file
    try:
        policy = load_policy(_load_json_object(file, "policy"))
    except InvalidInputError as exc:
        _fail_input(f"{shown}: {exc}")
    try:
        text = prometheus_rules(
            policy,
            prompt_name,
            horizon=horizon,
            resolution=resolution,
            act_after=act_after,
            score_ranges=score_ranges,
        )
    except InvalidInputError as exc:
        _fail_input(str(exc))
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        Path(output).write_text(text, encoding="utf-8")
    except OSError as exc:
        _fail_input(f"cannot write {output}: {exc.strerror or exc}")


@policy.command("default")
def policy_default() -> None:
    """Print the default policy, the one a rollout without --policy gets (YAML, to copy and edit)."""
    click.echo(DEFAULT_POLICY_YAML, nl=False)


# -- serve ----------------------------------------------------------------------------------------


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8787, show_default=True, help="Port.")
@click.option(
    "--insecure-dev",
    is_flag=True,
    help="Start without a token: writes are then open to anyone who reaches the port.",
)
@click.option("--max-body-bytes", type=click.IntRange(min=1), help="Largest request body.")
@click.option("--max-template-bytes", type=click.IntRange(min=1), help="Largest template.")
@click.option(
    "--log-level",
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    default="info",
    show_default=True,
)
@click.option(
    "--alertmanager-token",
    envvar="OTEL_PROMPT_CANARY_ALERTMANAGER_TOKEN",
    show_envvar=True,
    help="Bearer token Alertmanager presents on /v1/alerts/alertmanager (the write token works too).",
)
@click.option(
    "--alertmanager-basic-auth",
    metavar="USER:PASSWORD",
    envvar="OTEL_PROMPT_CANARY_ALERTMANAGER_BASIC_AUTH",
    show_envvar=True,
    help="Basic auth Alertmanager presents on /v1/alerts/alertmanager.",
)
@click.option(
    "--grafana-secret",
    envvar="OTEL_PROMPT_CANARY_GRAFANA_SECRET",
    show_envvar=True,
    help="HMAC secret of Grafana's webhook contact point (/v1/alerts/grafana).",
)
@click.option(
    "--grafana-signature-header",
    default="X-Grafana-Alerting-Signature",
    show_default=True,
    help="The header Grafana puts its signature in.",
)
@click.option(
    "--grafana-timestamp-header",
    default="X-Grafana-Alerting-Signature-Timestamp",
    show_default=True,
    help="The header of Grafana's signed timestamp, when the contact point sends one.",
)
@click.option(
    "--webhook-secret",
    envvar="OTEL_PROMPT_CANARY_WEBHOOK_SECRET",
    show_envvar=True,
    help="Standard Webhooks secret of the Collector processor's alerts and reports "
    "('whsec_<base64>' or any string).",
)
@click.option(
    "--webhook-tolerance",
    type=click.IntRange(1, 86_400),
    default=300,
    show_default=True,
    help="Seconds a signed timestamp may differ from this server's clock.",
)
@click.option(
    "--controller/--no-controller",
    default=True,
    show_default=True,
    help="Run the rollout controller (judges rollouts on reports, advances, pauses, rolls back).",
)
@click.option(
    "--controller-interval",
    type=click.FloatRange(min=0.01, max=60),
    default=1.0,
    show_default=True,
    help="Seconds between two judgements of every active rollout.",
)
@click.option(
    "--time-scale",
    type=click.FloatRange(min=0, min_open=True, max=86_400),
    default=1.0,
    show_default=True,
    help="Run policy durations this many times faster (60: a 60 s step takes 1 s). Tests and demos only.",
)
@_common_options
@click.pass_obj
def serve(
    state: _State,
    host: str,
    port: int,
    insecure_dev: bool,
    max_body_bytes: int | None,
    max_template_bytes: int | None,
    log_level: str,
    alertmanager_token: str | None,
    alertmanager_basic_auth: str | None,
    grafana_secret: str | None,
    grafana_signature_header: str,
    grafana_timestamp_header: str,
    webhook_secret: str | None,
    webhook_tolerance: int,
    controller: bool,
    controller_interval: float,
    time_scale: float,
) -> None:
    """Run the control plane (the HTTP API) on a local store.

    The registry is a path or a database URL.

    Writes need `Authorization: Bearer TOKEN` (--token or OTEL_PROMPT_CANARY_TOKEN). The alert
    receivers and /v1/reports also accept their senders' credentials: see docs/alerts.md.
    """
    if is_remote(state.registry_target):
        _fail_input("serve needs a store (a path or a database URL), not the URL of a control plane")
    try:
        from otel_prompt_canary.service import ServiceSettings
        from otel_prompt_canary.service.server import run_server
    except ImportError as exc:
        raise CommandFailed(
            f"the control plane needs FastAPI and uvicorn ({exc.name or exc} is missing): "
            "pip install 'otel-prompt-canary[server]'"
        ) from exc

    options: dict[str, Any] = {
        "token": state.token,
        "insecure_dev": insecure_dev,
        "alertmanager_token": alertmanager_token,
        "alertmanager_basic_auth": alertmanager_basic_auth,
        "grafana_secret": grafana_secret,
        "grafana_signature_header": grafana_signature_header,
        "grafana_timestamp_header": grafana_timestamp_header,
        "webhook_secret": webhook_secret,
        "webhook_tolerance_seconds": webhook_tolerance,
        "controller": controller,
        "controller_interval_seconds": controller_interval,
        "time_scale": time_scale,
    }
    if max_body_bytes is not None:
        options["max_body_bytes"] = max_body_bytes
    if max_template_bytes is not None:
        options["max_template_bytes"] = max_template_bytes
    try:
        settings = ServiceSettings(**options)
    except ValidationError as exc:
        _fail_input(describe_validation_error(exc))

    registry = open_store(state.registry_target, max_template_bytes=settings.max_template_bytes)
    try:
        if settings.writes_open:
            click.echo(
                "warning: --insecure-dev without a token: anyone who reaches "
                f"{host}:{port} can push prompts and flip rollouts",
                err=True,
            )
        if settings.time_scale != 1:
            click.echo(
                f"warning: --time-scale {settings.time_scale:g}: policy durations run "
                f"{settings.time_scale:g} times faster (tests and demos only)",
                err=True,
            )
        run_server(registry, settings, host=host, port=port, log_level=log_level)
    finally:
        registry.close()


@cli.command()
@click.option(
    "--healthy", is_flag=True, help="A candidate as good as stable: watch it walk the ramp to 100%."
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, writable=True),
    default=".prompt-canary/demo-report.html",
    show_default=True,
    help="Where to write the HTML report.",
)
@click.option(
    "--time-scale",
    type=click.FloatRange(min=1, max=600),
    default=6.0,
    show_default=True,
    help="Policy durations run this many times faster (the demo policy's steps last 60 s).",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=5, max=1000),
    default=80.0,
    show_default=True,
    help="LLM calls per second the demo application makes.",
)
def demo(healthy: bool, report_path: str, time_scale: float, rate: float) -> None:
    """Watch the whole loop in about a minute, on loopback and a temporary registry.

    A candidate prompt that silently breaks JSON for billing and refund questions is canaried on
    live (simulated) traffic; the controller's sequential judge rolls it back. With --healthy, the
    candidate is as good as stable and is promoted. Exits 1 if the rollout ends otherwise.
    """
    try:
        from otel_prompt_canary.demo.run import run_demo
    except ModuleNotFoundError as exc:
        raise CommandFailed(
            f"the demo needs the demo extra ({exc.name} is missing): pip install 'otel-prompt-canary[demo]'",
            1,
        ) from exc
    expected = "promoted" if healthy else "rolled_back"
    result = run_demo(
        healthy=healthy, report_path=Path(report_path), time_scale=time_scale, calls_per_second=rate
    )
    if result.outcome != expected:
        raise CommandFailed(f"the demo ended {result.outcome}, not {expected}", 1)


def main(argv: Sequence[str] | None = None) -> None:
    """The ``prompt-canary`` entry point."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="prompt-canary")


if __name__ == "__main__":  # pragma: no cover
    main()
