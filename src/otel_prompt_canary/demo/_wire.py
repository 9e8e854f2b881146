"""HTTP plumbing shared by the simulated APIs: bodies, errors, server-sent events, dropped connections."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from otel_prompt_canary.demo.behaviour import Behaviour, ModelRequest, Reply

__all__ = [
    "Answer",
    "ApiError",
    "EventStream",
    "JsonBody",
    "Provider",
    "answer",
    "check_api_key",
    "error_body",
    "error_response",
    "json_response",
    "new_id",
    "read_body",
    "sse",
    "text_of",
    "text_pieces",
]

Provider = Literal["openai", "anthropic"]

#: A decoded JSON request body.
JsonBody = Mapping[str, Any]

_OPENAI_ERROR_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    409: ("invalid_request_error", "conflict"),
    422: ("invalid_request_error", None),
    429: ("requests", "rate_limit_exceeded"),
}
_ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}
_DEFAULT_MESSAGES = {
    400: "Invalid request.",
    401: "Incorrect API key provided.",
    403: "Permission denied.",
    404: "Not found.",
    429: "Rate limit reached for requests.",
    500: "The server had an error while processing your request.",
    503: "The server is overloaded.",
    529: "Overloaded.",
}


class ApiError(Exception):
    """An error answered with ``status`` and the provider's error body."""

    def __init__(
        self,
        status: int,
        message: str | None = None,
        *,
        param: str | None = None,
        retryable: bool | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message or _DEFAULT_MESSAGES.get(status, f"Error {status}."))
        self.status = status
        self.message = str(self)
        self.param = param
        self.retryable = retryable
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        """The retry hints both SDKs obey: ``x-should-retry`` and ``retry-after-ms``."""
        headers = {}
        if self.retryable is not None:
            headers["x-should-retry"] = "true" if self.retryable else "false"
        if self.retry_after is not None:
            headers["retry-after-ms"] = str(round(self.retry_after * 1000))
        return headers


@dataclass(frozen=True)
class Answer:
    """The reply to one generation request, cut to its token limit, with its token usage."""

    reply: Reply
    input_tokens: int
    output_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


async def answer(behaviour: Behaviour, request: ModelRequest) -> Answer:
    """Ask ``behaviour`` for the reply, wait its latency, and raise the error it forces, if any."""
    reply = behaviour.respond(request)
    if reply.latency > 0:
        await asyncio.sleep(reply.latency)
    if reply.error_status is not None:
        raise ApiError(
            reply.error_status,
            reply.error_message,
            retryable=reply.retryable,
            retry_after=reply.retry_after,
        )
    reply = reply.limited_to(request.max_tokens)
    input_tokens = request.input_token_count() if reply.input_tokens is None else reply.input_tokens
    return Answer(reply, input_tokens, reply.output_token_count())


def new_id(prefix: str) -> str:
    """A fresh identifier in the provider's style, e.g. ``chatcmpl-1f0c...``."""
    return f"{prefix}{uuid.uuid4().hex[:24]}"


def error_body(provider: Provider, status: int, message: str, *, param: str | None = None) -> dict[str, Any]:
    """The error JSON each SDK maps to its exception classes."""
    if provider == "anthropic":
        kind = _ANTHROPIC_ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
        return {
            "type": "error",
            "error": {"type": kind, "message": message},
            "request_id": new_id("req_"),
        }
    kind, code = _OPENAI_ERROR_TYPES.get(status, ("server_error", None))
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def error_response(provider: Provider, error: ApiError) -> Response:
    """The response for ``error``: the provider's error body, its status and retry hints."""
    body = error_body(provider, error.status, error.message, param=error.param)
    return json_response(body, status=error.status, headers=error.headers())


def json_response(
    payload: Any, *, status: int = 200, headers: Mapping[str, str] | None = None, drop: bool = False
) -> Response:
    """A JSON response; with ``drop`` the connection closes halfway through the body."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    if drop:
        return _DroppedBody(body, status=status, headers=headers)
    return Response(body, status_code=status, headers=dict(headers or {}), media_type="application/json")


async def read_body(request: Request) -> JsonBody:
    """The request's JSON object, or an :class:`ApiError` 400 in the provider's words."""
    try:
        body = json.loads(await request.body() or b"null")
    except ValueError:
        raise ApiError(400, "We could not parse the JSON body of your request.") from None
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    return body


def check_api_key(request: Request, behaviour: Behaviour) -> None:
    """Raise :class:`ApiError` 401 unless the request carries the key the behaviour requires."""
    if behaviour.api_key is None:
        return
    bearer = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
    if behaviour.api_key not in (bearer, request.headers.get("x-api-key", "")):
        raise ApiError(401)


def text_of(content: Any) -> str:
    """The text of a message's content: a string, or a list of text-bearing parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, Mapping):
        for key in ("text", "content", "output", "input"):
            if key in content:
                return text_of(content[key])
        return ""
    if isinstance(content, Sequence):
        return "\n".join(t for t in (text_of(part) for part in content) if t)
    return ""


def sse(data: Any, *, event: str | None = None) -> bytes:
    """One server-sent event carrying ``data`` as JSON (or verbatim when it is a string)."""
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()


def text_pieces(text: str, size: int) -> list[str]:
    """``text`` in pieces of ``size`` characters (at least one piece, possibly empty)."""
    size = max(1, size)
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


class EventStream(Response):
    """A ``text/event-stream`` response that paces its events and can drop the connection.

    With ``drop_after`` set, the connection closes after that many events without ending the chunked
    body, which every HTTP client reports as a broken transfer.
    """

    media_type = "text/event-stream"

    def __init__(self, events: Iterable[bytes], reply: Reply) -> None:
        # Like Starlette's StreamingResponse: no body attribute, hence no content-length header.
        self.status_code = 200
        self.background = None
        self.init_headers({"cache-control": "no-cache"})
        self.events = list(events)
        self.delay = reply.chunk_delay
        self.drop_after = reply.drop_connection_after

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        try:
            for index, event in enumerate(self.events):
                if self.drop_after is not None and index >= self.drop_after:
                    # Returning without the final body message makes the server close the connection.
                    return
                if index and self.delay:
                    await asyncio.sleep(self.delay)
                await send({"type": "http.response.body", "body": event, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:  # the client went away
            return


class _DroppedBody(Response):
    """Announces the whole body's length, sends half of it and lets the connection close."""

    def __init__(self, body: bytes, *, status: int, headers: Mapping[str, str] | None) -> None:
        super().__init__(body, status_code=status, headers=dict(headers or {}), media_type="application/json")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        half = bytes(self.body)[: len(self.body) // 2]
        await send({"type": "http.response.body", "body": half, "more_body": True})
