"""Options several command groups share: the environment a command acts in.

::

    @rollout.command("status")
    @ENVIRONMENT_OPTION
    def status(environment: str) -> None: ...

``--environment`` falls back to ``OTEL_PROMPT_CANARY_ENVIRONMENT``, then to the default environment;
a name that is not an environment's is a usage error (exit 2) naming the rule.
"""

from __future__ import annotations

import click

from otel_prompt_canary.errors import InvalidInputError
from otel_prompt_canary.names import DEFAULT_ENVIRONMENT, ENVIRONMENT_VARIABLE
from otel_prompt_canary.registry.models import validate_environment_name

__all__ = ["ENVIRONMENT_OPTION", "environment_name"]


def environment_name(_ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A click callback: ``value`` as a valid environment name (None stays None)."""
    if value is None:
        return None
    try:
        return validate_environment_name(value.strip())
    except InvalidInputError as exc:
        raise click.BadParameter(str(exc), param=param) from None


#: ``--environment``: the environment whose routing flag a command uses.
ENVIRONMENT_OPTION = click.option(
    "--environment",
    envvar=ENVIRONMENT_VARIABLE,
    show_envvar=True,
    default=DEFAULT_ENVIRONMENT,
    show_default=True,
    callback=environment_name,
    help="The environment whose routing flag to use.",
)
