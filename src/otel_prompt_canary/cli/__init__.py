"""The ``prompt-canary`` command line: push and inspect prompts, drive rollouts, run the control plane.

Every command works against a local store (an SQLite file by default, or a PostgreSQL URL) or a
running control plane (an ``http(s)://`` URL), through the same
:class:`~otel_prompt_canary.registry.base.Registry` interface.

Exit codes: 0 success; 1 the command could not be carried out (unknown prompt, illegal transition,
revision mismatch, wrong token, unreachable registry); 2 bad input (usage, an invalid spec file,
ramp or name). Errors print one line, ``error: <message>``, on stderr.

One module per command group (``prompt``, ``rollout``, ``policy``, ``dataset``, ``eval``, ``serve``,
``demo``); ``group``
turns errors into exit codes and holds the global options, ``files`` reads spec and policy files,
``output`` prints tables and JSON.
"""

from __future__ import annotations

from otel_prompt_canary.cli.commands import cli, main
from otel_prompt_canary.cli.files import load_spec
from otel_prompt_canary.cli.group import EXIT_BAD_INPUT, EXIT_FAILURE

__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILURE", "cli", "load_spec", "main"]
