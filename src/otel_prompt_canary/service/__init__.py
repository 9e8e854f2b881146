"""The control plane: the HTTP service in front of the registry (``prompt-canary serve``).

Needs the ``server`` extra (FastAPI, uvicorn). :func:`create_app` builds the ASGI application for
a registry and a validated :class:`ServiceSettings`; docs/control-plane.md describes the API.
"""

from otel_prompt_canary.service.app import create_app
from otel_prompt_canary.service.settings import ServiceSettings

__all__ = ["ServiceSettings", "create_app"]
