"""Routes read from the control plane over HTTP, by long polling.

The loop, on a background thread::

    GET {base}/v1/routes                         first read: answered at once
    GET {base}/v1/routes?wait=30                 with If-None-Match: <etag of the last answer>
        304 Not Modified  -> nothing changed within `wait` seconds: ask again
        200 OK            -> {"revision": "<etag>", "routes": [<Route>...]} with an ETag header;
                             the control plane answers at once when any routing flag changes
    GET {base}/v1/prompts/{name}/versions/{n}    for each version the cache does not hold yet

Reads need no credentials; a bearer token is sent when one is given. Each request has a total
deadline: ``timeout`` seconds, ``long_poll_wait + timeout`` for a long poll; an answer over
``max_answer_bytes`` is refused. On any error (connection refused, deadline passed, HTTP 5xx,
malformed or oversized body) the last known routes stay in force, the cache records the error, and
the loop retries with capped exponential backoff (0.2 s doubling up to 5 s by default, and never
more than ``long_poll_wait + timeout``), counted from the start of the failed attempt. So once the
control plane answers again, a change (a rollback) reaches the router within
``long_poll_wait + timeout`` seconds, plus the time of one answer.
"""

from __future__ import annotations

import logging
import ssl
import time
from typing import Final
from urllib.parse import quote

from pydantic import ValidationError

from otel_prompt_canary.errors import NotFoundError
from otel_prompt_canary.names import DEFAULT_ENVIRONMENT, ENVIRONMENT_PARAMETER
from otel_prompt_canary.registry.models import PromptVersion, Route, validate_environment_name
from otel_prompt_canary.routing.cache import RouteCache
from otel_prompt_canary.routing.control_plane import DEFAULT_MAX_ANSWER_BYTES, Answer, ControlPlaneClient
from otel_prompt_canary.routing.source import Backoff, RouteSource

__all__ = ["DEFAULT_LONG_POLL_WAIT", "DEFAULT_TIMEOUT", "HttpSource"]

logger = logging.getLogger("otel_prompt_canary.routing")

#: Seconds the control plane may hold a long poll before answering 304.
DEFAULT_LONG_POLL_WAIT = 30.0
#: Seconds to connect, send, and read anything that is not a long poll.
DEFAULT_TIMEOUT = 5.0
#: The shortest time between two reads when the server answers at once (no long-poll support).
DEFAULT_MIN_INTERVAL = 0.25
#: The longest wait between two attempts after failures.
_MAX_BACKOFF = 5.0

_ROUTE_FIELDS: Final = frozenset(Route.model_fields)
_VERSION_FIELDS: Final = frozenset(PromptVersion.model_fields)


def _known_fields(fields: frozenset[str], data: object) -> object:
    """``data`` without the fields not in ``fields``, so that a newer server stays readable."""
    if isinstance(data, dict):
        return {k: v for k, v in data.items() if k in fields}
    return data


