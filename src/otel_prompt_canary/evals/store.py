"""Where datasets and evaluation runs are kept: beside the prompt, in the registry's database.

:class:`EvalStore` is the interface the CLI, the rollout gate and the probes use;
:class:`SqlEvalStore` implements it in the database of an
:class:`~otel_prompt_canary.registry.sql.SqlRegistry` (same engine, same transaction rules), and
:class:`~otel_prompt_canary.evals.remote.RemoteEvalStore` over a control plane's API, with the same
refusals::

    store = SqlEvalStore(open_store(".prompt-canary/registry.db"))
    store.push_dataset(spec, author="ana")               # content-addressed: a repeat stores nothing
    store.record_run(run)                                # checked against its version and dataset

Dataset versions are immutable (the database refuses to change them). A run is checked before it
is stored: its version and dataset version exist, its dataset hash is theirs, each case appears
once and is a case of that dataset, and a run that says ``complete`` has every case and no error.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable

from sqlalchemy import Connection, and_, func, or_, select

from otel_prompt_canary.errors import InvalidInputError, NotFoundError
from otel_prompt_canary.evals.datasets import (
    MAX_DATASET_BYTES,
    Dataset,
    DatasetDiff,
    DatasetPushResult,
    DatasetSpec,
    DatasetSummary,
    check_size,
    check_variables,
    diff_datasets,
    validate_dataset_name,
)
from otel_prompt_canary.evals.results import EvalRun, EvalRunSummary, RunStatus
from otel_prompt_canary.registry import schema as t
from otel_prompt_canary.registry.bounds import MAX_VERSION, check_integer, check_storable
from otel_prompt_canary.registry.database import aware, utc_now
from otel_prompt_canary.registry.models import validate_prompt_name
from otel_prompt_canary.registry.sql import SqlRegistry

__all__ = ["DEFAULT_RUN_LIMIT", "EvalStore", "RunKey", "SqlEvalStore", "check_run"]

#: Runs listed when no limit is given.
DEFAULT_RUN_LIMIT = 100

#: Where a run stands in the lists of runs: when it finished, and its id (for runs finished at once).
RunKey = tuple[datetime, str]


@runtime_checkable
class EvalStore(Protocol):
    """Datasets and evaluation runs of the prompts of one registry."""

    def push_dataset(self, spec: DatasetSpec, *, author: str | None = None) -> DatasetPushResult:
        """Store ``spec`` as a new version of its dataset, or return the version with identical
        content. Its cases must use exactly the variables of the prompt's newest version."""
        ...

    def list_datasets(
        self, prompt: str, *, after: str | None = None, limit: int | None = None
    ) -> list[DatasetSummary]:
        """The datasets of ``prompt``, by name (the first ``limit`` whose name sorts after
        ``after``, when given)."""
        ...

    def get_dataset(self, prompt: str, name: str, version: int | None = None) -> Dataset:
        """One version of a dataset of ``prompt``; the newest when ``version`` is None."""
        ...

    def diff_datasets(self, prompt: str, name: str, a: int, b: int) -> DatasetDiff:
        """What changed from version ``a`` to version ``b`` of a dataset."""
        ...

    def record_run(self, run: EvalRun) -> EvalRun:
        """Store an evaluation run (checked first, see the module docstring)."""
        ...

    def list_runs(
        self,
        prompt: str,
        *,
        version: int | None = None,
        dataset: str | None = None,
        dataset_version: int | None = None,
        status: RunStatus | None = None,
        limit: int | None = None,
        oldest_first: bool = False,
        after: RunKey | None = None,
    ) -> list[EvalRunSummary]:
        """Runs of ``prompt``, newest first (oldest first with ``oldest_first``), those matching every
        filter given (at most ``limit``, by default :data:`DEFAULT_RUN_LIMIT`); with ``after``, those
        that come after that run in this order (its ``(finished_at, run_id)``)."""
        ...

    def get_run(self, prompt: str, run_id: str) -> EvalRun:
        """One run of ``prompt``, with every case."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


def check_run(run: EvalRun, dataset: Dataset) -> None:
    """Refuse a run that does not fit ``dataset``: unknown or repeated cases, another content, or a
    ``complete`` status with cases missing or in error."""
    if run.dataset_hash != dataset.content_hash:
        raise InvalidInputError(
            f"run {run.run_id} ran a dataset whose content hash is {run.dataset_hash}, not that of "
            f"{dataset.ref} ({dataset.content_hash})"
        )
    known = {case.id for case in dataset.cases}
    seen: set[str] = set()
    for result in run.cases:
        if result.case_id not in known:
            raise InvalidInputError(
                f"run {run.run_id}: case {result.case_id!r} is not a case of {dataset.ref}"
            )
        if result.case_id in seen:
            raise InvalidInputError(f"run {run.run_id}: case {result.case_id!r} has two results")
        seen.add(result.case_id)
    if run.status == "complete":
        missing = len(known - seen)
        errors = sum(1 for result in run.cases if result.status == "error")
        if missing or errors:
            raise InvalidInputError(
                f"run {run.run_id} says complete, but {missing} cases of {dataset.ref} have no result and "
                f"{errors} ended in error: a run with missing or failed calls is incomplete"
            )


def _check_version(version: int | None, what: str) -> None:
    if version is not None:
        check_integer(version, what, low=1, high=MAX_VERSION)


class SqlEvalStore:
    """An :class:`EvalStore` in the database of ``registry``; safe to share between threads.

    ``max_dataset_bytes`` bounds a dataset's content (:class:`~otel_prompt_canary.errors.TooLargeError`);
    with ``owns_registry``, :meth:`close` closes the registry too.
    """

    def __init__(
        self,
        registry: SqlRegistry,
        *,
        max_dataset_bytes: int = MAX_DATASET_BYTES,
        owns_registry: bool = False,
    ) -> None:
        self.registry = registry
        self.max_dataset_bytes = max_dataset_bytes
        self._owns_registry = owns_registry

    def __repr__(self) -> str:
        return f"SqlEvalStore({self.registry.url!r})"

    def close(self) -> None:
        """Close the registry when this store owns it (else its owner does)."""
        if self._owns_registry:
            self.registry.close()

    # -- datasets --------------------------------------------------------------------------------

    def push_dataset(self, spec: DatasetSpec, *, author: str | None = None) -> DatasetPushResult:
        """Store ``spec`` as a new version of its dataset, or return the version with identical content."""
        check_size(spec, max_bytes=self.max_dataset_bytes)
        if author is not None:
            check_storable(author, "author")
        latest = self.registry.get_version(spec.prompt)  # NotFoundError for an unknown prompt
        check_variables(spec.cases, latest, [spec.where(i) for i in range(len(spec.cases))])
        return self.registry.database.write(
            lambda conn: self._push(conn, spec, author),
            contended=f"could not store a version of dataset {spec.name!r}: too much concurrent pushing",
        )

    def _push(self, conn: Connection, spec: DatasetSpec, author: str | None) -> DatasetPushResult:
        d = t.datasets.c
        digest = spec.content_hash()
        mine = (d.prompt == spec.prompt, d.name == spec.name)
        existing = conn.execute(select(d.body).where(*mine, d.content_hash == digest)).scalar()
        if existing is not None:
            return DatasetPushResult(dataset=Dataset.model_validate(existing), created=False)
        latest = conn.execute(select(func.max(d.version)).where(*mine)).scalar()
        now = utc_now()
        dataset = Dataset.from_spec(spec, version=(latest or 0) + 1, created_at=now, author=author)
        conn.execute(
            t.datasets.insert().values(
                prompt=spec.prompt,
                name=spec.name,
                version=dataset.version,
                content_hash=digest,
                body=dataset.model_dump(mode="json", by_alias=True),
                created_at=now,
            )
        )
        return DatasetPushResult(dataset=dataset, created=True)

    def list_datasets(
        self, prompt: str, *, after: str | None = None, limit: int | None = None
    ) -> list[DatasetSummary]:
        """The datasets of ``prompt``, by name (the first ``limit`` whose name sorts after
        ``after``, when given)."""
        validate_prompt_name(prompt)
        if after is not None:
            validate_dataset_name(after)
        if limit is not None:
            check_integer(limit, "limit", low=1)
        d = t.datasets.c
        query = (
            select(d.name, func.max(d.version), func.count())
            .where(d.prompt == prompt)
            .group_by(d.name)
            .order_by(d.name)
        )
        if after is not None:
            query = query.where(d.name > after)
        if limit is not None:
            query = query.limit(limit)
        with self.registry.database.read() as conn:
            if not SqlRegistry.prompt_exists(conn, prompt):
                raise NotFoundError(f"unknown prompt {prompt!r}")
            counts = conn.execute(query).all()
            summaries = []
            for name, latest, versions in counts:
                newest = self._dataset(conn, prompt, name, latest)
                summaries.append(
                    DatasetSummary(
                        prompt=prompt,
                        name=name,
                        latest_version=latest,
                        versions=versions,
                        cases=len(newest.cases),
                        updated_at=newest.created_at,
                    )
                )
        return summaries

    def get_dataset(self, prompt: str, name: str, version: int | None = None) -> Dataset:
        """One version of a dataset of ``prompt``; the newest when ``version`` is None."""
        validate_prompt_name(prompt)
        validate_dataset_name(name)
        _check_version(version, "dataset version")
        with self.registry.database.read() as conn:
            return self._dataset(conn, prompt, name, version)

    @staticmethod
    def _dataset(conn: Connection, prompt: str, name: str, version: int | None) -> Dataset:
        d = t.datasets.c
        query = select(d.body).where(d.prompt == prompt, d.name == name)
        if version is None:
            query = query.order_by(d.version.desc()).limit(1)
        else:
            query = query.where(d.version == version)
        body = conn.execute(query).scalar()
        if body is None:
            if not SqlRegistry.prompt_exists(conn, prompt):
                raise NotFoundError(f"unknown prompt {prompt!r}")
            if (
                version is None
                or conn.execute(select(d.version).where(d.prompt == prompt, d.name == name)).first() is None
            ):
                raise NotFoundError(f"prompt {prompt!r} has no dataset {name!r}")
            raise NotFoundError(f"dataset {name!r} of {prompt!r} has no version {version}")
        return Dataset.model_validate(body)

    def diff_datasets(self, prompt: str, name: str, a: int, b: int) -> DatasetDiff:
        """What changed from version ``a`` to version ``b`` of a dataset."""
        validate_prompt_name(prompt)
        validate_dataset_name(name)
        _check_version(a, "dataset version")
        _check_version(b, "dataset version")
        with self.registry.database.read() as conn:
            return diff_datasets(self._dataset(conn, prompt, name, a), self._dataset(conn, prompt, name, b))

    # -- runs ------------------------------------------------------------------------------------

    def record_run(self, run: EvalRun) -> EvalRun:
        """Store an evaluation run, checked against its version and dataset version first."""
        check_storable(run.model_dump(mode="json"), "run")
        self.registry.get_version(run.prompt, run.version)  # NotFoundError for an unknown version
        check_run(run, self.get_dataset(run.prompt, run.dataset, run.dataset_version))
        totals = run.totals

        def insert(conn: Connection) -> EvalRun:
            r = t.eval_runs.c
            if conn.execute(select(r.run_id).where(r.run_id == run.run_id)).first() is not None:
                raise InvalidInputError(f"run {run.run_id} is already stored: a run id is recorded once")
            conn.execute(
                t.eval_runs.insert().values(
                    run_id=run.run_id,
                    prompt=run.prompt,
                    version=run.version,
                    dataset=run.dataset,
                    dataset_version=run.dataset_version,
                    status=run.status,
                    source=run.source,
                    cases=totals.cases,
                    passed=totals.passed,
                    model=run.model,
                    started_at=run.started_at,
                    finished_at=run.finished_at,
                    body=run.model_dump(mode="json"),
                )
            )
            return run

        return self.registry.database.write(insert, contended=f"could not store run {run.run_id}")

    def list_runs(
        self,
        prompt: str,
        *,
        version: int | None = None,
        dataset: str | None = None,
        dataset_version: int | None = None,
        status: RunStatus | None = None,
        limit: int | None = None,
        oldest_first: bool = False,
        after: RunKey | None = None,
    ) -> list[EvalRunSummary]:
        """Runs of ``prompt``, newest first (oldest first with ``oldest_first``), those matching every
        filter given; with ``after``, those that come after that run in this order."""
        validate_prompt_name(prompt)
        _check_version(version, "version")
        _check_version(dataset_version, "dataset version")
        if dataset is not None:
            validate_dataset_name(dataset)
        if limit is not None:
            check_integer(limit, "limit", low=1)
        r = t.eval_runs.c
        query = select(*(column for column in t.eval_runs.c if column.name != "body")).where(
            r.prompt == prompt
        )
        for column, wanted in (
            (r.version, version),
            (r.dataset, dataset),
            (r.dataset_version, dataset_version),
            (r.status, status),
        ):
            if wanted is not None:
                query = query.where(column == wanted)
        if after is not None:
            finished_at, run_id = after
            check_storable(run_id, "run id")
            if oldest_first:
                later = or_(
                    r.finished_at > finished_at, and_(r.finished_at == finished_at, r.run_id > run_id)
                )
            else:
                later = or_(
                    r.finished_at < finished_at, and_(r.finished_at == finished_at, r.run_id < run_id)
                )
            query = query.where(later)
        order = (r.finished_at, r.run_id) if oldest_first else (r.finished_at.desc(), r.run_id.desc())
        query = query.order_by(*order).limit(limit or DEFAULT_RUN_LIMIT)
        with self.registry.database.read() as conn:
            rows = list(conn.execute(query).mappings())
            if not rows and not SqlRegistry.prompt_exists(conn, prompt):
                raise NotFoundError(f"unknown prompt {prompt!r}")
        return [
            EvalRunSummary(
                run_id=row["run_id"],
                prompt=row["prompt"],
                version=row["version"],
                dataset=row["dataset"],
                dataset_version=row["dataset_version"],
                status=row["status"],
                source=row["source"],
                cases=row["cases"],
                passed=row["passed"],
                model=row["model"],
                started_at=aware(row["started_at"]),
                finished_at=aware(row["finished_at"]),
            )
            for row in rows
        ]

    def get_run(self, prompt: str, run_id: str) -> EvalRun:
        """One run of ``prompt``, with every case."""
        validate_prompt_name(prompt)
        check_storable(run_id, "run id")
        r = t.eval_runs.c
        with self.registry.database.read() as conn:
            body = conn.execute(select(r.body).where(r.run_id == run_id, r.prompt == prompt)).scalar()
        if body is None:
            raise NotFoundError(f"prompt {prompt!r} has no evaluation run {run_id!r}")
        return EvalRun.model_validate(body)
