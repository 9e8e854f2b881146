"""The datasets and evaluation runs of the registry ``--registry`` names, for the commands that need them.

A local store keeps them in its own database (the registry already opened); a control plane
serves them over its API, with the command's ``--token``.
"""

from __future__ import annotations

import click

from otel_prompt_canary.cli.group import State
from otel_prompt_canary.evals.remote import RemoteEvalStore
from otel_prompt_canary.evals.store import EvalStore, SqlEvalStore
from otel_prompt_canary.registry.sql import SqlRegistry

__all__ = ["eval_store"]


def eval_store(state: State) -> EvalStore:
    """The store of datasets and runs beside the registry of ``state`` (closed with the command)."""
    registry = state.registry()
    if isinstance(registry, SqlRegistry):
        return SqlEvalStore(registry)
    store = RemoteEvalStore(state.registry_target, token=state.token)
    click.get_current_context().call_on_close(store.close)
    return store
