"""A server at an LLM's address that answers HTTP 200 with bodies that are not the API's, for tests of
bad input::

    with not_an_llm() as base_url:
        openai.OpenAI(base_url=f"{base_url}/text", api_key="test").chat.completions.create(...)

The first path segment says what every POST under it gets: ``/text`` plain text, ``/other`` JSON of
another shape, ``/events`` server-sent events whose data is not JSON (then ``data: [DONE]``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.support.loopback import http_server

__all__ = ["KINDS", "not_an_llm"]

#: The first path segments the server knows, and the body each gets: (body, content type).
KINDS: dict[str, tuple[bytes, str]] = {
    "text": (b"upstream says hello", "text/plain"),
    "other": (json.dumps({"greeting": "hello"}).encode(), "application/json"),
    "events": (b"data: not json\n\ndata: [DONE]\n\n", "text/event-stream"),
}


class _NotAnLLM(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body, content_type = KINDS.get(self.path.split("/")[1], KINDS["other"])
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return None


@contextmanager
def not_an_llm() -> Iterator[str]:
    """The server, on loopback; yields its base URL."""
    with http_server(_NotAnLLM, name="not an LLM") as base_url:
        yield base_url
