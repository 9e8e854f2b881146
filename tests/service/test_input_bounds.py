"""Bad input at the control plane's edges: every one a precise 4xx, never a 500, never a change.

Each case once caused a 500 or a wrong answer: a webhook timestamp of ``²`` (``str.isdigit``
accepts it, ``int()`` does not), integers beyond the stores' 64 bits in paths and bodies, a lone
surrogate or a NUL in a name, a key, a reason or a report, and ``versions/%D9%A1`` (an
Arabic-Indic one) answering version 1.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from otel_prompt_canary.analysis.stats import ProportionStats
from otel_prompt_canary.loop import SqlLoopStore
from otel_prompt_canary.registry import SqlRegistry
from otel_prompt_canary.service import ServiceSettings
from tests.loop.factories import CHECK
from tests.service.loop_factories import (
    alertmanager_payload,
    loop_settings,
    prometheus_alert,
    proportion,
    report_envelope,
    signed,
)
from tests.service.service_factories import error_of
from tests.support.auth import ALERTMANAGER_TOKEN, AUTH
from tests.support.loopback import running_server

JSON = {"Content-Type": "application/json"}
BIG = 2**63  # one beyond the stores' largest integer


@pytest.fixture
def url(registry: SqlRegistry) -> Iterator[str]:
    settings: ServiceSettings = loop_settings()
    with running_server(registry, settings) as base_url:
        for template in ("Answer {{ q }}.", "Answer {{ q }} in JSON."):
            pushed = httpx.post(
                f"{base_url}/v1/prompts", json={"name": "support", "template": template}, headers=AUTH
            )
            assert pushed.status_code == 201, pushed.text
        yield base_url


def _state(url: str) -> tuple[Any, ...]:
    """Everything a refused request must leave as it was."""
    prompts = httpx.get(f"{url}/v1/prompts").json()
    history = httpx.get(f"{url}/v1/prompts/support/rollout/history").json()
    alerts = httpx.get(f"{url}/v1/alerts").json()
    return prompts, history, alerts


def _refused(answer: httpx.Response, status: int, message: str) -> None:
    assert answer.status_code == status, answer.text
    assert message in error_of(answer)[1], answer.text


@pytest.mark.parametrize("stamp", [b"\xb2", b"\xd9\xa1", b"1\xb2", b"12345678901234"])
def test_a_timestamp_is_ascii_digits(url: str, stamp: bytes) -> None:
    before = _state(url)
    body, headers = signed({"id": "pca_" + "0" * 32})
    headers["webhook-timestamp"] = stamp  # type: ignore[assignment]  # sent as these bytes
    answer = httpx.post(f"{url}/v1/alerts/collector", content=body, headers=headers)
    _refused(answer, 401, "invalid webhook-timestamp")
    grafana = httpx.post(
        f"{url}/v1/alerts/grafana",
        content=b"{}",
        headers={
            **JSON,
            "X-Grafana-Alerting-Signature": "00",
            "X-Grafana-Alerting-Signature-Timestamp": stamp,
        },  # type: ignore[dict-item]
    )
    _refused(grafana, 401, "give Unix seconds (1-12 ASCII digits)")
    assert _state(url) == before


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (
            "/v1/prompts/support/versions/%D9%A1",
            "invalid version '\u0661': give a number from 1 to 2147483647",
        ),
        ("/v1/prompts/support/versions/%C2%B2", "invalid version '²': give a number from 1 to 2147483647"),
        (
            f"/v1/prompts/support/versions/{BIG}",
            f"invalid version '{BIG}': give a number from 1 to 2147483647",
        ),
        ("/v1/prompts/support/versions/2147483648", "give a number from 1 to 2147483647"),
        ("/v1/prompts/support/versions/0", "give a number from 1 to 2147483647"),
        (
            f"/v1/prompts/support/diff?from=1&to={BIG}",
            "query.to: Input should be less than or equal to 2147483647",
        ),
        ("/v1/prompts/support/rollout?rollout_id=%00", "rollout_id: a NUL character (U+0000)"),
        ("/v1/alerts?rollout_id=a%00", "rollout_id: a NUL character (U+0000) at character 1"),
    ],
)
def test_paths_and_queries_are_bounded(url: str, path: str, message: str) -> None:
    _refused(httpx.get(url + path), 422, message)


def test_version_one_is_written_1(url: str) -> None:
    assert httpx.get(f"{url}/v1/prompts/support/versions/1").json()["version"] == 1


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        (
            "/v1/prompts",
            b'{"name": "support", "template": "x", "config": {"k\\ud800": 1}}',
            "body.config: the key",
        ),
        (
            "/v1/prompts",
            b'{"name": "support", "template": "a\\ud800"}',
            "body.template: a lone surrogate (U+D800)",
        ),
        ("/v1/prompts", b'{"name": "support", "template": "a\\u0000"}', "body.template: a NUL character"),
        (
            "/v1/prompts",
            b'{"name": "support", "template": "x", "config": {"t": NaN}}',
            "nan is not a JSON number",
        ),
        ("/v1/prompts/support/rollouts", b'{"version": 9223372036854775808, "reason": "r"}', "body.version"),
        (
            "/v1/prompts/support/rollouts",
            b'{"version": 2147483648, "reason": "r"}',
            "less than or equal to 2147483647",
        ),
        ("/v1/prompts/support/rollouts", b'{"version": 2, "reason": "r\\u0000"}', "body.reason: a NUL"),
        (
            "/v1/prompts/support/rollouts",
            b'{"version": 2, "reason": "r", "policy": {"\\udfff": 1}}',
            "body.policy",
        ),
        (
            "/v1/prompts/support/rollouts",
            b'{"version": 2, "reason": "r", "expected_revision": 9223372036854775808}',
            "body.expected_revision: Input should be less than or equal to 9223372036854775807",
        ),
        (
            "/v1/prompts/support/rollout/pause",
            b'{"reason": "r", "rollout_id": "x\\u0000"}',
            "body.rollout_id: a NUL",
        ),
        (
            "/v1/prompts/support/rollout/pause",
            b'{"reason": "r", "evidence": ["\\ud800"]}',
            "body.evidence: 0: a lone",
        ),
        (
            "/v1/prompts/support/rollout/revert",
            b'{"reason": "r", "to_version": 99999999999999999999}',
            "body.to_version",
        ),
    ],
)
def test_bodies_are_bounded_and_change_nothing(url: str, path: str, body: bytes, message: str) -> None:
    before = _state(url)
    _refused(httpx.post(url + path, content=body, headers={**AUTH, **JSON}), 422, message)
    assert _state(url) == before


def test_alerts_and_reports_with_unstorable_text_change_nothing(url: str) -> None:
    started = httpx.post(
        f"{url}/v1/prompts/support/rollouts", json={"version": 2, "reason": "r"}, headers=AUTH
    )
    rollout_id = started.json()["rollout_id"]
    before = _state(url)
    alert = prometheus_alert(prompt="support", action="rollback")
    alert["annotations"]["summary"] = "broken \x00 output"
    am = {"Authorization": f"Bearer {ALERTMANAGER_TOKEN}"}
    payload = alertmanager_payload(alert) | {"commonAnnotations": {}}
    answer = httpx.post(f"{url}/v1/alerts/alertmanager", json=payload, headers=am)
    _refused(answer, 422, "body.alerts.0.annotations.summary: a NUL character (U+0000) at character 7")
    window = str(math.floor(time.time()))
    reports = [
        report_envelope(rollout_id, prompt="support", source="gw\x00"),
        report_envelope(
            rollout_id, prompt="support", canary={"prompt_canary.check.a\ud800": {window: proportion(1, 1)}}
        ),
        report_envelope(rollout_id, prompt="support", canary={CHECK: {window: proportion(BIG, 1)}}),
        report_envelope(rollout_id, prompt="support")
        | {"canary": {CHECK: {"99999999999999999999": proportion(1, 1)}}},  # a start beyond 64 bits
    ]
    messages = [
        "body.source: a NUL",
        "body.canary: the key",
        "less than or equal to 9223372036854775807",
        "out of range",
    ]
    for envelope, message in zip(reports, messages, strict=True):
        body, headers = signed(envelope)
        _refused(httpx.post(f"{url}/v1/reports", content=body, headers=headers), 422, message)
    assert _state(url) == before


def test_a_total_beyond_the_store_is_refused_whole(url: str, registry: SqlRegistry) -> None:
    started = httpx.post(
        f"{url}/v1/prompts/support/rollouts", json={"version": 2, "reason": "r"}, headers=AUTH
    )
    rollout_id = started.json()["rollout_id"]
    window = str(math.floor(time.time()))
    near = report_envelope(rollout_id, prompt="support", canary={CHECK: {window: proportion(BIG - 2, 0)}})
    body, headers = signed(near)
    assert httpx.post(f"{url}/v1/reports", content=body, headers=headers).json()["outcome"] == "merged"
    over = report_envelope(rollout_id, prompt="support", canary={CHECK: {window: proportion(5, 5)}})
    body, headers = signed(over)
    _refused(
        httpx.post(f"{url}/v1/reports", content=body, headers=headers),
        422,
        "beyond the store's largest integer",
    )
    # Refused whole: neither the window nor the total moved, and the id was not kept.
    store = SqlLoopStore(registry)
    assert store.rollout_snapshot(rollout_id).canary[CHECK] == ProportionStats(n=BIG - 2, successes=0)
    assert store.rollout_reports(rollout_id)[0].canary[CHECK][int(window)].n == BIG - 2
    again = httpx.post(f"{url}/v1/reports", content=body, headers=headers)
    _refused(again, 422, "beyond the store's largest integer")
