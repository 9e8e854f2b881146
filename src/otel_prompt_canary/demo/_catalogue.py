"""The simulated LLM's non-generation answers: the model list and moderation results."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from otel_prompt_canary.demo._wire import ApiError, JsonBody, new_id, text_of
from otel_prompt_canary.demo.behaviour import Behaviour

__all__ = ["anthropic_model", "find_model", "model_list", "moderation_body", "openai_model"]

_CREATED = 1_735_689_600  # 2025-01-01T00:00:00Z
_OWNER = "otel-prompt-canary"
_MODERATION_MODEL = "omni-moderation-latest"

#: Every category of an OpenAI moderation result, with the input types it applies to.
_CATEGORIES: dict[str, list[str]] = {
    "harassment": ["text"],
    "harassment/threatening": ["text"],
    "hate": ["text"],
    "hate/threatening": ["text"],
    "illicit": ["text"],
    "illicit/violent": ["text"],
    "self-harm": ["text", "image"],
    "self-harm/instructions": ["text", "image"],
    "self-harm/intent": ["text", "image"],
    "sexual": ["text", "image"],
    "sexual/minors": ["text"],
    "violence": ["text", "image"],
    "violence/graphic": ["text", "image"],
}


def openai_model(model_id: str) -> dict[str, Any]:
    """An OpenAI ``model`` object."""
    return {"id": model_id, "object": "model", "created": _CREATED, "owned_by": _OWNER}


def anthropic_model(model_id: str) -> dict[str, Any]:
    """An Anthropic ``ModelInfo`` object."""
    return {
        "type": "model",
        "id": model_id,
        "display_name": model_id,
        "created_at": "2025-01-01T00:00:00Z",
        "lifecycle": "active",
    }


def model_list(behaviour: Behaviour, *, anthropic: bool) -> dict[str, Any]:
    """``GET /v1/models`` in the calling SDK's shape."""
    if anthropic:
        models = [anthropic_model(m) for m in behaviour.models]
        return {
            "data": models,
            "has_more": False,
            "first_id": models[0]["id"] if models else None,
            "last_id": models[-1]["id"] if models else None,
        }
    return {"object": "list", "data": [openai_model(m) for m in behaviour.models]}


def find_model(behaviour: Behaviour, model_id: str) -> str:
    """``model_id`` when the behaviour lists it, else :class:`ApiError` 404."""
    if model_id not in behaviour.models:
        raise ApiError(404, f"The model '{model_id}' does not exist or you do not have access to it.")
    return model_id


def moderation_body(behaviour: Behaviour, body: JsonBody) -> dict[str, Any]:
    """``POST /v1/moderations``: one result per input, flagged by the behaviour's moderation terms."""
    raw = body.get("input")
    if raw is None:
        raise ApiError(400, "Missing required parameter: 'input'.", param="input")
    if isinstance(raw, str):
        texts = [raw]
    elif isinstance(raw, list) and all(isinstance(item, str) for item in raw):
        texts = list(raw)
    elif isinstance(raw, list):  # multi-modal parts: one input
        texts = ["\n".join(text_of(part) for part in raw if isinstance(part, Mapping))]
    else:
        raise ApiError(400, "'input' must be a string, an array of strings or an array of parts.")
    model = body.get("model")
    return {
        "id": new_id("modr-"),
        "model": model if isinstance(model, str) else _MODERATION_MODEL,
        "results": [_moderation(behaviour.moderate(text)) for text in texts],
    }


def _moderation(flags: Mapping[str, bool]) -> dict[str, Any]:
    categories = {name: bool(flags.get(name)) for name in _CATEGORIES}
    categories.update({name: flagged for name, flagged in flags.items() if name not in categories})
    return {
        "flagged": any(categories.values()),
        "categories": categories,
        "category_scores": {name: 0.97 if hit else 0.0001 for name, hit in categories.items()},
        "category_applied_input_types": {name: _CATEGORIES.get(name, ["text"]) for name in categories},
    }
