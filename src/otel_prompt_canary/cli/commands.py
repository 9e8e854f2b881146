"""The ``prompt-canary`` command: its global options, the command groups under it, its entry point."""

from __future__ import annotations

from collections.abc import Sequence

import click

from otel_prompt_canary._version import __version__
from otel_prompt_canary.cli.dataset import dataset
from otel_prompt_canary.cli.demo import demo
from otel_prompt_canary.cli.drift import drift
from otel_prompt_canary.cli.eval import eval_group
from otel_prompt_canary.cli.gc import gc
from otel_prompt_canary.cli.group import DEFAULT_REGISTRY, REGISTRY_ENV, TOKEN_ENV, Group, State
from otel_prompt_canary.cli.policy import policy
from otel_prompt_canary.cli.prompt import prompt
from otel_prompt_canary.cli.rollout import rollout
from otel_prompt_canary.cli.serve import serve

__all__ = ["cli", "main"]


@click.group("prompt-canary", cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
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
    state = ctx.ensure_object(State)
    state.registry_target = registry
    state.token = token or None
    state.as_json = as_json
    ctx.call_on_close(state.close)


for _command in (prompt, rollout, policy, dataset, eval_group, drift, serve, gc, demo):
    cli.add_command(_command)


def main(argv: Sequence[str] | None = None) -> None:
    """The ``prompt-canary`` entry point."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="prompt-canary")
