"""Every list of the API comes in pages: a default and a largest size, an opaque cursor, a ``Link``
to the next page; the package's client and the CLI follow them."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from otel_prompt_canary.registry import PromptSpec, SqlRegistry, open_store
from otel_prompt_canary.registry import schema as tables
from otel_prompt_canary.registry.database import utc_now
from otel_prompt_canary.routing.remote import RemoteRegistry
from otel_prompt_canary.service import ServiceSettings
from otel_prompt_canary.service.pages import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from tests.cli.cli_helpers import process_environment, serving
from tests.service.service_factories import error_of, pages, started, text_spec
from tests.support.auth import AUTH, TOKEN
from tests.support.loopback import running_server
from tests.support.memory import peak_kib, resident_kib

#: What an Alertmanager alert keeps as evidence, about the size the real ones have.
_EVIDENCE = {
    "labels": {"alertname": "PromptCanaryJsonValidity", "prompt": "greeter", "action": "rollback"},
    "annotations": {"summary": "format validity of the canary below 95% " + "x" * 300},
    "startsAt": "2026-01-01T00:00:00Z",
}


def log_alerts(registry: SqlRegistry, prompt: str, count: int) -> None:
    """Write ``count`` alerts of ``prompt`` into the alert log at once, as decided alerts look."""
    now = utc_now()
    for first in range(0, count, 10_000):
        rows = [
            {
                "received_at": now,
                "source": "alertmanager",
                "alert_key": f"alert-{i}",
                "prompt": prompt,
                "rollout_id": None,
                "action": "rollback",
                "status": "firing",
                "outcome": "ignored",
                "summary": "format validity of the canary below 95%",
                "reason": "no active rollout",
                "audit_id": None,
                "alert": _EVIDENCE,
            }
            for i in range(first, min(count, first + 10_000))
        ]
        with registry.database.transaction() as conn:
            conn.execute(tables.alert_log.insert(), rows)


def test_versions_come_newest_page_first_each_page_oldest_first(client: TestClient) -> None:
    for n in range(1, 8):
        client.post("/v1/prompts", json=text_spec(template=f"v{n} {{{{ name }}}}"), headers=AUTH)
    found = pages(client, "/v1/prompts/greeter/versions", limit=3)
    assert [[v["version"] for v in page] for page in found] == [[5, 6, 7], [2, 3, 4], [1]]
    assert client.get("/v1/prompts/greeter").json()["versions"] == 7


def test_lists_have_a_default_and_a_largest_page(client: TestClient, registry: SqlRegistry) -> None:
    for i in range(DEFAULT_PAGE_SIZE + 1):
        registry.push(PromptSpec(name=f"p{i:03}", template="Hello {{ name }}"))
    first = client.get("/v1/prompts")
    assert len(first.json()) == DEFAULT_PAGE_SIZE
    assert first.json()[0]["name"] == "p000"
    assert "next" in first.links
    last = client.get(first.links["next"]["url"])
    assert [p["name"] for p in last.json()] == [f"p{DEFAULT_PAGE_SIZE:03}"]
    assert "next" not in last.links and "Link" not in last.headers
    assert len(client.get("/v1/prompts", params={"limit": MAX_PAGE_SIZE}).json()) == DEFAULT_PAGE_SIZE + 1
    for limit in (0, MAX_PAGE_SIZE + 1, 2**63):
        refused = client.get("/v1/prompts", params={"limit": limit})
        assert refused.status_code == 422 and error_of(refused)[0] == "InvalidInputError"


def test_a_cursor_stays_valid_while_records_arrive(client: TestClient) -> None:
    started(client, AUTH)  # the start is the first audit record
    for action in ("advance", "pause", "resume"):
        client.post(f"/v1/prompts/greeter/rollout/{action}", json={"reason": action}, headers=AUTH)
    first = client.get("/v1/prompts/greeter/rollout/history", params={"limit": 2})
    assert [r["action"] for r in first.json()] == ["pause", "resume"]
    client.post("/v1/prompts/greeter/rollout/rollback", json={"reason": "later"}, headers=AUTH)
    rest = pages(client, first.links["next"]["url"])
    assert [r["action"] for page in rest for r in page] == ["start", "advance"]


def test_alerts_come_in_pages_with_their_filters(client: TestClient, registry: SqlRegistry) -> None:
    registry.push(PromptSpec(name="greeter", template="Hello {{ name }}"))
    registry.push(PromptSpec(name="other", template="Bye {{ name }}"))
    log_alerts(registry, "greeter", 5)
    log_alerts(registry, "other", 2)
    found = pages(client, "/v1/alerts", prompt="greeter", limit=2)
    assert [len(page) for page in found] == [2, 2, 1]
    ids = [r["id"] for page in reversed(found) for r in page]
    assert ids == sorted(ids) and len(set(ids)) == 5
    assert {r["prompt"] for page in found for r in page} == {"greeter"}
    assert (
        "prompt=greeter"
        in client.get("/v1/alerts", params={"prompt": "greeter", "limit": 2}).links["next"]["url"]
    )


def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor",
        _cursor("h.1"),  # a cursor of the audit trail, given to the versions
        _cursor(f"v.{2**63}"),  # beyond what the store holds
        _cursor("v.\u0661"),  # an Arabic-Indic digit one
        _cursor("v.-1"),
        "!!",
    ],
)
def test_a_bad_cursor_is_refused(client: TestClient, cursor: str) -> None:
    client.post("/v1/prompts", json=text_spec(), headers=AUTH)
    refused = client.get("/v1/prompts/greeter/versions", params={"cursor": cursor})
    assert refused.status_code == 422
    assert error_of(refused)[0] == "InvalidInputError"
    assert "cursor" in error_of(refused)[1]


def test_a_prompt_cursor_must_name_a_prompt(client: TestClient) -> None:
    refused = client.get("/v1/prompts", params={"cursor": _cursor("p.bad\x00name")})
    assert refused.status_code == 422 and "invalid cursor" in error_of(refused)[1]


def test_the_client_follows_pages(registry: SqlRegistry) -> None:
    for n in range(1, 6):
        registry.push(PromptSpec(name="greeter", template=f"v{n} {{{{ name }}}}"))
        registry.push(PromptSpec(name=f"p{n}", template="Hello {{ name }}"))
    with (
        running_server(registry, ServiceSettings(token=TOKEN)) as url,
        RemoteRegistry(url, token=TOKEN) as remote,
    ):
        assert [v.version for v in remote.list_versions("greeter")] == [1, 2, 3, 4, 5]
        assert [v.version for v in remote.list_versions("greeter", limit=2)] == [4, 5]
        assert [v.version for v in remote.list_versions("greeter", before=4, limit=2)] == [2, 3]
        names = [p.name for p in remote.list_prompts()]
        assert names == ["greeter", "p1", "p2", "p3", "p4", "p5"]
        assert [p.name for p in remote.list_prompts(after="p2", limit=2)] == ["p3", "p4"]
        assert remote.list_prompts() == registry.list_prompts()


@pytest.mark.parametrize("store_backend", ["sqlite"])  # the bound is the server's memory, not the store's
def test_100000_alerts_read_back_in_pages_under_a_memory_bound(tmp_path: Path, store_target: str) -> None:
    with open_store(store_target) as store:
        store.push(PromptSpec(name="greeter", template="Hello {{ name }}"))
        log_alerts(store, "greeter", 100_000)
    processes: list[subprocess.Popen[str]] = []
    env = process_environment(OTEL_PROMPT_CANARY_TOKEN=TOKEN)
    with (
        serving("--registry", store_target, env=env, started=processes) as (url, _),
        httpx.Client(base_url=url, timeout=120) as http,
    ):
        pid = processes[0].pid
        before = resident_kib(pid)
        found = pages(http, "/v1/alerts", limit=MAX_PAGE_SIZE)
        growth_mib = (peak_kib(pid) - before) / 1024
    assert len(found) == 100
    ids = [record["id"] for page in reversed(found) for record in page]
    assert len(ids) == len(set(ids)) == 100_000 and ids == sorted(ids)
    # Read whole, the same log took the server to a 676 MB peak.
    assert growth_mib < 64, f"the server grew by {growth_mib:.0f} MiB"
