"""A proxy in front of a control plane that records every report delivered through it, for tests.

It forwards every request (the routes' long polls too) to the control plane and keeps, for each
``POST /v1/reports``, the report's id, source and body with the control plane's answer; told to
hold answers, it waits that long after the control plane answered before passing the answer on, so
that the sender times out although its report was counted (the case a retry must not double)::

    with report_proxy(control_plane_url) as proxy:
        proxy.hold(seconds=1.5, count=1)
        ...                                  # an application reporting to proxy.url
        proxy.merged_total(...)              # what the control plane counted, report by report
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import httpx

from tests.support.loopback import http_server

__all__ = ["Delivery", "ReportProxy", "report_proxy"]

# Hop-by-hop headers, and those httpx sets again for the body it sends or decoded.
_DROPPED = frozenset(
    {"host", "connection", "content-length", "transfer-encoding", "accept-encoding", "content-encoding"}
)


@dataclass(frozen=True)
class Delivery:
    """One attempt to deliver a report, and what the control plane answered."""

    report_id: str
    source: str
    body: dict[str, Any]
    status: int
    outcome: str | None
    #: True when the answer was held past the sender's patience.
    held: bool


@dataclass
class ReportProxy:
    """What went through the proxy; see the module docstring."""

    upstream: str
    url: str = ""
    deliveries: list[Delivery] = field(default_factory=list)
    _hold_seconds: float = 0.0
    _holds_left: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def hold(self, *, seconds: float, count: int) -> None:
        """Hold the answers to the next ``count`` reports ``seconds`` each."""
        with self._lock:
            self._hold_seconds, self._holds_left = seconds, count

    def _take_hold(self) -> float:
        with self._lock:
            if self._holds_left <= 0:
                return 0.0
            self._holds_left -= 1
            return self._hold_seconds

    def record(self, delivery: Delivery) -> None:
        with self._lock:
            self.deliveries.append(delivery)

    def delivered(self) -> list[Delivery]:
        with self._lock:
            return list(self.deliveries)

    def merged(self) -> list[Delivery]:
        """The deliveries the control plane counted (``merged``): one per report id."""
        return [d for d in self.delivered() if d.outcome == "merged"]

    def merged_n(self, cohort: str, attribute: str, *, source: str | None = None) -> int:
        """The samples of ``attribute`` in ``cohort`` the control plane counted, from ``source`` or all."""
        return sum(
            stats["n"]
            for d in self.merged()
            if source is None or d.source == source
            for stats in d.body[cohort].get(attribute, {}).values()
        )


def _handler(proxy: ReportProxy, client: httpx.Client) -> type[BaseHTTPRequestHandler]:
    class Forward(BaseHTTPRequestHandler):
        def _forward(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _DROPPED}
            answer = client.request(self.command, self.path, content=body, headers=headers)
            held = 0.0
            if self.command == "POST" and self.path.startswith("/v1/reports"):
                held = self._record(body, answer)
            if held:
                time.sleep(held)  # the sender has given up: its report was counted all the same
            with suppress(OSError):
                self.send_response(answer.status_code)
                for name, value in answer.headers.items():
                    if name.lower() not in _DROPPED:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

        def _record(self, body: bytes, answer: httpx.Response) -> float:
            report = json.loads(body)
            held = proxy._take_hold()
            outcome = answer.json().get("outcome") if answer.status_code == 200 else None
            proxy.record(
                Delivery(report["id"], report["source"], report, answer.status_code, outcome, held > 0)
            )
            return held

        do_GET = do_POST = _forward

        def log_message(self, format: str, *args: Any) -> None:
            return None

    return Forward


@contextmanager
def report_proxy(upstream: str) -> Iterator[ReportProxy]:
    """A proxy to the control plane at ``upstream``, on 127.0.0.1; its ``url`` is set while it runs."""
    proxy = ReportProxy(upstream)
    with (
        httpx.Client(base_url=upstream, timeout=120) as client,
        http_server(_handler(proxy, client), name="report proxy") as url,
    ):
        proxy.url = url
        yield proxy
