"""A fake OpenAI-compatible endpoint on 127.0.0.1: chat completions and moderations.

It answers real HTTP with the JSON shapes of the OpenAI API, records every request, and can be told
to answer slowly, with an error status, or with any content, so that the judge and the moderation
classifier are tested through their real HTTP client.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


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

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def start(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def count(self, path: str) -> int:
        with self._lock:
            return sum(1 for r in self.requests if r.path == path)

    def wait_for_requests(self, n: int, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.requests) >= n:
                    return True
            time.sleep(0.005)
        return False


def unreachable_base_url() -> str:
    """The URL of a loopback port nobody listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"
