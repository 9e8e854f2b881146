"""The runtime of the instrumentation in force, for what acts outside a call (:func:`record_feedback`).

The instrumentor sets it when it instruments and clears it when it uninstruments; the observers read
it. It has a home of its own so that neither of them needs the other: the instrumentor builds the
runtime, whose modules import the observers, so an observer reaching up into the instrumentor would
close a circle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from otel_prompt_canary.instrumentation._runtime import Runtime

__all__ = ["active_runtime", "set_active_runtime"]

_active: Runtime | None = None


def active_runtime() -> Runtime | None:
    """The runtime of the current instrumentation, or None when not instrumented."""
    return _active


def set_active_runtime(runtime: Runtime | None) -> None:
    """Make ``runtime`` the one in force (None: no instrumentation is)."""
    global _active
    _active = runtime
