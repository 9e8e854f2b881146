"""The registry interface: what the CLI, the service and the router need from a registry.

Two implementations exist: :class:`~otel_prompt_canary.registry.sql.SqlRegistry` (SQLite file or
PostgreSQL, in process) and the HTTP client of the control plane
(:class:`otel_prompt_canary.routing.remote.RemoteRegistry`). Both raise the errors of
:mod:`otel_prompt_canary.errors`, so callers handle one set of failures whatever the transport.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Protocol, runtime_checkable

from pydantic import JsonValue

from otel_prompt_canary.errors import InvalidInputError
from otel_prompt_canary.names import DEFAULT_ENVIRONMENT
from otel_prompt_canary.registry.diff import PromptDiff
from otel_prompt_canary.registry.models import (
    Action,
    AuditRecord,
    PromptSpec,
    PromptSummary,
    PromptVersion,
    PushResult,
    Rollout,
    Route,
)

__all__ = ["DEFAULT_MAX_TEMPLATE_BYTES", "Registry", "store_url"]

#: Templates larger than this are refused (HTTP 413); configurable per registry.
DEFAULT_MAX_TEMPLATE_BYTES = 256 * 1024


# ``127.0.0.1:8787``, ``localhost:8787/``, ``[::1]:8787``, ``canary.internal:443/api``: a control plane
# whose URL lost its scheme, not the name of a file anyone means to create.
_HOST_AND_PORT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9.-]*):\d{1,5}(/.*)?$")


def store_url(target: str | os.PathLike[str]) -> str:
    """The SQLAlchemy URL for a path, ``sqlite:///...`` or ``postgresql://...`` target.

    A target that reads as a host and port (``127.0.0.1:8787``) is refused rather than made into an
    SQLite file of that name: it is a control plane's URL without its ``http://``.
    """
    text = os.fspath(target)
    if "://" not in text:
        if _HOST_AND_PORT.fullmatch(text):
            raise InvalidInputError(
                f"registry {text!r} looks like a host and port, not a file: for a control plane give "
                f"its URL, http://{text} (or https://); for an SQLite file of that name, ./{text}"
            )
        return "sqlite:///" + str(Path(text).expanduser().resolve())
    scheme = text.split("://", 1)[0]
    if scheme in ("postgresql", "postgres"):
        return "postgresql+psycopg://" + text.split("://", 1)[1]
    if scheme.startswith(("sqlite", "postgresql+")):
        return text
    raise InvalidInputError(
        f"unsupported registry {text!r}: give a file path, sqlite:///PATH, postgresql://... "
        "or the http(s):// URL of a control plane"
    )


@runtime_checkable
class Registry(Protocol):
    """Prompts, versions and the routing flag of each prompt in each environment.

    Prompts and versions are shared by every environment; the routing flag, rollouts and audit
    records belong to one (``environment``, by default
    :data:`~otel_prompt_canary.names.DEFAULT_ENVIRONMENT`). Writes record ``principal``, the one
    whose credential asked, when given.
    """

    def push(self, spec: PromptSpec, *, author: str | None = None) -> PushResult:
        """Store ``spec`` as a new version, or return the existing version with identical content.

        The first version of a prompt becomes its stable version (routing state ``idle``).
        """
        ...

    def list_prompts(
        self,
        *,
        after: str | None = None,
        limit: int | None = None,
        environment: str = DEFAULT_ENVIRONMENT,
    ) -> list[PromptSummary]:
        """Every prompt with its newest version number and routing state in ``environment``, by
        name (the first ``limit`` ones whose name sorts after ``after``, when given)."""
        ...

    def list_versions(
        self, name: str, *, before: int | None = None, limit: int | None = None
    ) -> list[PromptVersion]:
        """Every version of ``name``, oldest first (the newest ``limit`` ones numbered below
        ``before``, when given)."""
        ...

    def get_version(self, name: str, version: int | None = None) -> PromptVersion:
        """One version of ``name``; the newest when ``version`` is None."""
        ...

    def diff(self, name: str, a: int, b: int) -> PromptDiff:
        """What changed from version ``a`` to version ``b`` of ``name``."""
        ...

    def get_route(self, name: str, *, environment: str = DEFAULT_ENVIRONMENT) -> Route:
        """The routing flag of ``name`` in ``environment``."""
        ...

    def list_routes(self, *, environment: str = DEFAULT_ENVIRONMENT) -> list[Route]:
        """The routing flags of every prompt in ``environment``, by name."""
        ...

    def start_rollout(
        self,
        name: str,
        version: int,
        *,
        ramp: tuple[float, ...] | None = None,
        actor: str,
        reason: str = "",
        policy: dict[str, JsonValue] | None = None,
        expected_revision: int | None = None,
        environment: str = DEFAULT_ENVIRONMENT,
        principal: str | None = None,
    ) -> Route:
        """Start canarying ``version`` of ``name`` in ``environment`` along ``ramp`` (default
        1,5,20,50,100 percent).

        ``policy`` is stored with the rollout; a store checks nothing about it. Applications and tools
        start rollouts with :func:`otel_prompt_canary.loop.start_rollout`, which resolves and
        validates the policy first (a control plane does so behind its API).
        """
        ...

    def transition(
        self,
        name: str,
        action: Action,
        *,
        actor: str,
        reason: str,
        evidence: JsonValue = None,
        expected_revision: int | None = None,
        rollout_id: str | None = None,
        to_version: int | None = None,
        environment: str = DEFAULT_ENVIRONMENT,
        principal: str | None = None,
    ) -> Route:
        """Apply ``action`` (advance, pause, resume, promote, rollback, revert) to the rollout of
        ``name`` in ``environment``.

        With ``expected_revision``, the transition applies only if the routing flag is still at that
        revision (else :class:`~otel_prompt_canary.errors.RevisionMismatchError`). With ``rollout_id``,
        only if that rollout is the current one (else
        :class:`~otel_prompt_canary.errors.ConflictError`). ``to_version`` is the version a ``revert``
        routes everyone to (default: the promoted rollout's baseline); other actions refuse it.
        """
        ...

    def get_rollout(
        self, name: str, rollout_id: str | None = None, *, environment: str = DEFAULT_ENVIRONMENT
    ) -> Rollout:
        """The rollout ``rollout_id`` of ``name`` (whatever its environment: ids are unique), or
        the current (or last) rollout of ``name`` in ``environment``."""
        ...

    def history(
        self,
        name: str,
        *,
        limit: int | None = None,
        before: int | None = None,
        environment: str = DEFAULT_ENVIRONMENT,
    ) -> list[AuditRecord]:
        """The audit records of ``name`` in ``environment``, oldest first (the newest ``limit``
        ones when given; with ``before``, only records whose id is smaller)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
