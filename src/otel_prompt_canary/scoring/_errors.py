"""Errors of the evaluation endpoints (LLM judge, moderation), under :class:`PromptCanaryError`.

::

    PromptCanaryError
    └── EvaluationError              an evaluation endpoint could not be reached or used
        ├── EvaluationTimeoutError   the endpoint did not answer within the configured timeout
        └── EvaluationResponseError  the endpoint answered with an error status or an unusable body

Configuration mistakes raise :class:`~otel_prompt_canary.errors.InvalidInputError`. httpx exceptions
are mapped to these classes at the boundary with ``raise ... from``. They never reach an application:
the background worker records them as error outcomes and counts them.
"""

from __future__ import annotations

from otel_prompt_canary.errors import PromptCanaryError

__all__ = ["EvaluationError", "EvaluationResponseError", "EvaluationTimeoutError"]


class EvaluationError(PromptCanaryError):
    """An evaluation endpoint (LLM judge, moderation) could not be reached or used."""

    http_status = 502


class EvaluationTimeoutError(EvaluationError):
    """The evaluation endpoint did not answer within the configured timeout."""

    http_status = 504


class EvaluationResponseError(EvaluationError):
    """The endpoint answered with an error status, or with a body that holds no usable verdict."""
