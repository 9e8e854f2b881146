"""A fake OpenAI-compatible endpoint on 127.0.0.1: chat completions and moderations.

It answers real HTTP with the JSON shapes of the OpenAI API, records every request, and can be told
to answer slowly, with an error status, or with any content, so that the judge and the moderation
classifier are tested through their real HTTP client.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.support.loopback import free_port, http_server
from tests.support.waiting import eventually


@dataclass
class Reply:
    """What the fake answers: a status, a JSON body (or raw text) and a delay before answering."""

    status: int = 200
    body: Any = None
    delay: float = 0.0
    raw: str | None = None


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: Any


def chat_reply(content: str) -> Reply:
    """A chat-completions answer whose first choice says ``content``."""
    return Reply(
        body={
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "model": "judge-model",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        }
    )


def moderation_reply(*flags: bool) -> Reply:
    """A moderations answer with one result per flag."""
    return Reply(
        body={
            "id": "modr-fake",
            "model": "omni-moderation-latest",
            "results": [{"flagged": f, "categories": {}, "category_scores": {}} for f in flags],
        }
    )


@dataclass
class FakeOpenAI:
    """The fake server; ``respond(path, body) -> Reply`` decides each answer."""

    respond: Callable[[str, Any], Reply] = field(default=lambda path, body: chat_reply('{"score": 1}'))
    requests: list[Recorded] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw.decode(errors="replace")
                with fake._lock:
                    fake.requests.append(Recorded(self.path, dict(self.headers.items()), body))
                reply = fake.respond(self.path, body)
                if reply.delay:
                    # Interruptible: stop() releases every waiting handler.
                    fake.release.wait(reply.delay)
                payload = (reply.raw if reply.raw is not None else json.dumps(reply.body)).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:  # the client gave up (timeout): nothing to answer
                    pass

        self._handler = Handler
        self._serving = ExitStack()
        self._url = ""

    @property
    def base_url(self) -> str:
        return f"{self._url}/v1"

    def start(self) -> FakeOpenAI:
        self._url = self._serving.enter_context(http_server(self._handler, name="fake OpenAI"))
        return self

    def stop(self) -> None:
        self.release.set()  # first: a handler waiting to answer must not hold the server
        self._serving.close()

    def count(self, path: str) -> int:
        with self._lock:
            return sum(1 for r in self.requests if r.path == path)

    def wait_for_requests(self, n: int) -> None:
        """Wait until ``n`` requests have arrived."""

        def arrived() -> bool:
            with self._lock:
                return len(self.requests) >= n

        eventually(arrived, what=f"{n} requests at the fake OpenAI endpoint", interval=0.005)


def unreachable_base_url() -> str:
    """The URL of a loopback port nobody listens on."""
    return f"http://127.0.0.1:{free_port()}/v1"
