"""In-app reports: what the instrumentation counted, posted to the control plane on an interval.

One daemon thread seals the :class:`~otel_prompt_canary.instrumentation._tally.Tally` every
``interval`` seconds into reports and posts them to ``POST /v1/reports`` of the control plane that
routes each report's rollout (:func:`~otel_prompt_canary.routing.control_planes.control_plane_of`),
else of the instrumentation's own ``registry`` when it is a control plane URL, else of the first
control plane a router announced. The rollout controller there judges them like the Collector's.

- **Exactly once.** A report keeps its id (``pcr_<32 hex>``) and its statistics from the moment it
  is sealed until a control plane acknowledges it (``merged``, ``duplicate`` or ``ignored``: a
  rollout whose statistics come from the Collector processor counts none of them, and the first
  such answer is logged with the control plane's reason);
  observations made meanwhile go into the next report. The control plane counts each id once, so a
  retry after a timeout (the first attempt was counted, its answer lost) adds nothing, and a process
  that dies loses what it had not sent, never more and never twice. A report sent once to a control
  plane is only ever retried there.
- **Never in the way.** Calls only count (:class:`Tally`); sending happens here, through the
  control plane client, whose requests are never traced. Network
  errors, timeouts and HTTP 408, 425, 429 and 5xx are retried with capped exponential back-off, per
  control plane; any other refusal (401, 404, 422...) is final: the report is dropped and counted.
- **Bounded.** Reports waiting hold at most ``max_pending_series`` series; beyond, the oldest
  reports are dropped and counted (``buffer_full``).
- **At exit** (``atexit``, ``uninstrument()``), what was counted is sealed and sent once more,
  within ``shutdown_timeout`` seconds, to where the rollout's reports went (its router may be
  closed by then); what is left is dropped and counted (``shutdown``).

Its own telemetry, on the instrumentation's meter: ``prompt_canary.reports.sent`` (by outcome),
``.retried``, ``.dropped`` and ``prompt_canary.samples.dropped`` (by ``prompt_canary.drop.reason``).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass
from typing import Any, Final

from opentelemetry.metrics import Meter

from otel_prompt_canary import names
from otel_prompt_canary.instrumentation._tally import REPORT_ORIGIN, Tally
from otel_prompt_canary.names import DEFAULT_ENVIRONMENT
from otel_prompt_canary.routing.control_plane import ControlPlaneClient
from otel_prompt_canary.routing.control_planes import (
    ControlPlane,
    add_control_plane_listener,
    control_plane_of,
    control_planes,
    remove_control_plane_listener,
)
from otel_prompt_canary.routing.source import Backoff

__all__ = ["DEFAULT_MAX_PENDING_SERIES", "DEFAULT_MAX_SERIES", "Reporter", "window_of"]

logger = logging.getLogger("otel_prompt_canary.instrumentation")

#: The most series counted between two reports (beyond: samples dropped, ``series_limit``).
DEFAULT_MAX_SERIES: Final = 20_000
#: The most series of the reports waiting for the control plane (beyond: oldest dropped).
DEFAULT_MAX_PENDING_SERIES: Final = 50_000
#: Answers worth trying again: the request timed out, too early, too many, or the server failed.
_RETRIED: Final = frozenset({408, 425, 429})

_live: weakref.WeakSet[Reporter] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for reporter in list(_live):
        reporter._restart_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def window_of(interval: float) -> int:
    """The window size of reports sent every ``interval`` seconds: the interval, 1 to 60 seconds."""
    return max(1, min(60, round(interval)))


@dataclass(slots=True)
class _Pending:
    rollout_id: str
    body: dict[str, Any]
    series: int
    #: Where it was first sent: it is retried there only.
    plane: ControlPlane | None = None


class Reporter:
    """Seals ``tally`` every ``interval`` seconds and delivers the reports; see the module docstring.

    ``default_plane`` is the instrumentation's own control plane (its ``registry`` URL), if any;
    ``token`` is the reporting credential used where a router gave none.
    """

    def __init__(
        self,
        tally: Tally,
        *,
        interval: float,
        meter: Meter,
        default_plane: ControlPlane | None = None,
        token: str | None = None,
        max_pending_series: int = DEFAULT_MAX_PENDING_SERIES,
        backoff: tuple[float, float] = (1.0, 60.0),
        shutdown_timeout: float = 5.0,
    ) -> None:
        self._tally = tally
        self.interval = interval
        self._default = default_plane
        self._token = token
        self._max_pending_series = max_pending_series
        self._backoff_settings = backoff
        self._shutdown_timeout = shutdown_timeout
        self._sent = meter.create_counter(
            names.METRIC_REPORTS_SENT,
            unit="{report}",
            description="In-app reports the control plane acknowledged",
        )
        self._retried = meter.create_counter(
            names.METRIC_REPORTS_RETRIED,
            unit="{attempt}",
            description="Attempts to send an in-app report that failed and will be tried again",
        )
        self._dropped = meter.create_counter(
            names.METRIC_REPORTS_DROPPED, unit="{report}", description="In-app reports given up"
        )
        self._samples_dropped = meter.create_counter(
            names.METRIC_SAMPLES_DROPPED,
            unit="{sample}",
            description="Samples (call signals, late results, feedback) never put in an in-app report",
        )
        tally.on_drop = self.drop_samples
        # Control planes seen, and the one each rollout was routed by: an application closes its
        # routers before it exits, and what it counted last still goes where the rest went.
        self._seen: dict[str, ControlPlane] = {}
        self._routed: dict[str, ControlPlane] = {}
        self._closed = False
        self._warned: set[str] = set()
        self._start()
        add_control_plane_listener(self._on_control_plane)
        self._activate()
        atexit.register(self.close)
        _live.add(self)

    def _start(self) -> None:
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._pending: deque[_Pending] = deque()
        self._pending_series = 0
        self._clients: dict[str, ControlPlaneClient] = {}
        self._retry_at: dict[str, float] = {}
        self._backoffs: dict[str, Backoff] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="prompt-canary-reports", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        return (
            f"Reporter(interval={self.interval:g}, pending={len(self._pending)}, active={self._tally.active})"
        )

    @property
    def pending(self) -> int:
        """Reports waiting to be acknowledged."""
        return len(self._pending)

    def drop_samples(self, reason: str, count: int = 1) -> None:
        """Count samples that will never be reported, and why."""
        self._samples_dropped.add(count, {names.DROP_REASON: reason})

    # -- where reports go ----------------------------------------------------------------------

    def _on_control_plane(self, plane: ControlPlane) -> None:
        self._seen.setdefault(plane.base_url, plane)
        self._activate()

    def _activate(self) -> None:
        # Count only once there is somewhere to report to: an application on a local registry
        # reports nothing, and keeps nothing.
        for plane in control_planes():
            self._seen.setdefault(plane.base_url, plane)
        if not self._closed and (self._default is not None or self._seen):
            self._tally.active = True

    def _destination(self, rollout_id: str) -> ControlPlane | None:
        routed = control_plane_of(rollout_id)
        if routed is not None:
            if len(self._routed) >= 1024:
                self._routed.clear()
            self._routed[rollout_id] = routed
            return routed
        found = self._routed.get(rollout_id) or self._default
        if found is not None:
            return found
        known = control_planes() or tuple(self._seen.values())
        return known[0] if known else None

    def _client(self, plane: ControlPlane) -> ControlPlaneClient:
        client = self._clients.get(plane.base_url)
        if client is None:
            client = self._clients[plane.base_url] = ControlPlaneClient(
                plane.base_url,
                token=plane.token if plane.token is not None else self._token,
                timeout=min(plane.timeout, 5.0),
                verify=plane.verify,
            )
        return client

    # -- the thread ----------------------------------------------------------------------------

    def _run(self) -> None:
        stop = self._stop
        next_seal = time.monotonic() + self.interval
        while not stop.is_set():
            try:
                now = time.monotonic()
                if now >= next_seal:
                    self.seal()
                    next_seal = max(next_seal + self.interval, now)
                self.send()
                wait = next_seal - time.monotonic()
                if self._pending and self._retry_at:
                    wait = min(wait, min(self._retry_at.values()) - time.monotonic())
            except Exception:
                logger.warning("in-app reporting failed; going on", exc_info=True)
                wait = self.interval
            stop.wait(max(0.01, wait))

    def seal(self) -> int:
        """Seal what was counted into reports waiting to be sent; returns how many were made."""
        bodies = self._tally.seal()
        dropped: list[_Pending] = []
        with self._lock:
            for rollout_id, body in bodies:
                series = sum(len(s) for cohort in ("stable", "canary") for s in body[cohort].values())
                self._pending.append(_Pending(rollout_id, body, series))
                self._pending_series += series
            while self._pending_series > self._max_pending_series and len(self._pending) > 1:
                oldest = self._pending.popleft()
                self._pending_series -= oldest.series
                dropped.append(oldest)
        if dropped:
            self._drop(dropped, "buffer_full")
        return len(bodies)

    def send(self, *, flushing: bool = False) -> None:
        """Try each waiting report whose control plane is not backing off (all of them when
        ``flushing``, but none more of a control plane after it failed)."""
        failed: set[str] = set()
        with self._send_lock:
            for item in list(self._pending):
                if self._stop.is_set() and not flushing:
                    return
                plane = item.plane or self._destination(item.rollout_id)
                if plane is None:
                    continue
                url = plane.base_url
                if url in failed or (not flushing and time.monotonic() < self._retry_at.get(url, 0.0)):
                    continue
                item.plane = plane
                verdict = self._post(plane, item)
                if verdict == "retry":
                    failed.add(url)
                    continue
                with self._lock:
                    if item in self._pending:
                        self._pending.remove(item)
                        self._pending_series -= item.series
                if verdict == "rejected":
                    self._drop([item], "rejected")

    def _post(self, plane: ControlPlane, item: _Pending) -> str:
        """``acknowledged``, ``retry`` or ``rejected``."""
        url = plane.base_url
        try:
            answer = self._client(plane).request(
                "POST", "/v1/reports", json=_naming_environment(item.body, plane), answer_errors=True
            )
        except Exception as exc:
            return self._failed(url, f"{type(exc).__name__}: {exc}")
        if answer.status < 300:
            data = answer.data if isinstance(answer.data, dict) else {}
            outcome = str(data.get("outcome", "unknown"))
            self._sent.add(1, {names.REPORT_OUTCOME: outcome})
            counted = data.get("counted_origin")
            if outcome == "ignored" and isinstance(counted, str) and counted != REPORT_ORIGIN:
                # Acknowledged all the same: retrying would be ignored again. Once, so that a person
                # learns why this application's calls are not counted, and what to change.
                self._warn_once(
                    "ignored by origin",
                    "the control plane at %s does not count this application's reports of rollout %s "
                    "(its statistics come from origin %r): %s",
                    url,
                    item.rollout_id,
                    counted,
                    data.get("reason", "no reason given"),
                )
            self._recovered(url)
            return "acknowledged"
        if answer.status in _RETRIED or answer.status >= 500:
            return self._failed(url, f"HTTP {answer.status}")
        error = answer.data.get("error") if isinstance(answer.data, dict) else None
        message = error.get("message") if isinstance(error, dict) else None
        self._warn_once(
            f"rejected {answer.status}",
            "the control plane at %s refused an in-app report (HTTP %s: %s); it is dropped",
            url,
            answer.status,
            message or "no message",
        )
        self._recovered(url)
        return "rejected"

    def _failed(self, url: str, why: str) -> str:
        self._retried.add(1)
        backoff = self._backoffs.get(url)
        if backoff is None:
            backoff = self._backoffs[url] = Backoff(*self._backoff_settings)
            logger.warning("cannot send in-app reports to %s (%s); retrying with back-off", url, why)
        self._retry_at[url] = time.monotonic() + backoff.next_delay()
        return "retry"

    def _recovered(self, url: str) -> None:
        if self._backoffs.pop(url, None) is not None:
            logger.info("sending in-app reports to %s again", url)
        self._retry_at.pop(url, None)

    def _drop(self, items: list[_Pending], reason: str) -> None:
        self._dropped.add(len(items), {names.DROP_REASON: reason})
        self._warn_once(reason, "dropped %d in-app report(s): %s", len(items), reason)

    def _warn_once(self, key: str, message: str, *args: object) -> None:
        log = logger.debug if key in self._warned else logger.warning
        self._warned.add(key)
        log(message, *args)

    # -- the end -------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the thread, seal and send what is left once (within ``shutdown_timeout``), drop the
        rest. Idempotent; never raises."""
        if self._closed:
            return
        self._closed = True
        try:
            remove_control_plane_listener(self._on_control_plane)
            atexit.unregister(self.close)
            self._stop.set()
            self._thread.join(self._shutdown_timeout)
            deadline = time.monotonic() + self._shutdown_timeout
            self.seal()
            while self._pending and time.monotonic() < deadline:
                before = len(self._pending)
                self.send(flushing=True)
                if len(self._pending) == before:
                    break
            with self._lock:
                left, self._pending = list(self._pending), deque()
                self._pending_series = 0
            if left:
                self._drop(left, "shutdown")
            for client in self._clients.values():
                client.close()
        except Exception:
            logger.warning("could not flush the in-app reports at shutdown", exc_info=True)

    def _restart_after_fork(self) -> None:
        # The parent reports what it counted before the fork; the child starts empty, with its own
        # thread and connections (a socket shared by two processes would mix their requests).
        if self._closed:
            return
        self._tally.reset()
        self._start()


def _naming_environment(body: dict[str, Any], plane: ControlPlane) -> dict[str, Any]:
    """The report ``body`` naming the environment of the router that announced ``plane``; a
    report of the default environment names none, so that control planes older than
    environments (which refuse unknown fields) still take it."""
    if plane.environment == DEFAULT_ENVIRONMENT:
        return body
    return {**body, "environment": plane.environment}
