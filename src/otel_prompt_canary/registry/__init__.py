"""The prompt registry: immutable prompt versions, diffs, and the routing flag of each prompt.

Open one with :func:`open_store` (an SQLite file path or a PostgreSQL URL); the control plane's HTTP
client implements the same :class:`Registry` interface.
"""

from otel_prompt_canary.registry.base import DEFAULT_MAX_TEMPLATE_BYTES, Registry
from otel_prompt_canary.registry.diff import BlastRadius, PromptDiff, diff_versions
from otel_prompt_canary.registry.models import (
    DEFAULT_RAMP,
    Action,
    AuditRecord,
    Environment,
    Message,
    PromptSpec,
    PromptSummary,
    PromptVersion,
    PushResult,
    Rollout,
    RolloutState,
    Route,
    parse_ramp,
    validate_prompt_name,
)
from otel_prompt_canary.registry.sql import SqlRegistry, open_store

__all__ = [
    "DEFAULT_MAX_TEMPLATE_BYTES",
    "DEFAULT_RAMP",
    "Action",
    "AuditRecord",
    "BlastRadius",
    "Environment",
    "Message",
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
    "validate_prompt_name",
]
