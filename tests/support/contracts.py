"""The output contract of the README's support assistant (``examples/support-bot-v*.yaml``), for the
suites that test contracts: its answers are ``{"answer": "...", "category": "billing|shipping|other"}``."""

from __future__ import annotations

from typing import Any, Final

__all__ = ["SUPPORT_BOT_SCHEMA"]

#: The JSON Schema the examples declare as ``output.schema``.
SUPPORT_BOT_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["answer", "category"],
    "properties": {"answer": {"type": "string"}, "category": {"enum": ["billing", "shipping", "other"]}},
}
