"""``prompt-canary serve``: run the control plane (the HTTP API) on a local store.

Its options are the fields of :class:`~otel_prompt_canary.service.ServiceSettings`, read from that
object (name, type, bounds, default, help, environment variable), so that a setting is declared in
one place; ``--token`` is the global option. FastAPI and uvicorn are imported only when the command
runs (the ``server`` extra); without them the command exits 1 saying what to install.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import annotated_types
import click
from click.core import ParameterSource
from pydantic import ValidationError
from pydantic.fields import FieldInfo

from otel_prompt_canary.cli.group import CommandFailed, State, common_options, fail_input
from otel_prompt_canary.errors import describe_validation_errors
from otel_prompt_canary.registry.sql import open_store
from otel_prompt_canary.service.settings import ENV_PREFIX, ServiceSettings

__all__ = ["serve"]

_F = TypeVar("_F", bound=Callable[..., Any])

#: Settings that are not options of ``serve``: the write token is the global ``--token``.
_NOT_OPTIONS = frozenset({"token"})


def _bounds(field: FieldInfo) -> dict[str, Any]:
    bounds: dict[str, Any] = {}
    for rule in field.metadata:
        if isinstance(rule, annotated_types.Ge):
            bounds["min"] = rule.ge
        elif isinstance(rule, annotated_types.Gt):
            bounds |= {"min": rule.gt, "min_open": True}
        elif isinstance(rule, annotated_types.Le):
            bounds["max"] = rule.le
        elif isinstance(rule, annotated_types.Lt):
            bounds |= {"max": rule.lt, "max_open": True}
    return bounds


def _option(name: str, field: FieldInfo) -> Callable[[_F], _F]:
    """The ``serve`` option of one setting (given on the command line, else from its variable)."""
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    flag = str(extra.get("option") or "--" + name.replace("_", "-"))
    common: dict[str, Any] = {
        "envvar": ENV_PREFIX + name.upper(),
        "show_envvar": True,
        "help": field.description,
    }
    if field.annotation is bool:
        if field.default is False:
            return click.option(flag, name, is_flag=True, default=False, **common)
        return click.option(
            f"{flag}/--no-{flag[2:]}", name, default=field.default, show_default=True, **common
        )
    kind: click.ParamType[Any] = click.STRING
    if field.annotation is int:
        kind = click.IntRange(**_bounds(field))
    elif field.annotation is float:
        kind = click.FloatRange(**_bounds(field))
    metavar = extra.get("metavar")
    # A list setting (environments) is written comma-separated, as its variable is.
    default = ",".join(field.default) if isinstance(field.default, tuple) else field.default
    return click.option(flag, name, type=kind, metavar=metavar, default=default, show_default=True, **common)


def _settings_options(command: _F) -> _F:
    for name, field in reversed(ServiceSettings.model_fields.items()):
        if name not in _NOT_OPTIONS:
            command = _option(name, field)(command)
    return command


def _given(ctx: click.Context, options: dict[str, Any]) -> dict[str, Any]:
    """The settings given on the command line or by their variables (the rest keep their defaults)."""
    return {
        name: value
        for name, value in options.items()
        if ctx.get_parameter_source(name) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)
    }


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8787, show_default=True, help="Port.")
@click.option(
    "--log-level",
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    default="info",
    show_default=True,
)
@_settings_options
@common_options
@click.pass_context
def serve(ctx: click.Context, /, host: str, port: int, log_level: str, **options: Any) -> None:
    """Run the control plane (the HTTP API) on a local store.

    The registry is a path or a database URL.

    Writes need `Authorization: Bearer TOKEN` (--token or OTEL_PROMPT_CANARY_TOKEN). The alert
    receivers and /v1/reports also accept their senders' credentials: see docs/alerts.md. Reads
    are open unless --read-token is set; --insecure-dev listens on loopback only. Every option can
    also be set by the environment variable it names.
    """
    state = ctx.find_object(State)
    assert state is not None  # the root group made it
    if state.names_a_control_plane:
        fail_input("serve needs a store (a path or a database URL), not the URL of a control plane")
    try:
        from otel_prompt_canary.service.server import run_server
    except ImportError as exc:
        raise CommandFailed(
            f"the control plane needs FastAPI and uvicorn ({exc.name or exc} is missing): "
            "pip install 'otel-prompt-canary[server]'"
        ) from exc
    given = _given(ctx, options)
    if state.token:
        given["token"] = state.token
    try:
        settings = ServiceSettings(**given)
    except ValidationError as exc:
        fail_input(describe_validation_errors(exc.errors()))

    registry = open_store(state.registry_target, max_template_bytes=settings.max_template_bytes)
    try:
        _warn_about(settings, host, port)
        run_server(registry, settings, host=host, port=port, log_level=log_level)
    finally:
        registry.close()


def _warn_about(settings: ServiceSettings, host: str, port: int) -> None:
    from otel_prompt_canary.service.server import is_loopback

    address = f"{host}:{port}"
    if settings.reads_open and not is_loopback(host):
        click.echo(
            f"warning: reads are open: anyone who reaches {address} can read templates, policies, "
            "the audit trail and the alert log (set --read-token)",
            err=True,
        )
    if settings.writes_open:
        click.echo(
            "warning: --insecure-dev without a token: anyone who reaches "
            f"{address} can push prompts and flip rollouts",
            err=True,
        )
    if settings.time_scale != 1:
        click.echo(
            f"warning: --time-scale {settings.time_scale:g}: policy durations run "
            f"{settings.time_scale:g} times faster (tests and demos only)",
            err=True,
        )