class HttpSource(RouteSource):
    """Long-polls the control plane at ``base_url`` for routing flags.

    Requests go through a :class:`~otel_prompt_canary.routing.control_plane.ControlPlaneClient`
    (timeouts, proxies from the environment, TLS ``verify``); :meth:`close` wakes a long poll in
    progress at once. ``environment`` is the environment whose routing flags it reads (asked as
    ``?environment=``; the default environment is asked without it, as control planes older than
    environments are).
    """

    def __init__(
        self,
        cache: RouteCache,
        base_url: str,
        *,
        token: str | None = None,
        long_poll_wait: float = DEFAULT_LONG_POLL_WAIT,
        timeout: float = DEFAULT_TIMEOUT,
        min_interval: float = DEFAULT_MIN_INTERVAL,
        verify: ssl.SSLContext | str | bool = True,
        backoff: Backoff | None = None,
        max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
        environment: str = DEFAULT_ENVIRONMENT,
    ) -> None:
        self.environment = validate_environment_name(environment)
        if long_poll_wait < 0 or timeout <= 0 or min_interval < 0:
            raise ValueError(
                "long_poll_wait and min_interval must be >= 0 and timeout > 0, got "
                f"{long_poll_wait}, {min_interval} and {timeout}"
            )
        client = ControlPlaneClient(
            base_url, token=token, timeout=timeout, verify=verify, max_answer_bytes=max_answer_bytes
        )
        # A wait between two attempts never exceeds one long poll's deadline, so that a control
        # plane answering again is read within that deadline.
        longest = min(_MAX_BACKOFF, long_poll_wait + timeout)
        backoff = backoff or Backoff(min(0.2, longest), longest)
        super().__init__(cache, description=client.base_url, backoff=backoff)
        self._client = client
        self._long_poll_wait = long_poll_wait
        self._min_interval = min_interval
        self._etag: str | None = None
        self._complete = True

    def poll_once(self) -> float:
        query: dict[str, str] = {}
        if self.environment != DEFAULT_ENVIRONMENT:
            query[ENVIRONMENT_PARAMETER] = self.environment
        headers: dict[str, str] = {}
        if self._etag is not None and self._complete:
            headers["If-None-Match"] = self._etag
            query["wait"] = f"{self._long_poll_wait:g}"
        started = time.monotonic()
        answer = self._client.request(
            "GET", "/v1/routes", query=query, headers=headers, long_poll=self._long_poll_wait
        )
        if answer.status == 304:
            return self._pace(started)
        if answer.status != 200:
            raise self._client.unexpected(f"GET /v1/routes answered HTTP {answer.status}")
        etag, routes, skipped = self._parse_routes(answer)
        if etag is not None and etag == self._etag and self._complete:
            return self._pace(started)  # the server ignored If-None-Match: nothing changed
        self._complete = self.cache.apply(routes, self._fetch_version, skipped=skipped)
        self._etag = etag
        if not self._complete:
            return max(self._min_interval, 0.2)
        return 0.0 if etag is not None else self._pace(started)

    def _pace(self, started: float) -> float:
        # A server that answers at once (no long polling) must not turn the loop into a busy loop.
        return max(0.0, self._min_interval - (time.monotonic() - started))

    def _parse_routes(self, answer: Answer) -> tuple[str | None, list[Route], list[str]]:
        body = answer.data
        if not isinstance(body, dict) or not isinstance(body.get("routes"), list):
            raise self._client.unexpected(
                f'GET /v1/routes: expected {{"revision": ..., "routes": [...]}}, got {str(body)[:200]!r}'
            )
        routes: list[Route] = []
        skipped: list[str] = []
        for item in body["routes"]:
            try:
                routes.append(Route.model_validate(_known_fields(_ROUTE_FIELDS, item)))
            except ValidationError as exc:
                logger.warning("ignoring a malformed route from %s: %s", self.description, exc)
                prompt = item.get("prompt") if isinstance(item, dict) else None
                skipped.append(
                    f"ignored a malformed route{f' of {prompt!r}' if isinstance(prompt, str) else ''} "
                    f"({exc.error_count()} error(s): {exc.errors()[0]['msg']})"
                )
        etag = answer.headers.get("etag")
        if etag is None and body.get("revision") is not None:
            etag = str(body["revision"])
        return etag, routes, skipped

    def _fetch_version(self, name: str, version: int) -> PromptVersion:
        path = f"/v1/prompts/{quote(name, safe='')}/versions/{version}"
        try:
            answer = self._client.request("GET", path)
        except NotFoundError as exc:
            raise NotFoundError(f"the control plane has no version {name}@{version}") from exc
        try:
            return PromptVersion.model_validate(_known_fields(_VERSION_FIELDS, answer.data))
        except ValidationError as exc:
            raise self._client.unexpected(f"GET {path}: malformed version ({exc})") from exc

    def _interrupt(self) -> None:
        self._client.close()
