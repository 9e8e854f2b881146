"""The safety check: passes when a classifier does not flag the output.

The classifier is any callable ``(LLMResponse) -> bool | None`` returning *flagged* (None: cannot
tell). Bring your own (a local model, a keyword list), or use :class:`ModerationClassifier`, which
asks an OpenAI-compatible ``POST {base_url}/moderations`` endpoint. A classifier that calls the
network belongs off the hot path: the scoring plan runs moderation in its background worker.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from otel_prompt_canary.errors import InvalidInputError
from otel_prompt_canary.scoring._errors import EvaluationResponseError
from otel_prompt_canary.scoring._http import EndpointClient
from otel_prompt_canary.scoring._outcomes import validate_evaluation_name
from otel_prompt_canary.scoring._response import LLMResponse

if TYPE_CHECKING:
    import httpx

__all__ = ["ModerationClassifier", "SafetyCheck", "SafetyClassifier"]

#: A safety classifier: returns True when the response is flagged, None when it cannot tell.
SafetyClassifier = Callable[[LLMResponse], "bool | None"]


class SafetyCheck:
    """Passes when ``classifier`` does not flag the response; fails when it does.

    It does not apply when the classifier returns None. A classifier that raises, or returns anything
    but a bool or None, becomes an error outcome in :func:`~otel_prompt_canary.scoring.run_checks`.
    """

    __slots__ = ("_classifier", "_name")

    def __init__(self, classifier: SafetyClassifier, *, name: str = "safety") -> None:
        if not callable(classifier):
            raise InvalidInputError(f"safety: the classifier must be callable, got {classifier!r}")
        self._classifier = classifier
        self._name = validate_evaluation_name(name)

    @property
    def name(self) -> str:
        """The check's name."""
        return self._name

    @property
    def classifier(self) -> SafetyClassifier:
        """The classifier this check asks."""
        return self._classifier

    def check(self, response: LLMResponse) -> bool | None:
        """True: not flagged; False: flagged; None: the classifier cannot tell."""
        flagged = self._classifier(response)
        if flagged is None:
            return None
        if flagged is True or flagged is False:
            return not flagged
        raise TypeError(f"safety classifier returned {type(flagged).__name__}, not bool or None")

    def close(self) -> None:
        """Close the classifier when it holds resources (an HTTP client)."""
        close = getattr(self._classifier, "close", None)
        if callable(close):
            close()

    def __repr__(self) -> str:
        return f"SafetyCheck({self._classifier!r}, name={self._name!r})"


class ModerationClassifier:
    """Flags a response through an OpenAI-compatible moderation endpoint.

    Sends ``{"model": model, "input": output_text}`` to ``POST {base_url}/moderations`` and returns
    True when any result has ``flagged: true``. An empty output is not sent (returns None). Errors
    raise :class:`~otel_prompt_canary.scoring.EvaluationError` subclasses.

    Args:
        base_url: e.g. ``https://api.openai.com/v1``.
        api_key: Sent as a bearer token.
        model: The moderation model; None leaves it to the endpoint.
        timeout: Seconds for the whole request.
        max_chars: Send at most this many characters of the output.
        headers: Extra request headers.
        client: An ``httpx.Client`` to reuse.
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        model: str | None = "omni-moderation-latest",
        timeout: float = 5.0,
        max_chars: int = 32_000,
        headers: Mapping[str, str] | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        if max_chars < 1:
            raise InvalidInputError(f"moderation: max_chars must be at least 1, got {max_chars}")
        self._endpoint = EndpointClient(
            base_url, api_key=api_key, timeout=timeout, headers=headers, client=client
        )
        self._model = model
        self._max_chars = max_chars

    def __call__(self, response: LLMResponse) -> bool | None:
        """True when the endpoint flags the output, False when not, None for an empty output."""
        text = response.output_text
        if not text.strip():
            return None
        payload: dict[str, Any] = {"input": text[: self._max_chars]}
        if self._model:
            payload["model"] = self._model
        body = self._endpoint.post_json("/moderations", payload)
        results = body.get("results") if isinstance(body, dict) else None
        if not isinstance(results, list) or not results:
            raise EvaluationResponseError("moderation: the answer has no 'results' list")
        flags = [r.get("flagged") if isinstance(r, dict) else None for r in results]
        if not all(isinstance(f, bool) for f in flags):
            raise EvaluationResponseError("moderation: a result has no boolean 'flagged'")
        return any(flags)

    def close(self) -> None:
        """Close the HTTP client."""
        self._endpoint.close()

    def __repr__(self) -> str:
        return f"ModerationClassifier({self._endpoint.base_url!r}, model={self._model!r})"
