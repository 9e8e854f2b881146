"""The control plane's HTTP API as the Collector and applications use it, for tests.

The package's client (:mod:`otel_prompt_canary.routing.remote`) covers the registry and rollouts; the
alert log and reports are read and posted by other senders, so tests speak plain HTTP for them::

    assert post_report(url, envelope, token=TOKEN).json()["outcome"] == "merged"
    (record,) = alert_log(url, "greeter")
"""

from __future__ import annotations

from typing import Any

import httpx

__all__ = ["alert_log", "post_report"]


def alert_log(
    base_url: str, prompt: str | None = None, *, rollout_id: str | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    """``GET /v1/alerts``: the alert log, oldest first (fails the test on an error answer)."""
    params: dict[str, str | int] = {}
    if prompt is not None:
        params["prompt"] = prompt
    if rollout_id is not None:
        params["rollout_id"] = rollout_id
    if limit is not None:
        params["limit"] = limit
    response = httpx.get(f"{base_url}/v1/alerts", params=params, timeout=10)
    assert response.status_code == 200, response.text
    records: list[dict[str, Any]] = response.json()
    return records


def post_report(base_url: str, envelope: dict[str, Any], *, token: str) -> httpx.Response:
    """``POST /v1/reports`` of ``envelope`` with the write token, as an application sends it."""
    return httpx.post(
        f"{base_url}/v1/reports", json=envelope, headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
