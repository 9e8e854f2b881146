"""``POST /v1/reports``: signed or token-authenticated reports, merged exactly, once per id, durably."""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from otel_prompt_canary.analysis import MeanStats, ProportionStats, Report
from otel_prompt_canary.loop import ReportOrigin, SqlLoopStore
from otel_prompt_canary.registry import SqlRegistry, open_store
from otel_prompt_canary.service import ServiceSettings
from otel_prompt_canary.service.app import create_app
from otel_prompt_canary.service.payloads import ReportEnvelope
from tests.service.loop_factories import (
    SCHEMAS,
    alertmanager_payload,
    collector_alert,
    loop_settings,
    post_collector,
    prometheus_alert,
    proportion,
    report_envelope,
    rollout,
    signed,
)
from tests.service.service_factories import error_of
from tests.support.auth import AUTH, REPORT_AUTH, REPORT_TOKEN

SCHEMA = json.loads((SCHEMAS / "report.schema.json").read_text())
CHECK = "prompt_canary.check.json_valid"
SCORE = "prompt_canary.score.judge"


@pytest.fixture
def settings() -> ServiceSettings:
    return loop_settings(report_token=REPORT_TOKEN)


def post_report(client: TestClient, envelope: dict[str, Any], **kwargs: Any) -> Any:
    body, headers = signed(envelope, **kwargs)
    return client.post("/v1/reports", content=body, headers=headers)


def totals(store: SqlRegistry, rollout_id: str) -> dict[str, Any]:
    snapshot = [r.snapshot() for r in SqlLoopStore(store).rollout_reports(rollout_id)]
    assert len(snapshot) <= 1
    return snapshot[0].model_dump(mode="json") if snapshot else {}


def test_a_signed_report_is_merged_once(client: TestClient, registry: SqlRegistry) -> None:
    rid = rollout(client)["rollout_id"]
    envelope = report_envelope(
        rid,
        window_seconds=60,
        stable={CHECK: {"1795752000": proportion(412, 409), "1795752060": proportion(37, 37)}},
        canary={
            CHECK: {"1795752000": proportion(21, 18)},
            SCORE: {"1795752000": {"kind": "mean", "n": 3, "sum": "2350000", "sum_sq": "1852500000000"}},
        },
    )
    jsonschema.validate(envelope, SCHEMA)
    response = post_report(client, envelope)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "report_id": envelope["id"],
        "rollout_id": rid,
        "outcome": "merged",
        "reason": f"added 473 samples to rollout {rid}",
        "samples": 473,
        "counted_origin": "collector",
    }
    assert totals(registry, rid) == {
        "stable": {CHECK: {"kind": "proportion", "n": 449, "successes": 446}},
        "canary": {
            CHECK: {"kind": "proportion", "n": 21, "successes": 18},
            SCORE: {"kind": "mean", "n": 3, "sum": "2350000", "sum_sq": "1852500000000"},
        },
    }
    again = post_report(client, envelope)
    assert again.json()["outcome"] == "duplicate"
    assert totals(registry, rid)["stable"][CHECK]["n"] == 449


def test_apps_send_reports_with_the_write_token(client: TestClient, registry: SqlRegistry) -> None:
    rid = rollout(client)["rollout_id"]
    envelope = report_envelope(rid, stable={CHECK: {"10": proportion(5, 5)}})
    response = client.post("/v1/reports", json=envelope, headers=AUTH)
    assert response.json()["outcome"] == "merged"
    assert client.post("/v1/reports", json=envelope).status_code == 401


