"""The control plane's API for datasets and evaluation runs: writes need the token, bad input gets a
precise 4xx and changes nothing, and the diff of two versions carries their runs side by side."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from otel_prompt_canary.evals import (
    Dataset,
    EvalRun,
    EvalSettings,
    SqlEvalStore,
    read_dataset,
    run_evaluation,
)
from otel_prompt_canary.registry import SqlRegistry
from otel_prompt_canary.service import ServiceSettings
from otel_prompt_canary.service.app import create_app
from tests.evals.golden import BILLING_CASES, dataset_yaml
from tests.support.auth import AUTH, TOKEN


@pytest.fixture
def client(prompts: SqlRegistry) -> Iterator[TestClient]:
    with TestClient(create_app(prompts, ServiceSettings(token=TOKEN, controller=False))) as test_client:
        yield test_client


def _spec(text: str = "") -> dict[str, Any]:
    spec = read_dataset(text or dataset_yaml(), source="golden.yaml")
    return spec.model_dump(mode="json", by_alias=True)


def _error(answer: Any, status: int) -> str:
    assert answer.status_code == status, answer.text
    message: str = answer.json()["error"]["message"]
    return message


def test_a_dataset_is_pushed_listed_read_and_diffed(client: TestClient) -> None:
    assert _error(client.post("/v1/prompts/support-bot/datasets", json=_spec()), 401)
    created = client.post(
        "/v1/prompts/support-bot/datasets", json=_spec(), headers=AUTH | {"X-Prompt-Canary-Actor": "ana"}
    )
    assert created.status_code == 201 and created.json()["dataset"]["author"] == "ana"
    again = client.post("/v1/prompts/support-bot/datasets", json=_spec(), headers=AUTH)
    assert (again.status_code, again.json()["created"]) == (200, False)
    changed = _spec(dataset_yaml().replace("[sorry]", "[sorry, oops]"))
    assert client.post("/v1/prompts/support-bot/datasets", json=changed, headers=AUTH).status_code == 201

    [summary] = client.get("/v1/prompts/support-bot/datasets").json()
    assert (summary["latest_version"], summary["cases"]) == (2, 12)
    latest = client.get("/v1/prompts/support-bot/datasets/support-golden/versions/latest").json()
    assert latest["version"] == 2 and latest["cases"][0]["expect"]["must_not_contain"] == ["sorry", "oops"]
    diff = client.get(
        "/v1/prompts/support-bot/datasets/support-golden/diff", params={"from": 1, "to": 2}
    ).json()
    assert len(diff["changed"]) == 12
    assert "no dataset 'nope'" in _error(client.get("/v1/prompts/support-bot/datasets/nope/versions/1"), 404)
    assert "unknown prompt 'nobody'" in _error(client.get("/v1/prompts/nobody/datasets"), 404)


@pytest.mark.parametrize(
    ("change", "status", "message"),
    [
        (
            lambda s: (s["cases"].append(dict(s["cases"][0])), s["lines"].append(90)),
            422,
            "line 90 (case 'billing-1'): the id is already used by line 5 (case 'billing-1')",
        ),
        (
            lambda s: s["cases"][1]["variables"].update(extra=1),
            422,
            "line 12 (case 'billing-2'): unknown variable 'extra' (support-bot@3 uses: question)",
        ),
        (
            lambda s: s["cases"][0]["expect"].update(schema={"type": 1}),
            422,
            "body.cases.0.expect.schema: invalid schema",
        ),
        (lambda s: s.update(cases=[]), 422, "body.cases: Tuple should have at least 1 item"),
        (
            lambda s: s.update(prompt="other"),
            422,
            "the dataset belongs to prompt 'other', pushed under 'support-bot'",
        ),
        (
            lambda s: s["cases"].extend(
                {"id": f"x{i}", "variables": {"question": "q" * 600}} for i in range(900)
            ),
            413,
            "is over the limit of 524288 bytes at case ",
        ),
        (
            lambda s: s["cases"].extend({"id": f"x{i}", "variables": {"question": "q"}} for i in range(989)),
            413,
            "has 1001 cases, more than the limit of 1000: case 1001 ('x988') is the first one over it",
        ),
    ],
)
def test_a_bad_dataset_is_refused_and_nothing_is_stored(
    client: TestClient, store: SqlEvalStore, change: Any, status: int, message: str
) -> None:
    spec = _spec()
    change(spec)
    if status == 413:
        spec["lines"] = None
    answer = client.post("/v1/prompts/support-bot/datasets", json=spec, headers=AUTH)
    assert message in _error(answer, status)
    assert store.list_datasets("support-bot") == []


@pytest.fixture
def candidate_run(prompts: SqlRegistry, golden: Dataset, settings: EvalSettings) -> EvalRun:
    return run_evaluation(prompts.get_version("support-bot", 2), golden, settings, actor="ana")


def _post(client: TestClient, run: dict[str, Any]) -> Any:
    return client.post(f"/v1/prompts/{run['prompt']}/evals", json=run, headers=AUTH)


def test_a_run_is_stored_listed_and_read(client: TestClient, candidate_run: EvalRun) -> None:
    body = candidate_run.model_dump(mode="json")
    assert _error(client.post("/v1/prompts/support-bot/evals", json=body), 401)
    assert _post(client, body).status_code == 201
    assert "is already stored" in _error(_post(client, body), 422)
    [listed] = client.get("/v1/prompts/support-bot/evals", params={"version": 2, "status": "complete"}).json()
    assert (listed["run_id"], listed["passed"], listed["cases"]) == (candidate_run.run_id, 8, 12)
    assert client.get("/v1/prompts/support-bot/evals", params={"version": 1}).json() == []
    read = client.get(f"/v1/prompts/support-bot/evals/{candidate_run.run_id}").json()
    assert EvalRun.model_validate(read) == candidate_run
    assert _error(client.get("/v1/prompts/support-bot/evals/not-a-run"), 422)
    assert "no evaluation run '0123456789abcdef'" in _error(
        client.get("/v1/prompts/support-bot/evals/0123456789abcdef"), 404
    )


def _edited(run: EvalRun, **changes: Any) -> dict[str, Any]:
    body = run.model_dump(mode="json")
    body.update({"run_id": "f" * 16, **changes})
    return body


@pytest.mark.parametrize("store_backend", ["sqlite"])  # checked before the store is written
@pytest.mark.parametrize(
    ("edit", "status", "message"),
    [
        (lambda r: _edited(r, version=9), 404, "prompt 'support-bot' has no version 9"),
        (
            lambda r: _edited(r, dataset_version=2),
            404,
            "dataset 'support-golden' of 'support-bot' has no version 2",
        ),
        (lambda r: _edited(r, dataset_hash="sha256:0"), 422, "not that of support-golden@1"),
        (
            lambda r: _edited(r, cases=r.model_dump(mode="json")["cases"][:11]),
            422,
            "1 cases of support-golden@1 have no result",
        ),
        (
            lambda r: _edited(
                r, cases=[*r.model_dump(mode="json")["cases"][:11], {"case_id": "nope", "status": "passed"}]
            ),
            422,
            "case 'nope' is not a case of support-golden@1",
        ),
        (
            lambda r: _edited(
                r, cases=[{**c, "status": "error"} for c in r.model_dump(mode="json")["cases"]]
            ),
            422,
            "12 ended in error: a run with missing or failed calls is incomplete",
        ),
        (
            lambda r: _edited(r, prompt="other"),
            422,
            "the run is of prompt 'other', posted under 'support-bot'",
        ),
        (
            lambda r: _edited(r, status="passing"),
            422,
            "body.status: Input should be 'complete' or 'incomplete'",
        ),
        (
            lambda r: _edited(r, run_id="../x"),
            422,
            "body.run_id: a run id is 8-64 lowercase hexadecimal digits",
        ),
    ],
)
def test_a_run_that_does_not_fit_is_refused_and_nothing_is_stored(
    client: TestClient, store: SqlEvalStore, candidate_run: EvalRun, edit: Any, status: int, message: str
) -> None:
    body = edit(candidate_run)
    answer = client.post("/v1/prompts/support-bot/evals", json=body, headers=AUTH)
    assert message in _error(answer, status)
    assert store.list_runs("support-bot") == []


def test_an_incomplete_run_may_miss_cases(client: TestClient, candidate_run: EvalRun) -> None:
    body = _edited(
        candidate_run, status="incomplete", cases=candidate_run.model_dump(mode="json")["cases"][:3]
    )
    assert _post(client, body).status_code == 201


def test_the_diff_of_two_versions_shows_their_runs_side_by_side(
    client: TestClient,
    store: SqlEvalStore,
    prompts: SqlRegistry,
    golden: Dataset,
    settings: EvalSettings,
    candidate_run: EvalRun,
) -> None:
    assert client.get("/v1/prompts/support-bot/diff", params={"from": 1, "to": 2}).json()["evaluations"] == []
    store.record_run(run_evaluation(prompts.get_version("support-bot", 1), golden, settings, actor="ana"))
    store.record_run(candidate_run)
    diff = client.get("/v1/prompts/support-bot/diff", params={"from": 1, "to": 2}).json()
    assert diff["blast_radius"] == "system"
    [evaluation] = diff["evaluations"]
    assert (evaluation["baseline"]["version"], evaluation["candidate"]["run_id"]) == (1, candidate_run.run_id)
    assert evaluation["signals"][0]["worse_cases"] == list(BILLING_CASES)
    assert evaluation["paired_cases"] == 12
