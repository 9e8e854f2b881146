"""Control plane replicas as real processes: ``prompt-canary serve`` on a port of 127.0.0.1 that
stays the same across a ``kill -9`` and a restart (as a supervisor would restart it), and the
writers that stream acknowledged writes at them.

::

    with replicas(["a", "b", "c"], store, tmp_path) as (a, b, c):
        http.post(a.url + "/v1/prompts", ...)
        a.kill()      # SIGKILL: no shutdown handler runs
        a.start()     # the same port, the same store
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.service.loop_factories import (
    ALERTMANAGER_TOKEN,
    WEBHOOK_SECRET,
    proportion,
    report_envelope,
)
from tests.support.auth import REPORT_AUTH, REPORT_TOKEN, TOKEN
from tests.support.loopback import free_port
from tests.support.waiting import eventually

__all__ = ["CHECK", "Replica", "ReportStream", "Sent", "concurrently", "replicas"]

#: The signal the reports carry.
CHECK = "prompt_canary.check.json_valid"


class Replica:
    """One ``prompt-canary serve`` process on ``store``; its log goes to ``log_dir/<name>.log``.

    Every receiver is configured (write, reporting and Alertmanager tokens, the Collector's webhook
    secret) and the rollout controller is off: every transition is one a test asked for.
    """

    def __init__(self, name: str, store: str, log_dir: Path, *options: str) -> None:
        self.name = name
        self.store = store
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log_dir / f"{name}.log"
        self.options = options
        self.process: subprocess.Popen[bytes] | None = None
        #: How many times the process was started.
        self.starts = 0

    def start(self) -> None:
        """Start the process and wait until it answers ``/healthz``."""
        self.launch()
        self.wait_healthy()

    def launch(self) -> None:
        """Start the process (see :meth:`wait_healthy`)."""
        environment = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_PROMPT_CANARY_")}
        command = [
            *(sys.executable, "-m", "otel_prompt_canary.cli", "--registry", self.store, "--token", TOKEN),
            *("serve", "--port", str(self.port), "--log-level", "warning", "--no-controller"),
            *("--report-token", REPORT_TOKEN, "--alertmanager-token", ALERTMANAGER_TOKEN),
            *("--webhook-secret", WEBHOOK_SECRET, *self.options),
        ]
        with self.log.open("ab") as log:
            log.write(f"--- start {self.starts + 1}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=environment
            )
        self.starts += 1

    def wait_healthy(self) -> None:
        """Wait until the process answers ``/healthz``; fail if it exits first."""
        eventually(
            self.healthy,
            timeout=60,
            what=f"replica {self.name} answering /healthz",
            between=self.check_running,
            diagnostics=self.log_tail,
            interval=0.1,
        )

    def healthy(self) -> bool:
        try:
            return httpx.get(self.url + "/healthz", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    def check_running(self) -> None:
        assert self.process is not None and self.process.poll() is None, (
            f"replica {self.name} exited ({None if self.process is None else self.process.returncode})"
        )

    def kill(self) -> None:
        """``kill -9``: the process ends at once, whatever it was doing."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        assert self.process.wait(timeout=30) == -signal.SIGKILL

    def stop(self) -> None:
        """Stop it as an operator would (SIGTERM), if it runs."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def log_tail(self, chars: int = 4000) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return f"--- log of replica {self.name} (last {chars} characters):\n{text[-chars:]}"


@contextmanager
def replicas(names: Sequence[str], store: str, log_dir: Path, *options: str) -> Iterator[list[Replica]]:
    """:class:`Replica` processes started at the same moment on one store, stopped at the end.

    On a new database they race to create its tables: migrations are serialised by the store.
    """
    started = [Replica(name, store, log_dir, *options) for name in names]
    try:
        for one in started:
            one.launch()
        for one in started:
            one.wait_healthy()
        yield started
    finally:
        for one in started:
            one.stop()


@dataclass
class Sent:
    """One report and what became of it: acknowledged by ``answered_by``, or not (yet)."""

    envelope: dict[str, Any]
    n: int
    sent_to: list[str] = field(default_factory=list)
    #: The replica that acknowledged it (HTTP 200, merged or duplicate), or None.
    answered_by: str | None = None
    outcomes: list[str] = field(default_factory=list)


class ReportStream:
    """Posts reports of one rollout to the replicas in turn, on a thread, until :meth:`stop`.

    Each report has its own id and ``n`` samples per cohort; a report is acknowledged when a replica
    answers 200. A connection refused or cut (a killed replica) leaves it unacknowledged, to be
    sent again by :meth:`resend_unacknowledged`, as a sender that retries would.
    """

    def __init__(self, rollout_id: str, replicas: Sequence[Replica], *, prompt: str = "greeter") -> None:
        self.rollout_id = rollout_id
        self.prompt = prompt
        self.replicas = list(replicas)
        self.sent: list[Sent] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="report stream", daemon=True)
        self._http = httpx.Client(timeout=10)

    def start(self) -> ReportStream:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop sending (idempotent)."""
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join(60)
        assert not self._thread.is_alive(), "the report stream did not stop"

    def acknowledged_by(self, name: str) -> int:
        return sum(1 for s in self.sent if s.answered_by == name)

    def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            target = self.replicas[i % len(self.replicas)]
            n = 1 + i % 7
            window = str(int(time.time()))
            envelope = report_envelope(
                self.rollout_id,
                prompt=self.prompt,
                report_id=f"pcr_{uuid.uuid4().hex}",
                stable={CHECK: {window: proportion(n, n)}},
                canary={CHECK: {window: proportion(n, n - 1)}},
                source=f"app-{i % 5}",
            )
            item = Sent(envelope, n)
            self.sent.append(item)
            self._send(item, target)
            i += 1
            self._stop.wait(0.01)

    def _send(self, item: Sent, target: Replica) -> None:
        item.sent_to.append(target.name)
        try:
            response = self._http.post(target.url + "/v1/reports", json=item.envelope, headers=REPORT_AUTH)
        except httpx.HTTPError as exc:
            item.outcomes.append(type(exc).__name__)
            return
        if response.status_code == 200:
            item.outcomes.append(response.json()["outcome"])
            item.answered_by = target.name
        else:
            item.outcomes.append(f"HTTP {response.status_code}: {response.text[:200]}")

    def resend_unacknowledged(self, target: Replica) -> list[Sent]:
        """Send every report not acknowledged yet to ``target``; returns those resent."""
        again = [s for s in self.sent if s.answered_by is None]
        for item in again:
            self._send(item, target)
        return again

    def close(self) -> None:
        self._http.close()


def concurrently(*calls: Callable[[], httpx.Response]) -> list[httpx.Response]:
    """Run the calls at the same moment, each on its own thread; their answers, in order."""
    barrier = threading.Barrier(len(calls))
    answers: list[httpx.Response | BaseException | None] = [None] * len(calls)

    def run(index: int, call: Callable[[], httpx.Response]) -> None:
        barrier.wait()
        try:
            answers[index] = call()
        except BaseException as exc:
            answers[index] = exc

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    results: list[httpx.Response] = []
    for answer in answers:
        assert isinstance(answer, httpx.Response), answer
        results.append(answer)
    return results