@pytest.mark.parametrize(("owner", "other"), [("collector", "application"), ("application", "collector")])
def test_a_rollout_counts_the_reports_of_the_first_origin_only(
    client: TestClient, registry: SqlRegistry, owner: str, other: str
) -> None:
    rid = rollout(client)["rollout_id"]
    first = report_envelope(rid, stable={CHECK: {"10": proportion(5, 5)}}, origin=owner, source="first")
    assert post_report(client, first).json()["outcome"] == "merged"
    before = totals(registry, rid)
    second = report_envelope(rid, stable={CHECK: {"10": proportion(9, 1)}}, origin=other, source="second")
    response = client.post("/v1/reports", json=second, headers=REPORT_AUTH)  # authenticated, then ignored
    assert response.status_code == 200, response.text
    receipt = response.json()
    assert (receipt["outcome"], receipt["samples"], receipt["counted_origin"]) == ("ignored", 0, owner)
    reason = receipt["reason"]
    assert reason.startswith(f"not counted: rollout {rid} counts the reports of origin '{owner}' (the first ")
    assert f"this {'in-app' if other == 'application' else 'Collector'} report (origin '{other}')" in reason
    assert "counting both would count every call twice" in reason
    fix = {
        "application": "turn in-app reporting off in the applications (OTEL_PROMPT_CANARY_REPORT_INTERVAL=0)",
        "collector": "stop posting the Collector processor's reports to this control plane",
    }
    assert (
        f"Report each call by one path: {fix[other]}; or, to count the '{other}' reports instead, " in reason
    )
    assert totals(registry, rid) == before
    # Retried, it is ignored again, and counted once among the ignored.
    assert client.post("/v1/reports", json=second, headers=REPORT_AUTH).json()["outcome"] == "ignored"

    shown = client.get("/v1/prompts/greeter/rollout/verdict").json()["report_origin"]
    assert shown["since"] and shown["last_ignored_at"]
    assert {k: v for k, v in shown.items() if k not in ("since", "last_ignored_at")} == {
        "origin": owner,
        "first_source": "first",
        "ignored_origin": other,
        "ignored_reports": 1,
        "ignored_samples": 9,
        "last_ignored_source": "second",
    }


def test_a_report_without_an_origin_counts_and_claims_nothing(
    client: TestClient, registry: SqlRegistry
) -> None:
    rid = rollout(client)["rollout_id"]
    assert client.get("/v1/prompts/greeter/rollout/verdict").json()["report_origin"] is None
    older = report_envelope(rid, stable={CHECK: {"10": proportion(5, 5)}}, origin=None)
    assert "origin" not in older
    jsonschema.validate(older, SCHEMA)  # optional: senders older than the field stay valid
    receipt = post_report(client, older).json()
    assert (receipt["outcome"], receipt["counted_origin"]) == ("merged", None)
    assert client.get("/v1/prompts/greeter/rollout/verdict").json()["report_origin"] is None
    for origin in ("application", "collector"):  # the first origin to report still owns it
        later = report_envelope(rid, stable={CHECK: {"11": proportion(1, 1)}}, origin=origin)
        assert post_report(client, later).json()["counted_origin"] == "application"
    assert post_report(client, report_envelope(rid, origin=None)).json()["outcome"] == "merged"


@pytest.mark.parametrize(
    ("origin", "message"),
    [
        ("agent", "body.origin: Input should be 'application' or 'collector'"),
        ("Collector", "body.origin: Input should be 'application' or 'collector'"),
        (1, "body.origin: Input should be 'application' or 'collector'"),
        (None, "body.origin: must be 'application' or 'collector'; leave the field out when unknown"),
    ],
)
def test_a_malformed_origin_is_refused_and_changes_nothing(
    client: TestClient, registry: SqlRegistry, origin: object, message: str
) -> None:
    rid = rollout(client)["rollout_id"]
    envelope = report_envelope(rid, stable={CHECK: {"10": proportion(5, 5)}}) | {"origin": origin}
    assert not jsonschema.Draft202012Validator(SCHEMA).is_valid(envelope)
    response = post_report(client, envelope)
    assert response.status_code == 422, response.text
    assert error_of(response) == ("InvalidInputError", f"invalid report: {message}")
    assert totals(registry, rid) == {}
    assert SqlLoopStore(registry).report_origin(rid) is None


def test_the_schema_and_the_model_know_the_same_origins() -> None:
    assert "origin" not in SCHEMA["required"]
    assert SCHEMA["properties"]["origin"]["enum"] == [o.value for o in ReportOrigin]
    assert ReportEnvelope.model_fields["origin"].default is None


def test_unknown_rollouts_prompts_and_mismatches(client: TestClient, registry: SqlRegistry) -> None:
    rid = rollout(client)["rollout_id"]
    rollout(client, "other")
    ignored = post_report(client, report_envelope("ro-unknown", stable={CHECK: {"10": proportion(5, 5)}}))
    assert ignored.status_code == 200
    assert ignored.json()["outcome"] == "ignored"
    unknown = post_report(client, report_envelope(rid, prompt="nope"))
    assert unknown.status_code == 404
    wrong = post_report(client, report_envelope(rid, prompt="other"))
    assert wrong.status_code == 422
    assert f"rollout {rid} is a rollout of 'greeter', not of 'other'" in error_of(wrong)[1]
    assert SqlLoopStore(registry).rollout_reports(rid) == []


