"""Test data for the control-plane tests: prompt spec bodies, a prompt with a rollout, and reading
every page of a list."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi.testclient import TestClient


def text_spec(
    name: str = "greeter", template: str = "Greet {{ name }} warmly.", **extra: Any
) -> dict[str, Any]:
    """A text prompt spec as JSON."""
    return {"name": name, "template": template, **extra}


def chat_spec(name: str = "support", system: str = "You answer in JSON.", **extra: Any) -> dict[str, Any]:
    """A chat prompt spec as JSON."""
    return {
        "name": name,
        "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": "{{ question }}"},
        ],
        **extra,
    }


def two_versions(client: TestClient, auth: dict[str, str], name: str = "greeter") -> None:
    """Push versions 1 and 2 of ``name``."""
    for template in ("Greet {{ name }} warmly.", "Greet {{ name }} briefly."):
        response = client.post("/v1/prompts", json=text_spec(name, template), headers=auth)
        assert response.status_code == 201, response.text


def started(
    client: TestClient, auth: dict[str, str], name: str = "greeter", ramp: str = "1,5,20,50,100"
) -> dict[str, Any]:
    """Two versions of ``name`` and a rollout of version 2; returns the route."""
    two_versions(client, auth, name)
    response = client.post(
        f"/v1/prompts/{name}/rollouts",
        json={"version": 2, "ramp": ramp, "reason": "try the brief greeting"},
        headers=auth,
    )
    assert response.status_code == 201, response.text
    route: dict[str, Any] = response.json()
    return route


def error_of(response: Any) -> tuple[str, str]:
    """The ``(type, message)`` of an error answer, checking its shape."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"type", "message"}, body
    return body["error"]["type"], body["error"]["message"]


def pages(client: TestClient | httpx.Client, url: str, **params: Any) -> list[Any]:
    """Every page of a list (each page's JSON body), following the ``Link`` headers."""
    found = []
    response = client.get(url, params=params) if params else client.get(url)
    while True:
        assert response.status_code == 200, response.text
        found.append(response.json())
        link = response.links.get("next")
        if link is None:
            return found
        assert link["url"].startswith(url.split("?")[0] + "?")
        response = client.get(link["url"])
