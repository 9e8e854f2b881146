"""The control planes this process routes by, for whoever reports to them.

A :class:`~otel_prompt_canary.routing.PromptRouter` reading its routes from a control plane (an
``http(s)://`` registry) announces that control plane here while it is open, with its credential
and TLS settings, and withdraws it when closed. In-app reporting (the instrumentation) asks for
them: :func:`control_planes` lists them, :func:`add_control_plane_listener` tells of new ones, and
:func:`control_plane_of` says which one routes a rollout, so that a rollout's statistics go back to
the control plane that runs it. The instrumentation learns of a router's control plane without
holding the router or reading its internals, and routing never learns who listens.
"""

from __future__ import annotations

import itertools
import logging
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from otel_prompt_canary.names import DEFAULT_ENVIRONMENT

__all__ = [
    "ControlPlane",
    "ControlPlaneListener",
    "add_control_plane_listener",
    "announce",
    "control_plane_of",
    "control_planes",
    "remove_control_plane_listener",
]

logger = logging.getLogger("otel_prompt_canary.routing")


@dataclass(frozen=True, slots=True)
class ControlPlane:
    """A control plane a router reads, and how to reach it."""

    #: Its URL, without a trailing slash.
    base_url: str
    #: The credential the router was given (None: none), also the application's reporting credential.
    token: str | None = field(default=None, repr=False)
    verify: ssl.SSLContext | str | bool = field(default=True, repr=False)
    #: Seconds to connect and to read an answer.
    timeout: float = 5.0
    #: The environment whose routing flags the router reads (its reports name it).
    environment: str = DEFAULT_ENVIRONMENT


ControlPlaneListener = Callable[[ControlPlane], object]
#: Tells whether a rollout id is routed by the announcer (a route of its cache names it).
RoutesRollout = Callable[[str], bool]


class _Known:
    """The announced control planes, and the listeners, under one lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.planes: dict[int, tuple[ControlPlane, RoutesRollout]] = {}
        self.listeners: tuple[ControlPlaneListener, ...] = ()
        self.ids = itertools.count()


_KNOWN: Final = _Known()


def announce(plane: ControlPlane, routes_rollout: RoutesRollout) -> Callable[[], None]:
    """Make ``plane`` known until the returned function is called (a router does it on close).

    ``routes_rollout`` says whether a rollout is one the announcer routes. Each listener is called
    with ``plane``; one that raises is logged and ignored.
    """
    with _KNOWN.lock:
        handle = next(_KNOWN.ids)
        _KNOWN.planes[handle] = (plane, routes_rollout)
        listeners = _KNOWN.listeners
    for listener in listeners:
        try:
            listener(plane)
        except Exception:
            logger.warning("a control plane listener raised; ignoring it", exc_info=True)

    def withdraw() -> None:
        with _KNOWN.lock:
            _KNOWN.planes.pop(handle, None)

    return withdraw


def control_planes() -> tuple[ControlPlane, ...]:
    """The control planes announced and not withdrawn, one per URL, in the order they came.

    Of several routers on one URL, the first that was given a credential speaks for it.
    """
    with _KNOWN.lock:
        announced = [plane for plane, _ in _KNOWN.planes.values()]
    by_url: dict[str, ControlPlane] = {}
    for plane in announced:
        known = by_url.get(plane.base_url)
        if known is None or (known.token is None and plane.token is not None):
            by_url[plane.base_url] = plane
    return tuple(by_url.values())


def control_plane_of(rollout_id: str) -> ControlPlane | None:
    """The control plane whose routes name ``rollout_id`` (None when no router knows it)."""
    with _KNOWN.lock:
        announced = list(_KNOWN.planes.values())
    for plane, routes_rollout in announced:
        try:
            if routes_rollout(rollout_id):
                return plane
        except Exception:
            logger.debug("could not ask a router about rollout %s", rollout_id, exc_info=True)
    return None


def add_control_plane_listener(listener: ControlPlaneListener) -> None:
    """Call ``listener`` with each control plane announced from now on."""
    with _KNOWN.lock:
        _KNOWN.listeners = (*_KNOWN.listeners, listener)


def remove_control_plane_listener(listener: ControlPlaneListener) -> None:
    """Stop calling ``listener`` (no error when it was not added)."""
    with _KNOWN.lock:
        _KNOWN.listeners = tuple(item for item in _KNOWN.listeners if item is not listener)
