"""Waiting in tests: poll a condition until it holds, with a generous timeout and a clear failure.

::

    eventually(lambda: router.route("p").state == "rolled_back", what="the rollback")
    seconds = eventually(done, timeout=90, what="the promotion", between=app.check_running,
                         diagnostics=loop.diagnostics)

A test never asserts how long something took (the suite must pass on a machine whose cores are
busy); the timeout is only there so that a test that would wait forever fails instead, saying what
it waited for.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable

__all__ = ["eventually"]


def eventually(
    condition: Callable[[], object],
    *,
    timeout: float = 10.0,
    what: str | None = None,
    interval: float = 0.05,
    between: Callable[[], object] | None = None,
    diagnostics: Callable[[], str] | None = None,
) -> float:
    """Poll ``condition()`` until it is true; return the seconds that took.

    ``between`` runs after each poll that found the condition false (feed the system, tick a
    controller, check that a process still runs); an :class:`AssertionError` it raises ends the
    wait at once. After ``timeout`` seconds the wait fails with an :class:`AssertionError` that
    names ``what`` (by default the condition's source) and adds ``diagnostics()``, a dump of the
    state worth looking at, when given.
    """
    described = what or _describe(condition)
    began = time.monotonic()
    while not condition():
        if time.monotonic() - began > timeout:
            raise AssertionError(_with(f"{described} did not happen within {timeout:g} s", diagnostics))
        if between is not None:
            try:
                between()
            except AssertionError as exc:
                raise AssertionError(_with(f"{exc} (while waiting for {described})", diagnostics)) from None
        time.sleep(interval)
    return time.monotonic() - began


def _describe(condition: Callable[[], object]) -> str:
    """``what`` when the caller gave none: a function's name, or the line holding a lambda."""
    name = getattr(condition, "__name__", None)
    if name is not None and name != "<lambda>":
        return f"`{name}()`"
    try:
        source = " ".join(inspect.getsource(condition).split())
    except (OSError, TypeError):
        return repr(condition)
    return f"the condition in `{source[:300]}`"


def _with(message: str, diagnostics: Callable[[], str] | None) -> str:
    return message if diagnostics is None else f"{message}\n{diagnostics()}"