@pytest.mark.parametrize(
    ("stable", "message"),
    [
        ({CHECK: {"10": {"kind": "mean", "n": 1, "sum": "1", "sum_sq": "1"}}}, "holds mean statistics"),
        ({SCORE: {"10": proportion(3, 1)}}, "holds proportion statistics"),
        ({CHECK: {"10": proportion(3, 4)}}, "successes (4) cannot exceed n (3)"),
        ({CHECK: {"7": proportion(3, 1)}}, "is not a multiple of window_seconds 5"),
        ({SCORE: {"10": {"kind": "mean", "n": 2, "sum": "10", "sum_sq": "1"}}}, "inconsistent moments"),
        ({CHECK: {"10": {"kind": "proportion", "n": 1}}}, "successes: Field required"),
        ({CHECK: {"1e3": proportion(1, 1)}}, "String should match pattern"),
        (
            {CHECK: {"10": {"kind": "mean", "n": 1, "sum": 1, "sum_sq": "1"}}},
            "sum: Input should be a valid string",
        ),
    ],
)
def test_inconsistent_reports_are_refused_whole(
    client: TestClient, registry: SqlRegistry, stable: dict[str, Any], message: str
) -> None:
    rid = rollout(client)["rollout_id"]
    envelope = report_envelope(rid, window_seconds=5, stable=stable, canary={CHECK: {"10": proportion(2, 2)}})
    response = post_report(client, envelope)
    assert response.status_code == 422, response.text
    assert message in error_of(response)[1]
    assert SqlLoopStore(registry).rollout_reports(rid) == []


def test_a_kind_conflict_with_earlier_reports_is_refused(client: TestClient, registry: SqlRegistry) -> None:
    rid = rollout(client)["rollout_id"]
    attribute = "gen_ai.custom.metric"
    assert (
        post_report(client, report_envelope(rid, stable={attribute: {"10": proportion(2, 1)}})).status_code
        == 200
    )
    before = totals(registry, rid)
    clash = report_envelope(
        rid,
        stable={
            attribute: {"11": {"kind": "mean", "n": 1, "sum": "5", "sum_sq": "25"}},
            CHECK: {"11": proportion(1, 1)},
        },
    )
    response = post_report(client, clash)
    assert response.status_code == 422
    assert "holds proportion statistics; cannot add mean statistics" in error_of(response)[1]
    assert totals(registry, rid) == before
    # The refused report's id was not consumed: a corrected report with the same id is counted.
    clash["stable"].pop(attribute)
    assert post_report(client, clash).json()["outcome"] == "merged"


def test_the_schema_example_is_understood() -> None:
    for example in SCHEMA["examples"]:
        envelope = ReportEnvelope.model_validate(example)
        assert envelope.origin is ReportOrigin.COLLECTOR
        report = envelope.report()
        assert report.rollout_id == example["rollout_id"]
        assert report.stable["prompt_canary.check.format_valid"][1795752000] == ProportionStats(
            n=412, successes=409
        )


@given(st.data())
@hsettings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_merging_is_exact_whatever_the_split_and_order(data: st.DataObject) -> None:
    # Samples split into reports at random and added in random order give exactly the totals of
    # one report of everything (integer sums, associative).
    samples = data.draw(
        st.lists(
            st.tuples(
                st.sampled_from(["stable", "canary"]),
                st.sampled_from([0, 60, 120]),
                st.one_of(st.booleans(), st.floats(-1e6, 1e6, allow_nan=False)),
            ),
            max_size=60,
        )
    )
    whole = Report(rollout_id="r", window_seconds=60)
    parts: list[Report] = []
    for cohort, start, value in samples:
        attribute = CHECK if isinstance(value, bool) else SCORE
        stats = ProportionStats.of([value]) if isinstance(value, bool) else MeanStats.of([value])
        whole = whole.record(cohort, attribute, stats, at=start)  # type: ignore[arg-type]
        parts.append(Report(rollout_id="r", window_seconds=60).record(cohort, attribute, stats, at=start))  # type: ignore[arg-type]
    random.Random(data.draw(st.integers(0, 1000))).shuffle(parts)
    with open_store("sqlite://") as store:
        _two(store)
        store.start_rollout("p", 2, actor="t")
        rid = store.get_route("p").rollout_id
        assert rid is not None
        for part in parts:
            SqlLoopStore(store).record_report(part.model_copy(update={"rollout_id": rid}), source="t")
        merged = SqlLoopStore(store).rollout_reports(rid)
        expected = whole.model_copy(update={"rollout_id": rid})
        if not samples:
            assert merged == []
        else:
            assert merged == [expected]


