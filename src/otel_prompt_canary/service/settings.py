"""The control plane's settings: one object, validated when it is built.

The service refuses insecure defaults: without a bearer token for writes it does not start, unless
``insecure_dev`` says this is a local development instance (then writes are open to anyone who can
reach the port).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from otel_prompt_canary.registry.base import DEFAULT_MAX_TEMPLATE_BYTES

__all__ = ["DEFAULT_MAX_BODY_BYTES", "MAX_LONG_POLL_SECONDS", "MIN_TOKEN_LENGTH", "ServiceSettings"]

#: Request bodies larger than this are refused with HTTP 413 before they are parsed.
DEFAULT_MAX_BODY_BYTES = 1024 * 1024

#: The longest ``wait`` a client may ask of ``GET /v1/routes``.
MAX_LONG_POLL_SECONDS = 60.0

#: Shorter tokens are refused: they can be guessed.
MIN_TOKEN_LENGTH = 16


class ServiceSettings(BaseModel):
    """How the control plane runs. Building it checks every rule; a bad setting raises at start-up."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    token: SecretStr | None = Field(None, description="Bearer token that every write (POST) must present")
    insecure_dev: bool = Field(
        False, description="Allow starting without a token: writes are then unauthenticated"
    )
    max_body_bytes: int = Field(
        DEFAULT_MAX_BODY_BYTES,
        ge=1024,
        le=64 * 1024 * 1024,
        description="Largest accepted request body, in bytes (HTTP 413 above)",
    )
    max_template_bytes: int = Field(
        DEFAULT_MAX_TEMPLATE_BYTES,
        ge=1,
        description="Largest accepted template, in UTF-8 bytes (HTTP 413 above)",
    )
    store_poll_seconds: float = Field(
        0.25,
        gt=0,
        le=10,
        description="While long-polls wait, how often the store is re-read for changes made "
        "by other replicas",
    )

    @model_validator(mode="after")
    def _refuse_insecure(self) -> ServiceSettings:
        if self.max_template_bytes > self.max_body_bytes:
            raise ValueError(
                f"max_template_bytes ({self.max_template_bytes}) must not exceed "
                f"max_body_bytes ({self.max_body_bytes})"
            )
        if self.token is None:
            if not self.insecure_dev:
                raise ValueError(
                    "refusing to start without a token: set --token or OTEL_PROMPT_CANARY_TOKEN "
                    "(e.g. `openssl rand -hex 32`), or pass --insecure-dev for local development"
                )
            return self
        secret = self.token.get_secret_value()
        if secret != secret.strip() or any(c.isspace() for c in secret):
            raise ValueError("the token must not contain whitespace")
        if len(secret) < MIN_TOKEN_LENGTH:
            raise ValueError(
                f"the token is too short ({len(secret)} characters): use at least "
                f"{MIN_TOKEN_LENGTH} (e.g. `openssl rand -hex 32`)"
            )
        return self

    @property
    def writes_open(self) -> bool:
        """True when writes need no token (``insecure_dev`` without a token)."""
        return self.token is None
