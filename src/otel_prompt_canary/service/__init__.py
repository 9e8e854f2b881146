"""The control plane: the HTTP service in front of the registry (``prompt-canary serve``).

Needs the ``server`` extra (FastAPI, uvicorn). :func:`create_app` builds the ASGI application for
a registry and a validated :class:`ServiceSettings`; docs/control-plane.md describes the API.
:class:`RolloutController` is the rollout controller the service runs, usable on its own in one
process (it needs no HTTP stack); docs/control-plane.md has a section on it.

The HTTP application is imported on first use, so that the controller and the policy helpers can
be imported where FastAPI is not installed.
"""

from typing import TYPE_CHECKING

from otel_prompt_canary.service.settings import ServiceSettings

if TYPE_CHECKING:
    from otel_prompt_canary.service.app import create_app
    from otel_prompt_canary.service.controller import RolloutController


def __getattr__(name: str) -> object:
    if name == "create_app":
        from otel_prompt_canary.service.app import create_app

        return create_app
    if name == "RolloutController":
        from otel_prompt_canary.service.controller import RolloutController

        return RolloutController
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["RolloutController", "ServiceSettings", "create_app"]
