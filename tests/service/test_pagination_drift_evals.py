"""The lists of drift monitoring and evaluations come in pages like every list of the API: drift
monitoring by prompt name, drift alerts newest page first, datasets by name, runs in the order
asked; the clients (``RemoteEvalStore``, the CLI) follow the pages."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from otel_prompt_canary.evals import SqlEvalStore
from otel_prompt_canary.evals.datasets import Case, DatasetSpec
from otel_prompt_canary.evals.remote import RemoteEvalStore
from otel_prompt_canary.registry import SqlRegistry
from otel_prompt_canary.registry import schema as t
from otel_prompt_canary.registry.database import utc_now
from otel_prompt_canary.service import ServiceSettings
from tests.cli.cli_helpers import Cli
from tests.drift.factories import drift_alert_row, push_bot
from tests.service.service_factories import error_of, pages
from tests.support.auth import TOKEN
from tests.support.loopback import running_server


def _datasets(registry: SqlRegistry, names: tuple[str, ...] = ("golden",)) -> SqlEvalStore:
    """The prompt ``bot`` (variable ``x``) with a two-case dataset of each name."""
    push_bot(registry)
    evals = SqlEvalStore(registry)
    cases = (Case(id="a", variables={"x": "1"}), Case(id="b", variables={"x": "2"}))
    for name in names:
        evals.push_dataset(DatasetSpec(name=name, prompt="bot", cases=cases))
    return evals


def _runs(registry: SqlRegistry, count: int) -> list[tuple[Any, str]]:
    """``count`` stored runs of bot@1 on golden@1, two by two finished at the same time (as a
    store of many writers holds them); their (finished_at, run_id), newest first."""
    base = utc_now().replace(microsecond=0) - timedelta(days=1)
    rows = [
        {
            "run_id": f"{i:016x}",
            "prompt": "bot",
            "version": 1,
            "dataset": "golden",
            "dataset_version": 1,
            "status": "complete" if i % 3 else "incomplete",
            "source": "probe",
            "cases": 2,
            "passed": 2,
            "model": "sim-1",
            "started_at": base + timedelta(seconds=i // 2),
            "finished_at": base + timedelta(seconds=i // 2),
            "body": {},  # lists read the columns, not the run
        }
        for i in range(count)
    ]
    with registry.database.transaction() as conn:
        conn.execute(t.eval_runs.insert(), rows)
    return sorted(((r["finished_at"], r["run_id"]) for r in rows), reverse=True)


def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def test_drift_monitoring_and_its_alerts_come_in_pages(client: TestClient, registry: SqlRegistry) -> None:
    for name in ("e", "a", "c", "b", "d"):
        push_bot(registry, name=name)
    rows = [drift_alert_row("a", 1, f"s{i}") for i in range(5)] + [drift_alert_row("b", 1, "s")]
    with registry.database.transaction() as conn:
        conn.execute(t.drift_alerts.insert(), rows)

    found = pages(client, "/v1/drift", limit=2)
    assert [[p["prompt"] for p in page["prompts"]] for page in found] == [["a", "b"], ["c", "d"], ["e"]]
    assert {page["threshold"] for page in found} == {found[0]["threshold"]}
    assert [len(p["alerts"]) for p in found[0]["prompts"]] == [5, 1]
    assert [p["prompt"] for p in client.get("/v1/drift").json()["prompts"]] == ["a", "b", "c", "d", "e"]

    alerts = pages(client, "/v1/drift/alerts", prompt="a", open="true", limit=2)
    assert [len(page) for page in alerts] == [2, 2, 1]
    ids = [a["id"] for page in reversed(alerts) for a in page]
    assert ids == sorted(ids) and {a["prompt"] for page in alerts for a in page} == {"a"}
    link = client.get("/v1/drift/alerts", params={"prompt": "a", "open": "true", "limit": 2}).links["next"]
    assert "prompt=a" in link["url"] and "open=true" in link["url"]

    # A cursor of another list, or one that names no prompt, is refused.
    for url, cursor in (("/v1/drift", _cursor("d.3")), ("/v1/drift", _cursor("p.no/name"))):
        refused = client.get(url, params={"cursor": cursor})
        assert refused.status_code == 422 and "invalid cursor" in error_of(refused)[1]


def test_datasets_and_runs_come_in_pages(client: TestClient, registry: SqlRegistry) -> None:
    _datasets(registry, ("d4", "d1", "d3", "golden", "d2"))
    newest_first = _runs(registry, 7)

    found = pages(client, "/v1/prompts/bot/datasets", limit=2)
    assert [[d["name"] for d in page] for page in found] == [["d1", "d2"], ["d3", "d4"], ["golden"]]

    runs = pages(client, "/v1/prompts/bot/evals", limit=3)
    assert [len(page) for page in runs] == [3, 3, 1]
    assert [r["run_id"] for page in runs for r in page] == [run_id for _, run_id in newest_first]
    oldest = pages(client, "/v1/prompts/bot/evals", limit=2, order="oldest")
    assert [r["run_id"] for page in oldest for r in page] == [run_id for _, run_id in reversed(newest_first)]
    complete = pages(client, "/v1/prompts/bot/evals", limit=2, status="complete")
    assert {r["status"] for page in complete for r in page} == {"complete"}
    assert sum(len(page) for page in complete) == 4

    for url, cursor in (
        ("/v1/prompts/bot/evals", _cursor("s.d1")),  # a datasets cursor, given to the runs
        ("/v1/prompts/bot/evals", _cursor("r.12.not-a-run")),
        ("/v1/prompts/bot/evals", _cursor(f"r.{'9' * 20}.0000000000000001")),
        ("/v1/prompts/bot/datasets", _cursor("s.bad name")),
    ):
        refused = client.get(url, params={"cursor": cursor})
        assert refused.status_code == 422 and "invalid cursor" in error_of(refused)[1], (url, cursor)


def test_the_clients_and_the_cli_follow_every_page(registry: SqlRegistry) -> None:
    local = _datasets(registry, ("golden", "d1", "d2"))
    newest_first = _runs(registry, 1100)  # more than the largest page
    rows = [drift_alert_row("bot", 1, f"s{i}") for i in range(1100)]
    with registry.database.transaction() as conn:
        conn.execute(t.drift_alerts.insert(), rows)

    with running_server(registry, ServiceSettings(token=TOKEN)) as url:
        remote = RemoteEvalStore(url, token=TOKEN)
        try:
            assert remote.list_runs("bot", limit=1100) == local.list_runs("bot", limit=1100)
            assert [r.run_id for r in remote.list_runs("bot", limit=1100)] == [i for _, i in newest_first]
            assert remote.list_runs("bot", limit=1050, oldest_first=True) == local.list_runs(
                "bot", limit=1050, oldest_first=True
            )
            assert len(remote.list_runs("bot")) == 100  # the default, as a local store's
            after = newest_first[2]
            assert [r.run_id for r in remote.list_runs("bot", after=after, limit=2)] == [
                run_id for _, run_id in newest_first[3:5]
            ]
            assert remote.list_datasets("bot") == local.list_datasets("bot")
            assert [d.name for d in remote.list_datasets("bot", after="d1", limit=1)] == ["d2"]
        finally:
            remote.close()

        cli = Cli(url, token=TOKEN)
        assert len(cli.json("eval", "list", "bot", "--limit", "1050")) == 1050
        every = cli.json("drift", "alerts", "--all")
        ids = [a["id"] for a in every]
        assert len(ids) == 1100 and ids == sorted(ids)
        assert [a["id"] for a in cli.json("drift", "alerts", "--limit", "1050")] == ids[-1050:]
        assert [d["name"] for d in cli.json("dataset", "list", "bot", "--limit", "2")] == ["d1", "d2"]
        assert [p["prompt"] for p in cli.json("drift", "status")] == ["bot"]


@pytest.mark.parametrize("store_backend", ["sqlite"])  # the same paths on either engine: see above
def test_a_local_store_answers_the_cli_as_a_control_plane_does(registry: SqlRegistry) -> None:
    _datasets(registry, ("golden", "d1"))
    _runs(registry, 3)
    with registry.database.transaction() as conn:
        conn.execute(t.drift_alerts.insert(), [drift_alert_row("bot", 1, f"s{i}") for i in range(3)])
    cli = Cli(registry.url)
    assert len(cli.json("eval", "list", "bot", "--limit", "2")) == 2
    assert len(cli.json("drift", "alerts", "--all")) == 3
    assert [d["name"] for d in cli.json("dataset", "list", "bot", "--limit", "1")] == ["d1"]
