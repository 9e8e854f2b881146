"""Which evaluation runs outlive the retention, and pruning the rest.

Runs grow with every ``eval run`` and every probe (a probe every hour adds 24 runs a day, each with
the beginning of every answer). What the gate, the comparisons and ``prompt diff`` read
(:mod:`otel_prompt_canary.evals.baselines`) is kept whatever its age:

- per version and dataset version, the **first** complete run (the version's eval baseline on that
  dataset version, what its probes and re-runs are compared with) and the **newest** complete run
  (what the gate judges, what a candidate and a diff are compared with);
- every run a version pins as its eval baseline (``environment.eval_baseline_id``).

The other runs (re-runs, probes, incomplete runs) that finished before the retention's
``eval_runs`` are deleted. Datasets are never pruned: they are versioned content, and a kept run
names the version it ran.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, Select, and_, func, or_, select

from otel_prompt_canary.loop.pruning import delete_in_batches
from otel_prompt_canary.registry import schema as t
from otel_prompt_canary.registry.database import Database

__all__ = ["kept_runs", "pinned_runs", "prune_eval_runs"]


def kept_runs() -> Select[tuple[str]]:
    """The ids of the runs kept whatever their age: each version's first and newest complete run
    per dataset version."""
    r = t.eval_runs.c
    key = (r.prompt, r.version, r.dataset, r.dataset_version)
    ranked = (
        select(
            r.run_id,
            func.row_number().over(partition_by=key, order_by=(r.finished_at, r.run_id)).label("first"),
            func.row_number()
            .over(partition_by=key, order_by=(r.finished_at.desc(), r.run_id.desc()))
            .label("newest"),
        )
        .where(r.status == "complete")
        .subquery()
    )
    return select(ranked.c.run_id).where(or_(ranked.c.first == 1, ranked.c.newest == 1))


def pinned_runs() -> Select[tuple[str | None]]:
    """The run ids versions pin as their eval baseline (``environment.eval_baseline_id``)."""
    pinned = t.versions.c.body[("environment", "eval_baseline_id")].as_string()
    return select(pinned).where(pinned.is_not(None))


def prune_eval_runs(database: Database, before: datetime) -> int:
    """Delete the runs that finished before ``before`` and are not kept (see the module docstring)."""
    r = t.eval_runs.c
    # Each batch decides what is kept in its own transaction: a run stored meanwhile counts.
    where: ColumnElement[bool] = and_(
        r.finished_at < before, r.run_id.not_in(kept_runs()), r.run_id.not_in(pinned_runs())
    )
    return delete_in_batches(database, r.run_id, where)
