"""The credentials file (``--credentials-file``): who may use the control plane, with which roles.

A YAML (or JSON) list, one entry per credential::

    - principal: alice                 # the name audit records and reviews keep
      token_sha256: 3f1c...            # the SHA-256 of her token, in hex (printf %s TOKEN | sha256sum)
      roles: [operate, review]
    - principal: ci-staging
      token_sha256: 9a0b...
      roles: [operate]
      environments: [staging]          # its rollouts and routing flags: staging only
    - principal: grafana-oncall
      token: 2c6e0d...                 # the token itself is accepted too; prefer its hash
      roles: [read]

Each entry has ``principal``, exactly one of ``token_sha256`` and ``token``, ``roles`` (at least
one of read, report, alert, operate, review, admin; :mod:`otel_prompt_canary.service.principals`
says what each may do) and optionally ``environments``, which must be environments the control
plane serves. A principal may have several entries (a token being replaced, say); two entries may
not share a token. :func:`load_credentials` reads the file when the settings are built and refuses
it with a message naming the entry and the field that is wrong; only the tokens' SHA-256 stays in
memory.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from otel_prompt_canary.errors import InvalidInputError, describe_validation_errors
from otel_prompt_canary.registry.models import validate_environment_name
from otel_prompt_canary.service.principals import Principal, Role, token_digest
from otel_prompt_canary.yaml_documents import load_yaml

__all__ = ["MAX_CREDENTIALS_FILE_BYTES", "Credential", "CredentialEntry", "load_credentials"]

#: A larger credentials file is refused (thousands of entries fit in it).
MAX_CREDENTIALS_FILE_BYTES = 1024 * 1024
#: Shorter tokens are refused: they can be guessed (as ``MIN_TOKEN_LENGTH`` of the settings).
_MIN_TOKEN_LENGTH = 16
_PRINCIPAL = re.compile(r"^[A-Za-z0-9][\w.@:+/-]{0,127}$")
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")


class CredentialEntry(BaseModel):
    """One entry of the credentials file, as written."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    principal: str = Field(description="Who the credential speaks for, as audit records name it")
    token_sha256: str | None = Field(None, description="The SHA-256 of the token, in hex")
    token: SecretStr | None = Field(None, description="The token itself (its hash is preferred)")
    roles: list[Role] = Field(min_length=1, description="What the credential may do")
    environments: list[str] | None = Field(
        None, min_length=1, description="The environments its environment-bound roles are limited to"
    )

    @field_validator("principal")
    @classmethod
    def _principal(cls, value: str) -> str:
        if not _PRINCIPAL.fullmatch(value):
            raise ValueError(
                f"invalid principal {value[:40]!r}: use 1-128 letters, digits or . _ @ : + / -, "
                "starting with a letter or digit"
            )
        return value

    @field_validator("token_sha256", "token", mode="before")
    @classmethod
    def _not_a_number(cls, value: object) -> object:
        # YAML reads an unquoted hash of digits only as a number, losing its leading zeros.
        if isinstance(value, int | float) and not isinstance(value, bool):
            raise ValueError("YAML read it as a number: quote it (token_sha256: '0123...')")
        return value

    @field_validator("token_sha256")
    @classmethod
    def _sha256(cls, value: str | None) -> str | None:
        if value is not None and not _SHA256.fullmatch(value):
            raise ValueError("give the SHA-256 of the token as 64 hexadecimal digits")
        return None if value is None else value.lower()

    @field_validator("token")
    @classmethod
    def _token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        secret = value.get_secret_value()
        if secret != secret.strip() or any(c.isspace() for c in secret):
            raise ValueError("the token must not contain whitespace")
        if len(secret) < _MIN_TOKEN_LENGTH:
            raise ValueError(
                f"the token is too short ({len(secret)} characters): use at least {_MIN_TOKEN_LENGTH} "
                "(e.g. `openssl rand -hex 32`)"
            )
        return value

    @field_validator("environments")
    @classmethod
    def _environments(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            for name in value:
                try:
                    validate_environment_name(name)
                except InvalidInputError as exc:
                    raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _one_token(self) -> CredentialEntry:
        if (self.token is None) == (self.token_sha256 is None):
            raise ValueError("give exactly one of 'token_sha256' (preferred) and 'token'")
        return self

    @property
    def digest(self) -> bytes:
        """The SHA-256 of the entry's token."""
        if self.token_sha256 is not None:
            return bytes.fromhex(self.token_sha256)
        assert self.token is not None  # one of the two, checked above
        return token_digest(self.token.get_secret_value())

    def to_principal(self) -> Principal:
        """The principal the entry's token speaks for."""
        environments = None if self.environments is None else frozenset(self.environments)
        return Principal(name=self.principal, roles=frozenset(self.roles), environments=environments)


@dataclass(frozen=True, slots=True)
class Credential:
    """A credential as kept in memory: the SHA-256 of its token and its principal."""

    digest: bytes
    principal: Principal


def _entries(path: Path) -> list[Any]:
    try:
        size = path.stat().st_size
        if size > MAX_CREDENTIALS_FILE_BYTES:
            raise ValueError(
                f"credentials file {path}: {size} bytes, over the {MAX_CREDENTIALS_FILE_BYTES} byte limit"
            )
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read the credentials file {path}: {exc}") from None
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"credentials file {path} is not valid YAML: {exc}") from None
    if not isinstance(data, list) or not data:
        raise ValueError(
            f"credentials file {path}: give a list of entries ('- principal: ..., token_sha256: ..., "
            "roles: [...]')"
        )
    return data


def load_credentials(path: Path, *, environments: Sequence[str] | None = None) -> tuple[Credential, ...]:
    """The credentials of the file at ``path``; raises :class:`ValueError` naming the entry (from
    1) and what is wrong. ``environments``, when given, are those the control plane serves: an
    entry naming another is refused."""
    credentials: list[Credential] = []
    seen: dict[bytes, int] = {}
    for number, raw in enumerate(_entries(path), start=1):
        where = f"credentials file {path}, entry {number}"
        if isinstance(raw, dict) and isinstance(raw.get("principal"), str):
            where += f" (principal {raw['principal'][:40]!r})"
        try:
            entry = CredentialEntry.model_validate(raw)
        except ValidationError as exc:
            raise ValueError(f"{where}: {describe_validation_errors(exc.errors())}") from None
        unknown = [e for e in entry.environments or () if environments is not None and e not in environments]
        if unknown:
            raise ValueError(
                f"{where}: environment {unknown[0]!r} is not served here (this control plane serves "
                f"{', '.join(environments or ())})"
            )
        digest = entry.digest
        if digest in seen:
            raise ValueError(f"{where}: the same token as entry {seen[digest]}: give each credential its own")
        seen[digest] = number
        credentials.append(Credential(digest=digest, principal=entry.to_principal()))
    return tuple(credentials)
