"""otel-prompt-canary: canary releases for LLM prompts on OpenTelemetry.

The application-side API is small: :class:`PromptRouter` picks the prompt version for a call (stable or
canary, sticky per user) and :class:`Selection` carries that choice into the OpenTelemetry context,
where the instrumentation tags LLM spans with it. Everything else is reached through subpackages:
``registry`` (versions and the routing flag), ``instrumentation``, ``scoring``, ``analysis`` and the
control-plane ``service``.
"""

from otel_prompt_canary._version import __version__
from otel_prompt_canary.errors import (
    AuthenticationError,
    ConflictError,
    IllegalTransitionError,
    InvalidInputError,
    NotFoundError,
    PromptCanaryError,
    RegistryUnavailableError,
    RevisionMismatchError,
    TemplateError,
    TooLargeError,
)
from otel_prompt_canary.routing import PromptRouter, Selection, current_selection

__all__ = [
    "AuthenticationError",
    "ConflictError",
    "IllegalTransitionError",
    "InvalidInputError",
    "NotFoundError",
    "PromptCanaryError",
    "PromptRouter",
    "RegistryUnavailableError",
    "RevisionMismatchError",
    "Selection",
    "TemplateError",
    "TooLargeError",
    "__version__",
    "current_selection",
]
