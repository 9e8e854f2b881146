"""The control plane: the HTTP service in front of the registry and the loop (``prompt-canary serve``).

:class:`ServiceSettings` says how it runs (each setting an argument, an environment variable
``OTEL_PROMPT_CANARY_<SETTING>`` or an option of ``prompt-canary serve``). The application itself
needs the ``server`` extra (FastAPI, uvicorn)::

    from otel_prompt_canary.registry import open_store
    from otel_prompt_canary.service import ServiceSettings
    from otel_prompt_canary.service.app import create_app

    app = create_app(open_store("registry.db"), ServiceSettings(token="..."))

The HTTP resources are in :mod:`.api`, the alert receivers in :mod:`.receivers`; what they expose
(the rollout controller, alerts, reports) is the loop's, :mod:`otel_prompt_canary.loop`, usable
without HTTP. This package's ``__init__`` imports no HTTP stack, so that the CLI can read the
settings without the ``server`` extra; docs/control-plane.md describes the API.
"""

from otel_prompt_canary.service.settings import ServiceSettings

__all__ = ["ServiceSettings"]
