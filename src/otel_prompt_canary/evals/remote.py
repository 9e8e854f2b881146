"""Datasets and evaluation runs of a control plane: the :class:`~otel_prompt_canary.evals.store.EvalStore`
interface over its API, so that the CLI works the same against a local store or ``prompt-canary serve``.

::

    store = open_eval_store("https://prompt-canary.internal:8787", token=token)
    store.push_dataset(spec)

The control plane checks what a local store checks and answers its refusals as errors of
:mod:`otel_prompt_canary.errors` (through
:class:`~otel_prompt_canary.routing.control_plane.ControlPlaneClient`). :func:`open_eval_store`
opens the store a target names: a control plane's URL, else the local registry at that path or
database URL.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel

from otel_prompt_canary.cursors import DATASETS, RUNS, encode_cursor, run_key
from otel_prompt_canary.errors import InvalidInputError
from otel_prompt_canary.evals.datasets import (
    Dataset,
    DatasetDiff,
    DatasetPushResult,
    DatasetSpec,
    DatasetSummary,
    validate_dataset_name,
)
from otel_prompt_canary.evals.results import EvalRun, EvalRunSummary, RunStatus
from otel_prompt_canary.evals.store import DEFAULT_RUN_LIMIT, EvalStore, RunKey, SqlEvalStore
from otel_prompt_canary.names import ACTOR_HEADER
from otel_prompt_canary.registry.models import validate_prompt_name
from otel_prompt_canary.routing.control_plane import Answer, ControlPlaneClient, is_remote
from otel_prompt_canary.routing.paging import read_pages

__all__ = ["RemoteEvalStore", "open_eval_store"]

_M = TypeVar("_M", bound=BaseModel)
_RUN_ID = re.compile(r"^[0-9a-f]{8,64}$")


class RemoteEvalStore:
    """An :class:`~otel_prompt_canary.evals.store.EvalStore` served by ``prompt-canary serve``.

    ``token`` is the bearer token writes need (and reads, when the control plane closes them).
    """

    def __init__(self, base_url: str, *, token: str | None = None, timeout: float = 30.0) -> None:
        self._client = ControlPlaneClient(base_url, token=token, timeout=timeout)
        self.base_url = self._client.base_url

    def __repr__(self) -> str:
        return f"RemoteEvalStore({self.base_url!r})"

    def close(self) -> None:
        """Close the connections."""
        self._client.close()

    def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        query: Mapping[str, str | int] | None = None,
        actor: str | None = None,
    ) -> Answer:
        headers = {ACTOR_HEADER: actor} if actor is not None else None
        return self._client.request(method, path, json=json, query=query, headers=headers)

    @staticmethod
    def _prompt(prompt: str) -> str:
        # Names are validated here too: a name never becomes a path traversal.
        return f"/v1/prompts/{validate_prompt_name(prompt)}"

    def push_dataset(self, spec: DatasetSpec, *, author: str | None = None) -> DatasetPushResult:
        """Store ``spec`` as a new version of its dataset, or return the version with identical content."""
        body = spec.model_dump(mode="json", by_alias=True)
        answer = self._request("POST", self._prompt(spec.prompt) + "/datasets", json=body, actor=author)
        return self._client.parse(answer, DatasetPushResult)

    def _pages(
        self,
        path: str,
        model: type[_M],
        *,
        query: Mapping[str, str | int] | None = None,
        limit: int | None,
        cursor: str | None,
    ) -> list[_M]:
        """The records of a list, following its pages from ``cursor`` until ``limit`` (all when None)."""
        pages = read_pages(
            self._client,
            path,
            lambda answer: self._client.parse_list(answer, model),
            query=query,
            limit=limit,
            cursor=cursor,
        )
        return [record for page in pages for record in page]

    def list_datasets(
        self, prompt: str, *, after: str | None = None, limit: int | None = None
    ) -> list[DatasetSummary]:
        """The datasets of ``prompt``, by name (the first ``limit`` whose name sorts after
        ``after``, when given), every page of the list read."""
        path = self._prompt(prompt) + "/datasets"
        cursor = None if after is None else encode_cursor(DATASETS, validate_dataset_name(after))
        return self._pages(path, DatasetSummary, limit=limit, cursor=cursor)

    def get_dataset(self, prompt: str, name: str, version: int | None = None) -> Dataset:
        """One version of a dataset of ``prompt``; the newest when ``version`` is None."""
        which = "latest" if version is None else str(int(version))
        path = f"{self._prompt(prompt)}/datasets/{validate_dataset_name(name)}/versions/{which}"
        return self._client.parse(self._request("GET", path), Dataset)

    def diff_datasets(self, prompt: str, name: str, a: int, b: int) -> DatasetDiff:
        """What changed from version ``a`` to version ``b`` of a dataset."""
        path = f"{self._prompt(prompt)}/datasets/{validate_dataset_name(name)}/diff"
        return self._client.parse(
            self._request("GET", path, query={"from": int(a), "to": int(b)}), DatasetDiff
        )

    def record_run(self, run: EvalRun) -> EvalRun:
        """Store an evaluation run (the control plane checks it first)."""
        body = run.model_dump(mode="json")
        answer = self._request("POST", self._prompt(run.prompt) + "/evals", json=body, actor=run.actor)
        return self._client.parse(answer, EvalRun)

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
        """Runs of ``prompt``, newest first (oldest first with ``oldest_first``), those matching
        every filter given (at most ``limit``, by default
        :data:`~otel_prompt_canary.evals.store.DEFAULT_RUN_LIMIT`, read page after page); with
        ``after``, those that come after that run in this order."""
        query: dict[str, str | int] = {}
        for key, value in (
            ("version", version),
            ("dataset", dataset),
            ("dataset_version", dataset_version),
            ("status", status),
        ):
            if value is not None:
                query[key] = value
        if oldest_first:
            query["order"] = "oldest"
        cursor = None if after is None else encode_cursor(RUNS, run_key(*after))
        path = self._prompt(prompt) + "/evals"
        return self._pages(path, EvalRunSummary, query=query, limit=limit or DEFAULT_RUN_LIMIT, cursor=cursor)

    def get_run(self, prompt: str, run_id: str) -> EvalRun:
        """One run of ``prompt``, with every case."""
        if not _RUN_ID.fullmatch(run_id):  # never a path: a run id is hexadecimal
            raise InvalidInputError(f"invalid run id {run_id[:40]!r}: a run id is 8-64 hexadecimal digits")
        return self._client.parse(self._request("GET", f"{self._prompt(prompt)}/evals/{run_id}"), EvalRun)


def open_eval_store(target: str | os.PathLike[str], *, token: str | None = None) -> EvalStore:
    """The store of datasets and runs at ``target``: a control plane's ``http(s)://`` URL, or a
    local registry (a path or a database URL)."""
    if is_remote(target):
        return RemoteEvalStore(os.fspath(target), token=token)
    from otel_prompt_canary.registry.sql import open_store

    return SqlEvalStore(open_store(target), owns_registry=True)
