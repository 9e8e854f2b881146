"""The credentials every suite gives the control plane it starts: one write token, one header;
and principals with roles, written to a credentials file.

::

    settings = ServiceSettings(token=TOKEN)
    client.post("/v1/prompts", json=spec, headers=AUTH)

    alice = Credential("alice", ["operate"], environments=["staging"])
    settings = ServiceSettings(credentials_file=write_credentials(tmp_path, [alice]))
    client.post("/v1/prompts", json=spec, headers=alice.auth)
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

__all__ = [
    "ALERTMANAGER_TOKEN",
    "AUTH",
    "READ_AUTH",
    "READ_TOKEN",
    "REPORT_AUTH",
    "REPORT_TOKEN",
    "TOKEN",
    "Credential",
    "write_credentials",
]

#: The write token (``--token``): long enough for the service's settings to accept it.
TOKEN = "test-token-0123456789abcdef"
#: The ``Authorization`` header that carries :data:`TOKEN`.
AUTH = {"Authorization": f"Bearer {TOKEN}"}
#: The bearer token Alertmanager presents (``--alertmanager-token``), distinct from :data:`TOKEN`.
ALERTMANAGER_TOKEN = "alertmanager-token-0123456789"
#: The reporting credential (``--report-token``): applications' ``OTEL_PROMPT_CANARY_TOKEN``.
REPORT_TOKEN = "report-token-0123456789abcdef"
#: The ``Authorization`` header that carries :data:`REPORT_TOKEN`.
REPORT_AUTH = {"Authorization": f"Bearer {REPORT_TOKEN}"}
#: The read token (``--read-token``).
READ_TOKEN = "read-token-0123456789abcdef"
#: The ``Authorization`` header that carries :data:`READ_TOKEN`.
READ_AUTH = {"Authorization": f"Bearer {READ_TOKEN}"}


@dataclass(frozen=True)
class Credential:
    """A principal of a credentials file: its name, roles, environments (None: all) and token."""

    principal: str
    roles: Sequence[str]
    environments: Sequence[str] | None = None

    @property
    def token(self) -> str:
        return f"{self.principal}-token-0123456789abcdef"

    @property
    def auth(self) -> dict[str, str]:
        """The ``Authorization`` header that carries its token."""
        return {"Authorization": f"Bearer {self.token}"}

    def entry(self) -> dict[str, object]:
        """Its entry in a credentials file (the token's SHA-256, as the docs advise)."""
        entry: dict[str, object] = {
            "principal": self.principal,
            "token_sha256": hashlib.sha256(self.token.encode()).hexdigest(),
            "roles": list(self.roles),
        }
        if self.environments is not None:
            entry["environments"] = list(self.environments)
        return entry


def write_credentials(directory: Path, credentials: Sequence[Credential]) -> Path:
    """A credentials file for ``credentials`` in ``directory``; its path."""
    path = directory / "credentials.yaml"
    path.write_text(yaml.safe_dump([c.entry() for c in credentials], sort_keys=False), encoding="utf-8")
    return path
