"""The credentials every suite gives the control plane it starts: one write token, one header.

::

    settings = ServiceSettings(token=TOKEN)
    client.post("/v1/prompts", json=spec, headers=AUTH)
"""

from __future__ import annotations

__all__ = ["ALERTMANAGER_TOKEN", "AUTH", "REPORT_AUTH", "REPORT_TOKEN", "TOKEN"]

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
