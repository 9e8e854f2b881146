"""A small JSON-over-HTTP client for OpenAI-compatible evaluation endpoints.

The LLM judge (``/chat/completions``) and the moderation classifier (``/moderations``) share it. Every
call has a timeout; httpx exceptions are mapped to :mod:`~otel_prompt_canary.scoring._errors` at this
boundary. The API key goes in an ``Authorization: Bearer`` header and never into a ``repr``.

httpx is imported when an endpoint is configured, not with this module: the instrumentation loads
the scoring package, and importing httpx also imports click (httpx's own command line) whenever
click is installed, which an application that configures no judge should not pay for.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from otel_prompt_canary.errors import InvalidInputError
from otel_prompt_canary.scoring._errors import (
    EvaluationError,
    EvaluationResponseError,
    EvaluationTimeoutError,
)

if TYPE_CHECKING:
    import httpx

__all__ = ["EndpointClient"]


class EndpointClient:
    """POST JSON to ``{base_url}{path}`` and return the decoded JSON answer.

    Args:
        base_url: e.g. ``https://api.openai.com/v1`` or ``http://127.0.0.1:8000/v1``.
        api_key: Sent as ``Authorization: Bearer <key>`` when given.
        timeout: Seconds for the whole request (connect, write, read).
        headers: Extra headers (e.g. ``api-key`` for Azure OpenAI).
        client: An ``httpx.Client`` to use instead of a private one (it is then not closed here).
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float = 10.0,
        headers: Mapping[str, str] | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        # A missing httpx fails here, when the judge or moderation is configured, as it did when
        # this module imported it at the top: not at the first evaluation, in the worker thread.
        importlib.import_module("httpx")
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise InvalidInputError(f"base_url must start with http:// or https://, got {base_url!r}")
        if not timeout > 0:
            raise InvalidInputError(f"timeout must be positive, got {timeout!r}")
        self._base_url = base_url.rstrip("/")
        self._timeout = float(timeout)
        self._headers = {"Content-Type": "application/json", **(headers or {})}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._client = client
        self._owns_client = client is None
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        """The endpoint's base URL, without a trailing slash."""
        return self._base_url

    def _http(self) -> httpx.Client:
        import httpx

        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    self._client = httpx.Client(timeout=self._timeout, follow_redirects=False)
                client = self._client
        return client

    def post_json(self, path: str, payload: Mapping[str, Any]) -> Any:
        """POST ``payload`` and return the JSON answer; raises :class:`EvaluationError` subclasses."""
        import httpx

        url = self._base_url + path
        try:
            answer = self._http().post(url, json=payload, headers=self._headers, timeout=self._timeout)
        except httpx.TimeoutException as exc:
            raise EvaluationTimeoutError(f"{url}: no answer within {self._timeout:g}s") from exc
        except httpx.HTTPError as exc:
            raise EvaluationError(f"{url}: {type(exc).__name__}: {exc}") from exc
        if answer.status_code >= 400:
            raise EvaluationResponseError(f"{url}: HTTP {answer.status_code}: {answer.text[:200]!r}")
        try:
            return answer.json()
        except ValueError as exc:
            raise EvaluationResponseError(f"{url}: the answer is not JSON: {answer.text[:200]!r}") from exc

    def close(self) -> None:
        """Close the private HTTP client, if one was opened (a later call opens a new one)."""
        if not self._owns_client:
            return
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def __repr__(self) -> str:
        return f"EndpointClient({self._base_url!r}, timeout={self._timeout:g})"
