"""The registry of a control plane: the :class:`~otel_prompt_canary.registry.base.Registry` interface
over HTTP, so that the CLI works the same against a local store or ``prompt-canary serve``.

::

    with open_registry("https://prompt-canary.internal:8000", token=token) as registry:
        registry.push(spec, author="ana")

Requests go through :class:`~otel_prompt_canary.routing.control_plane.ControlPlaneClient` (timeouts,
proxies, TLS); its errors are the :mod:`otel_prompt_canary.errors` classes a local store raises.
Lists follow the control plane's pages (``Link: <...>; rel="next"``) until they hold what was asked:
everything, or ``limit`` records.
:func:`open_registry` opens a local store for any other target, importing the SQL store only then:
a control plane's registry loads no database stack.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, JsonValue, TypeAdapter, ValidationError

from otel_prompt_canary import cursors
from otel_prompt_canary.errors import InvalidInputError, NotFoundError
from otel_prompt_canary.names import ACTOR_HEADER, ENVIRONMENT_PARAMETER
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
    validate_environment_name,
    validate_prompt_name,
)
from otel_prompt_canary.routing.control_plane import Answer, ControlPlaneClient, is_remote
from otel_prompt_canary.routing.environments import resolve_environment
from otel_prompt_canary.routing.paging import read_pages

if TYPE_CHECKING:
    from otel_prompt_canary.registry.base import Registry

__all__ = ["RemoteRegistry", "is_remote", "open_registry"]

_M = TypeVar("_M", bound=BaseModel)


class RemoteRegistry:
    """A :class:`~otel_prompt_canary.registry.base.Registry` served by ``prompt-canary serve``.

    ``token`` is the bearer token writes need; ``timeout`` (seconds) bounds connecting and each
    read; ``verify`` is the TLS verification (a CA bundle path, an ``ssl.SSLContext``, or a bool).
    ``environment`` is the environment whose routing flags, rollouts and audit trail it uses when a
    call names none (default: ``OTEL_PROMPT_CANARY_ENVIRONMENT``, else
    :data:`~otel_prompt_canary.names.DEFAULT_ENVIRONMENT`). Safe to share between threads.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout: float = 10.0,
        verify: ssl.SSLContext | str | bool = True,
        environment: str | None = None,
    ) -> None:
        self.environment = resolve_environment(environment)
        self._client = ControlPlaneClient(base_url, token=token, timeout=timeout, verify=verify)
        self.base_url = self._client.base_url
        self.timeout = timeout
        self._has_token = bool(token)

    def __repr__(self) -> str:
        auth = "with token" if self._has_token else "no token"
        return f"RemoteRegistry({self.base_url!r}, {auth}, environment {self.environment!r})"

    def __enter__(self) -> RemoteRegistry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections."""
        self._client.close()

    # -- requests and answers -----------------------------------------------------------------

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

    def _in(self, environment: str | None) -> dict[str, str | int]:
        """The ``?environment=`` of a call: the one it names, else this client's."""
        chosen = self.environment if environment is None else validate_environment_name(environment)
        return {ENVIRONMENT_PARAMETER: chosen}

    @staticmethod
    def _prompt_path(name: str) -> str:
        # Names are validated here too: a name never becomes a path traversal.
        return f"/v1/prompts/{validate_prompt_name(name)}"

    # -- Registry -----------------------------------------------------------------------------

    def push(self, spec: PromptSpec, *, author: str | None = None) -> PushResult:
        """Store ``spec`` as a new version, or return the version with identical content."""
        answer = self._request("POST", "/v1/prompts", json=spec.model_dump(mode="json"), actor=author)
        return self._client.parse(answer, PushResult)

    def _pages(
        self,
        path: str,
        model: type[_M],
        *,
        limit: int | None,
        cursor: str | None,
        newest_first: bool,
        query: Mapping[str, str | int] | None = None,
    ) -> list[_M]:
        """Follow the pages of a list from ``cursor`` until ``limit`` records (all when None).

        ``newest_first`` lists (logs, versions) go back in time page after page; what is returned
        is oldest first all the same.
        """
        pages = read_pages(
            self._client,
            path,
            lambda answer: self._client.parse_list(answer, model),
            query=query,
            limit=limit,
            cursor=cursor,
        )
        if newest_first:
            pages.reverse()
        return [record for page in pages for record in page]

    def list_prompts(
        self, *, after: str | None = None, limit: int | None = None, environment: str | None = None
    ) -> list[PromptSummary]:
        """Every prompt with its newest version number and routing state in the environment, by
        name (the first ``limit`` ones whose name sorts after ``after``, when given)."""
        cursor = (
            None if after is None else cursors.encode_cursor(cursors.PROMPTS, validate_prompt_name(after))
        )
        return self._pages(
            "/v1/prompts",
            PromptSummary,
            limit=limit,
            cursor=cursor,
            newest_first=False,
            query=self._in(environment),
        )

    def list_versions(
        self, name: str, *, before: int | None = None, limit: int | None = None
    ) -> list[PromptVersion]:
        """Every version of ``name``, oldest first (the newest ``limit`` ones numbered below
        ``before``, when given)."""
        path = self._prompt_path(name) + "/versions"
        cursor = None if before is None else cursors.encode_cursor(cursors.VERSIONS, int(before))
        return self._pages(path, PromptVersion, limit=limit, cursor=cursor, newest_first=True)

    def get_version(self, name: str, version: int | None = None) -> PromptVersion:
        """One version of ``name``; the newest when ``version`` is None."""
        which = "latest" if version is None else str(int(version))
        path = f"{self._prompt_path(name)}/versions/{which}"
        return self._client.parse(self._request("GET", path), PromptVersion)

    def diff(self, name: str, a: int, b: int) -> PromptDiff:
        """What changed from version ``a`` to version ``b`` of ``name``."""
        path = self._prompt_path(name) + "/diff"
        return self._client.parse(
            self._request("GET", path, query={"from": int(a), "to": int(b)}), PromptDiff
        )

    def get_route(self, name: str, *, environment: str | None = None) -> Route:
        """The routing flag of ``name`` in the environment."""
        validate_prompt_name(name)
        answer = self._request("GET", f"/v1/routes/{name}", query=self._in(environment))
        return self._client.parse(answer, Route)

    def list_routes(self, *, environment: str | None = None) -> list[Route]:
        """The routing flags of every prompt in the environment, by name."""
        answer = self._request("GET", "/v1/routes", query=self._in(environment))
        try:
            return TypeAdapter(list[Route]).validate_python(answer.data["routes"])
        except (KeyError, TypeError, ValidationError) as exc:
            raise self._client.unexpected(f"{type(exc).__name__}: {exc}") from exc

    def start_rollout(
        self,
        name: str,
        version: int | None,
        *,
        ramp: tuple[float, ...] | None = None,
        actor: str,
        reason: str = "",
        policy: dict[str, JsonValue] | None = None,
        expected_revision: int | None = None,
        skip_gate: bool = False,
        environment: str | None = None,
        from_environment: str | None = None,
        principal: str | None = None,
    ) -> Route:
        """Start canarying ``version`` of ``name`` in the environment along ``ramp`` (default
        1,5,20,50,100 percent).

        ``skip_gate`` starts it even if the candidate does not pass the policy's evaluation gate
        (the control plane's audit record says so). With ``from_environment``, the candidate is the
        version stable there (``version`` may be None). ``principal`` is ignored: the control plane
        records the principal of this client's credential.
        """
        body: dict[str, Any] = {"reason": reason}
        if version is not None:
            body["version"] = version
        if from_environment is not None:
            body["from_environment"] = validate_environment_name(from_environment)
        if skip_gate:
            body["skip_gate"] = True
        if ramp is not None:
            body["ramp"] = list(ramp)
        if policy is not None:
            body["policy"] = policy
        if expected_revision is not None:
            body["expected_revision"] = expected_revision
        path = self._prompt_path(name) + "/rollouts"
        answer = self._request("POST", path, json=body, actor=actor, query=self._in(environment))
        return self._client.parse(answer, Route)

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
        environment: str | None = None,
        principal: str | None = None,
    ) -> Route:
        """Apply ``action`` (advance, pause, resume, promote, rollback, revert) to the rollout of
        ``name`` in the environment (``principal`` is ignored: see :meth:`start_rollout`)."""
        action = Action(action)
        if action is Action.START:
            raise InvalidInputError("use start_rollout() to start a rollout")
        body: dict[str, Any] = {"reason": reason, "evidence": evidence}
        if expected_revision is not None:
            body["expected_revision"] = expected_revision
        if rollout_id is not None:
            body["rollout_id"] = rollout_id
        if to_version is not None:
            body["to_version"] = to_version
        path = f"{self._prompt_path(name)}/rollout/{action.value}"
        answer = self._request("POST", path, json=body, actor=actor, query=self._in(environment))
        return self._client.parse(answer, Route)

    def get_rollout(
        self, name: str, rollout_id: str | None = None, *, environment: str | None = None
    ) -> Rollout:
        """The rollout ``rollout_id`` of ``name``, or its current (or last) rollout in the environment."""
        query = self._in(environment)
        if rollout_id is not None:
            query["rollout_id"] = rollout_id
        answer = self._request("GET", self._prompt_path(name) + "/rollout", query=query)
        try:
            found = answer.data["rollout"]
        except (KeyError, TypeError) as exc:
            raise self._client.unexpected(f"{type(exc).__name__}: {exc}") from exc
        if found is None:
            raise NotFoundError(f"prompt {name!r} has never had a rollout")
        try:
            return Rollout.model_validate(found)
        except ValidationError as exc:
            raise self._client.unexpected(str(exc)) from exc

    def rollout_verdict(self, name: str, *, environment: str | None = None) -> dict[str, Any]:
        """``GET /v1/prompts/{name}/rollout/verdict``: the judge's verdict on the active rollout, as JSON.

        The document is the control plane's (``RolloutVerdict`` in
        :mod:`otel_prompt_canary.service.schemas`); :class:`~otel_prompt_canary.errors.NotFoundError`
        when the prompt has no active rollout.
        """
        answer = self._request(
            "GET", self._prompt_path(name) + "/rollout/verdict", query=self._in(environment)
        )
        if not isinstance(answer.data, dict) or "verdict" not in answer.data:
            raise self._client.unexpected(f"expected a verdict document, got {str(answer.data)[:200]!r}")
        return answer.data

    def history(
        self,
        name: str,
        *,
        limit: int | None = None,
        before: int | None = None,
        environment: str | None = None,
    ) -> list[AuditRecord]:
        """The audit records of ``name`` in the environment, oldest first (the newest ``limit``
        ones when given; with ``before``, only records whose id is smaller)."""
        path = self._prompt_path(name) + "/rollout/history"
        cursor = None if before is None else cursors.encode_cursor(cursors.AUDIT, int(before))
        return self._pages(
            path, AuditRecord, limit=limit, cursor=cursor, newest_first=True, query=self._in(environment)
        )


def open_registry(
    target: str | os.PathLike[str],
    *,
    token: str | None = None,
    timeout: float = 10.0,
    environment: str | None = None,
) -> Registry:
    """A registry for ``target``: the control plane at an ``http(s)://`` URL, else a local store.

    Local targets (a file path, ``sqlite:///PATH``, ``postgresql://...``) go to
    :func:`otel_prompt_canary.registry.open_store`; ``token`` and ``environment`` (the default
    environment of calls, see :class:`RemoteRegistry`) are only used by a control plane.
    """
    if is_remote(target):
        return RemoteRegistry(os.fspath(target), token=token, timeout=timeout, environment=environment)
    # Imported here: a control plane's registry never loads SQLAlchemy.
    from otel_prompt_canary.registry import open_store

    store: Registry = open_store(target)
    return store
