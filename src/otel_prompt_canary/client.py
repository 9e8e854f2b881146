"""The control plane's HTTP client: the :class:`~otel_prompt_canary.registry.base.Registry` interface
over HTTP, so that the CLI and the router work the same against a local store or a remote service.

Light on purpose (httpx and pydantic only, never the server stack): applications import it.

Error answers of the service (``{"error": {"type": ..., "message": ...}}``) are raised again as the
same :mod:`otel_prompt_canary.errors` class; a service that cannot be reached raises
:class:`~otel_prompt_canary.errors.RegistryUnavailableError`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, JsonValue, TypeAdapter, ValidationError

from otel_prompt_canary import errors
from otel_prompt_canary._version import __version__
from otel_prompt_canary.analysis.stats import Report
from otel_prompt_canary.errors import (
    AuthenticationError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PromptCanaryError,
    RegistryUnavailableError,
    TooLargeError,
)
from otel_prompt_canary.registry.alerts import AlertRecord
from otel_prompt_canary.registry.base import Registry
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
    validate_prompt_name,
)
from otel_prompt_canary.registry.reports import ReportReceipt
from otel_prompt_canary.registry.sql import open_store

__all__ = ["ACTOR_HEADER", "RemoteRegistry", "RoutesPage", "is_remote", "open_registry"]

#: The header naming who asks for a change (recorded as the actor or author).
ACTOR_HEADER = "X-Prompt-Canary-Actor"

_M = TypeVar("_M", bound=BaseModel)

#: Error classes by the name the service puts in ``error.type``.
_ERRORS_BY_TYPE: dict[str, type[PromptCanaryError]] = {
    name: cls
    for name in errors.__all__
    if isinstance(cls := getattr(errors, name), type) and issubclass(cls, PromptCanaryError)
}
_ERRORS_BY_STATUS: dict[int, type[PromptCanaryError]] = {
    400: InvalidInputError,
    401: AuthenticationError,
    403: AuthenticationError,
    404: NotFoundError,
    409: ConflictError,
    413: TooLargeError,
    415: InvalidInputError,
    422: InvalidInputError,
    502: RegistryUnavailableError,
    503: RegistryUnavailableError,
    504: RegistryUnavailableError,
}


def is_remote(target: str | os.PathLike[str]) -> bool:
    """True when ``target`` is the ``http(s)://`` URL of a control plane."""
    return os.fspath(target).lower().startswith(("http://", "https://"))


@dataclass(frozen=True, slots=True)
class RoutesPage:
    """One answer of ``GET /v1/routes``: every routing flag, and the revision of the set."""

    revision: str
    routes: list[Route]


