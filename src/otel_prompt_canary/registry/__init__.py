"""The prompt registry: immutable prompt versions, diffs, and the routing flag of each prompt.

Open one with :func:`open_store` (an SQLite file path or a PostgreSQL URL); the control plane's HTTP
client implements the same :class:`Registry` interface.
"""

from typing import TYPE_CHECKING

from otel_prompt_canary.registry.base import DEFAULT_MAX_TEMPLATE_BYTES, Registry
from otel_prompt_canary.registry.diff import BlastRadius, PromptDiff, diff_versions
from otel_prompt_canary.registry.models import (
    DEFAULT_RAMP,
    Action,
    AuditRecord,
    Environment,
    Message,
    OutputContract,
    PromptSpec,
    PromptSummary,
    PromptVersion,
    PushResult,
    Rollout,
    RolloutState,
    Route,
    parse_ramp,
    validate_environment_name,
    validate_prompt_name,
)

if TYPE_CHECKING:
    from otel_prompt_canary.registry.sql import SqlRegistry, open_store


def __getattr__(name: str) -> object:
    # The SQL store pulls in SQLAlchemy (~130 ms); an app reading routes over HTTP never needs it.
    if name in ("SqlRegistry", "open_store"):
        from otel_prompt_canary.registry import sql

        return getattr(sql, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_MAX_TEMPLATE_BYTES",
    "DEFAULT_RAMP",
    "Action",
    "AuditRecord",
    "BlastRadius",
    "Environment",
    "Message",
    "OutputContract",
    "PromptDiff",
    "PromptSpec",
    "PromptSummary",
    "PromptVersion",
    "PushResult",
    "Registry",
    "Rollout",
    "RolloutState",
    "Route",
    "SqlRegistry",
    "diff_versions",
    "open_store",
    "parse_ramp",
    "validate_environment_name",
    "validate_prompt_name",
]