def _two(store: SqlRegistry) -> None:
    from otel_prompt_canary.registry import PromptSpec

    store.push(PromptSpec(name="p", template="one"))
    store.push(PromptSpec(name="p", template="two"))


def test_restart_keeps_aggregates_and_dedup_ids(tmp_path: Path) -> None:
    path = tmp_path / "registry.db"
    settings = loop_settings()
    with open_store(path) as store, TestClient(create_app(store, settings)) as c:
        rid = rollout(c)["rollout_id"]
        report = report_envelope(rid, stable={CHECK: {"10": proportion(100, 99)}})
        assert post_report(c, report).json()["outcome"] == "merged"
        alert = collector_alert(rollout_id=rid, action="pause")
        assert post_collector(c, alert).json()["decisions"][0]["outcome"] == "applied"
        am = prometheus_alert(action="alert")
        assert (
            c.post("/v1/alerts/alertmanager", json=alertmanager_payload(am), headers=AUTH).status_code == 200
        )
        before = SqlLoopStore(store).rollout_reports(rid)
    with open_store(path) as store, TestClient(create_app(store, settings)) as c:
        assert SqlLoopStore(store).rollout_reports(rid) == before
        assert post_report(c, report).json()["outcome"] == "duplicate"
        assert post_collector(c, alert).json()["decisions"][0]["outcome"] == "duplicate"
        again = c.post("/v1/alerts/alertmanager", json=alertmanager_payload(am), headers=AUTH)
        assert again.json()["decisions"][0]["outcome"] == "duplicate"
        assert SqlLoopStore(store).rollout_reports(rid) == before
        assert store.get_route("greeter").state == "paused"


# -- fuzzing ----------------------------------------------------------------------------------------

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 300) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


@pytest.fixture
def fuzz_client(client: TestClient, registry: SqlRegistry) -> tuple[TestClient, SqlRegistry, str]:
    return client, registry, rollout(client)["rollout_id"]


def test_fuzzed_reports(fuzz_client: tuple[TestClient, SqlRegistry, str]) -> None:
    client, store, rid = fuzz_client
    base = report_envelope(
        rid, stable={CHECK: {"10": proportion(5, 4)}}, canary={CHECK: {"10": proportion(5, 5)}}
    )

    @given(st.data())
    @hsettings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
    def check(data: st.DataObject) -> None:
        payload = copy.deepcopy(base)
        for _ in range(data.draw(st.integers(1, 3))):
            where = data.draw(st.sampled_from(["top", "stats", "window", "drop"]))
            if where == "top":
                payload[data.draw(st.sampled_from([*sorted(SCHEMA["properties"]), "extra"]))] = data.draw(
                    _JSON
                )
            elif where == "stats" and isinstance(payload.get("stable"), dict):
                payload["stable"][CHECK] = {"10": data.draw(_JSON)}
            elif where == "window" and isinstance(payload.get("canary"), dict):
                payload["canary"][CHECK] = {data.draw(st.text(max_size=5)): proportion(1, 1)}
            elif payload:
                payload.pop(data.draw(st.sampled_from(sorted(payload))))
        payload["id"] = base["id"] if data.draw(st.booleans()) else payload.get("id")
        before = SqlLoopStore(store).rollout_reports(rid)
        valid = jsonschema.Draft202012Validator(SCHEMA).is_valid(payload)
        # The id doubles as the webhook-id header when it can be one (an empty header is no header).
        sent_id = payload.get("id")
        header_safe = isinstance(sent_id, str) and sent_id.isascii() and sent_id.isprintable() and sent_id
        message_id = sent_id if header_safe else "msg_1"
        response = post_report(client, payload, message_id=message_id)
        assert response.status_code in (200, 404, 422), response.text
        if not valid:
            assert response.status_code == 422, (payload, response.text)
        if response.status_code != 200 or response.json()["outcome"] != "merged":
            assert SqlLoopStore(store).rollout_reports(rid) == before

    check()


def test_a_null_versions_field_is_malformed_even_for_a_counted_report(
    fuzz_client: tuple[TestClient, SqlRegistry, str],
) -> None:
    client, store, rid = fuzz_client
    report = report_envelope(
        rid, stable={CHECK: {"10": proportion(5, 4)}}, canary={CHECK: {"10": proportion(5, 5)}}
    )
    assert post_report(client, report).json()["outcome"] == "merged"
    before = SqlLoopStore(store).rollout_reports(rid)
    response = post_report(client, {**report, "versions": None})
    assert response.status_code == 422
    assert "versions" in response.text
    assert SqlLoopStore(store).rollout_reports(rid) == before