class RemoteRegistry:
    """A :class:`~otel_prompt_canary.registry.base.Registry` served by ``prompt-canary serve``.

    ``token`` is the bearer token writes need. ``timeout`` (seconds) bounds every request; a
    long-poll gets its wait on top. ``transport`` replaces the network (tests). Safe to share
    between threads.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not is_remote(base_url):
            raise InvalidInputError(
                f"invalid control plane URL {base_url!r}: it must start with http:// or https://"
            )
        if timeout <= 0:
            raise InvalidInputError(f"timeout must be positive, got {timeout}")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._has_token = bool(token)
        headers = {"User-Agent": f"otel-prompt-canary/{__version__}", "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            self._http = httpx.Client(
                base_url=self.base_url, headers=headers, timeout=timeout, transport=transport
            )
        except httpx.InvalidURL as exc:
            raise InvalidInputError(f"invalid control plane URL {base_url!r}: {exc}") from exc

    def __repr__(self) -> str:
        auth = "with token" if self._has_token else "no token"
        return f"RemoteRegistry({self.base_url!r}, {auth})"

    def __enter__(self) -> RemoteRegistry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    # -- transport ----------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str | int | float] | None = None,
        actor: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> httpx.Response:
        extra = dict(headers or {})
        if actor is not None:
            extra[ACTOR_HEADER] = actor
        try:
            response = self._http.request(
                method,
                path,
                json=json,
                params=params,
                headers=extra,
                timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.TimeoutException as exc:
            raise RegistryUnavailableError(
                f"control plane at {self.base_url} did not answer in time ({type(exc).__name__})"
            ) from exc
        except httpx.TransportError as exc:
            raise RegistryUnavailableError(
                f"cannot reach the control plane at {self.base_url}: {exc or type(exc).__name__}"
            ) from exc
        if response.status_code >= 400:
            raise self._error(response)
        return response

    def _error(self, response: httpx.Response) -> PromptCanaryError:
        status = response.status_code
        type_: str | None = None
        message: str | None = None
        try:
            body = response.json()
            error = body["error"]
            type_, message = str(error["type"]), str(error["message"])
        except (ValueError, KeyError, TypeError):
            snippet = response.text.strip().replace("\n", " ")[:200]
            message = f"control plane answered HTTP {status}" + (f": {snippet}" if snippet else "")
        cls = _ERRORS_BY_TYPE.get(type_ or "") or _ERRORS_BY_STATUS.get(status) or PromptCanaryError
        return cls(message)

    def _model(self, response: httpx.Response, model: type[_M]) -> _M:
        try:
            return model.model_validate_json(response.content)
        except ValidationError as exc:
            raise PromptCanaryError(
                f"unexpected answer from the control plane at {self.base_url}: {exc}"
            ) from exc

    def _models(self, response: httpx.Response, model: type[_M]) -> list[_M]:
        try:
            return TypeAdapter(list[model]).validate_json(response.content)  # type: ignore[valid-type]
        except ValidationError as exc:
            raise PromptCanaryError(
                f"unexpected answer from the control plane at {self.base_url}: {exc}"
            ) from exc

    @staticmethod
    def _prompt_path(name: str) -> str:
        # Names are validated here too: a name never becomes a path traversal.
        return f"/v1/prompts/{validate_prompt_name(name)}"

    # -- Registry -----------------------------------------------------------------------------

    def push(self, spec: PromptSpec, *, author: str | None = None) -> PushResult:
        """Store ``spec`` as a new version, or return the version with identical content."""
        response = self._request("POST", "/v1/prompts", json=spec.model_dump(mode="json"), actor=author)
        return self._model(response, PushResult)

    def list_prompts(self) -> list[PromptSummary]:
        """Every prompt with its newest version number and routing state, by name."""
        return self._models(self._request("GET", "/v1/prompts"), PromptSummary)

    def list_versions(self, name: str) -> list[PromptVersion]:
        """Every version of ``name``, oldest first."""
        path = self._prompt_path(name) + "/versions"
        return self._models(self._request("GET", path), PromptVersion)

    def get_version(self, name: str, version: int | None = None) -> PromptVersion:
        """One version of ``name``; the newest when ``version`` is None."""
        which = "latest" if version is None else str(int(version))
        path = f"{self._prompt_path(name)}/versions/{which}"
        return self._model(self._request("GET", path), PromptVersion)

    def diff(self, name: str, a: int, b: int) -> PromptDiff:
        """What changed from version ``a`` to version ``b`` of ``name``."""
        path = self._prompt_path(name) + "/diff"
        response = self._request("GET", path, params={"from": int(a), "to": int(b)})
        return self._model(response, PromptDiff)

    def get_route(self, name: str) -> Route:
        """The routing flag of ``name``."""
        validate_prompt_name(name)
        return self._model(self._request("GET", f"/v1/routes/{name}"), Route)

    def list_routes(self) -> list[Route]:
        """The routing flags of every prompt, by name."""
        page = self.fetch_routes()
        assert page is not None  # without If-None-Match the service always answers 200
        return page.routes

    def fetch_routes(self, *, revision: str | None = None, wait: float | None = None) -> RoutesPage | None:
        """Every routing flag; None when ``revision`` is still current (HTTP 304).

        With ``wait`` (seconds, at most 60) and a ``revision``, the service holds the answer until a
        route changes or the wait is over.
        """
        headers = {"If-None-Match": f'"{revision}"'} if revision is not None else None
        params = {"wait": wait} if wait is not None else None
        timeout = self.timeout + (wait or 0.0)
        response = self._request("GET", "/v1/routes", params=params, headers=headers, timeout=timeout)
        if response.status_code == 304:
            return None
        try:
            body = response.json()
            return RoutesPage(
                revision=str(body["revision"]),
                routes=TypeAdapter(list[Route]).validate_python(body["routes"]),
            )
        except (ValueError, KeyError, TypeError, ValidationError) as exc:
            raise PromptCanaryError(
                f"unexpected answer from the control plane at {self.base_url}: {exc}"
            ) from exc

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
    ) -> Route:
        """Start canarying ``version`` of ``name`` along ``ramp`` (default 1,5,20,50,100 percent)."""
        body: dict[str, Any] = {"version": version, "reason": reason}
        if ramp is not None:
            body["ramp"] = list(ramp)
        if policy is not None:
            body["policy"] = policy
        if expected_revision is not None:
            body["expected_revision"] = expected_revision
        path = self._prompt_path(name) + "/rollouts"
        return self._model(self._request("POST", path, json=body, actor=actor), Route)

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
    ) -> Route:
        """Apply ``action`` (advance, pause, resume, promote, rollback) to the rollout of ``name``."""
        action = Action(action)
        if action is Action.START:
            raise InvalidInputError("use start_rollout() to start a rollout")
        body: dict[str, Any] = {"reason": reason, "evidence": evidence}
        if expected_revision is not None:
            body["expected_revision"] = expected_revision
        if rollout_id is not None:
            body["rollout_id"] = rollout_id
        path = f"{self._prompt_path(name)}/rollout/{action.value}"
        return self._model(self._request("POST", path, json=body, actor=actor), Route)

    def get_rollout(self, name: str, rollout_id: str | None = None) -> Rollout:
        """The rollout ``rollout_id`` of ``name``, or its current (or last) rollout."""
        params = {"rollout_id": rollout_id} if rollout_id is not None else None
        response = self._request("GET", self._prompt_path(name) + "/rollout", params=params)
        try:
            found = response.json()["rollout"]
        except (ValueError, KeyError, TypeError) as exc:
            raise PromptCanaryError(
                f"unexpected answer from the control plane at {self.base_url}: {exc}"
            ) from exc
        if found is None:
            raise NotFoundError(f"prompt {name!r} has never had a rollout")
        try:
            return Rollout.model_validate(found)
        except ValidationError as exc:
            raise PromptCanaryError(
                f"unexpected answer from the control plane at {self.base_url}: {exc}"
            ) from exc

    def history(self, name: str, *, limit: int | None = None) -> list[AuditRecord]:
        """The audit records of ``name``, oldest first (the newest ``limit`` ones when given)."""
        params = {"limit": limit} if limit is not None else None
        path = self._prompt_path(name) + "/rollout/history"
        return self._models(self._request("GET", path, params=params), AuditRecord)

    def list_alerts(
        self, prompt: str | None = None, *, rollout_id: str | None = None, limit: int | None = None
    ) -> list[AlertRecord]:
        """The control plane's alert log, oldest first (the newest ``limit`` records when given)."""
        params: dict[str, str | int] = {}
        if prompt is not None:
            params["prompt"] = validate_prompt_name(prompt)
        if rollout_id is not None:
            params["rollout_id"] = rollout_id
        if limit is not None:
            params["limit"] = limit
        return self._models(self._request("GET", "/v1/alerts", params=params or None), AlertRecord)

    def send_report(
        self, report: Report, *, prompt: str, source: str = "application", report_id: str | None = None
    ) -> ReportReceipt:
        """Post ``report`` (statistics of one rollout) to ``/v1/reports`` with the bearer token.

        The report is counted once per ``report_id`` (default: a new random id, so a retry of this
        call with the same ``report_id`` is safe). ``report.window_seconds`` must be at least 1.
        """
        if report.window_seconds < 1:
            raise InvalidInputError("a report sent to the control plane needs window_seconds >= 1")
        starts = [start for c in (report.stable, report.canary) for series in c.values() for start in series]
        now = datetime.now(UTC)

        def stamp(value: datetime) -> str:
            return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")

        first = datetime.fromtimestamp(min(starts), UTC) if starts else now
        last = datetime.fromtimestamp(max(starts) + report.window_seconds, UTC) if starts else now
        body = {
            "id": report_id or "pcr_" + uuid.uuid4().hex,
            "type": "prompt_canary.report",
            "source": source,
            "prompt": validate_prompt_name(prompt),
            **report.model_dump(mode="json"),
            "window_start": stamp(first),
            "window_end": stamp(last),
            "created_at": stamp(now),
        }
        return self._model(self._request("POST", "/v1/reports", json=body), ReportReceipt)

    def health(self) -> dict[str, Any]:
        """The service's ``/healthz`` answer (raises when it is unhealthy or unreachable)."""
        body: dict[str, Any] = self._request("GET", "/healthz").json()
        return body


def open_registry(
    target: str | os.PathLike[str], *, token: str | None = None, timeout: float = 10.0
) -> Registry:
    """A registry for ``target``: the control plane at an ``http(s)://`` URL, else a local store.

    Local targets (a file path, ``sqlite:///PATH``, ``postgresql://...``) go to
    :func:`otel_prompt_canary.registry.open_store`; ``token`` is only used by a control plane.
    """
    if is_remote(target):
        return RemoteRegistry(os.fspath(target), token=token, timeout=timeout)
    return open_store(target)
