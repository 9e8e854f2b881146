"""What every command builds on: the group that turns errors into exit codes, and the global options.

:class:`Group` prints an expected failure as one ``error: <message>`` line on stderr and exits with
:data:`EXIT_FAILURE` or :data:`EXIT_BAD_INPUT` (usage errors and
:class:`~otel_prompt_canary.errors.InvalidInputError`). :class:`State` holds what ``--registry``,
``--token`` and ``--json`` say and opens the registry on first use; :func:`common_options` lets
those options also follow a command's name.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any, NoReturn, TypeVar

import click

from otel_prompt_canary.errors import AuthenticationError, InvalidInputError, PromptCanaryError
from otel_prompt_canary.registry.base import Registry
from otel_prompt_canary.routing.remote import is_remote, open_registry

__all__ = [
    "DEFAULT_REGISTRY",
    "EXIT_BAD_INPUT",
    "EXIT_FAILURE",
    "REGISTRY_ENV",
    "TOKEN_ENV",
    "CommandFailed",
    "Group",
    "State",
    "common_options",
    "default_actor",
    "fail_input",
    "json_option",
]

EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2

DEFAULT_REGISTRY = ".prompt-canary/registry.db"
REGISTRY_ENV = "OTEL_PROMPT_CANARY_REGISTRY"
TOKEN_ENV = "OTEL_PROMPT_CANARY_TOKEN"

_F = TypeVar("_F", bound=Callable[..., Any])


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


def fail_input(message: str) -> NoReturn:
    """Stop the command: bad input, exit 2."""
    raise CommandFailed(message, EXIT_BAD_INPUT)


def _failure_for(exc: PromptCanaryError, state: State | None) -> CommandFailed:
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


class Group(click.Group):
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
            state = ctx.find_object(State)
            raise _failure_for(exc, state) from exc


@dataclass
class State:
    """What the global options say, and the registry opened on first use."""

    registry_target: str = DEFAULT_REGISTRY
    token: str | None = None
    as_json: bool = False
    _registry: Registry | None = field(default=None, repr=False)

    @property
    def names_a_control_plane(self) -> bool:
        """Whether ``--registry`` is the http(s):// URL of a control plane rather than a store."""
        return is_remote(self.registry_target)

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
        ctx.ensure_object(State).registry_target = value


def _set_token(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.ensure_object(State).token = value


def _set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.ensure_object(State).as_json = True


def json_option(command: _F) -> _F:
    """Let ``--json`` also follow the command's name."""
    option = click.option(
        "--json",
        "as_json",
        is_flag=True,
        callback=_set_json,
        expose_value=False,
        help="Print JSON instead of text.",
    )
    return option(command)


def common_options(command: _F) -> _F:
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
    ]
    command = json_option(command)
    for option in reversed(options):
        command = option(command)
    return command


def default_actor() -> str:
    """Who runs the command, for the audit log: ``$USER`` (or its cousins), else ``cli``."""
    for var in ("USER", "USERNAME", "LOGNAME"):
        value = os.environ.get(var, "").strip()
        if value:
            return value
    return "cli"
