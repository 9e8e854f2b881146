"""The router's and the in-app reporter's requests to the control plane never show up in the
application's traces, with the common HTTP client instrumentations on (urllib3, requests, httpx).

The same instrumentations do trace the application's own requests to the same server: the test
would see a leak.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
import requests
import urllib3
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.instrumentation.urllib3 import URLLib3Instrumentor
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.trace import ReadableSpan

from otel_prompt_canary.demo.simulated_llm import SimulatedLLM
from otel_prompt_canary.loop import SqlLoopStore
from otel_prompt_canary.registry import PromptSpec, SqlRegistry
from otel_prompt_canary.routing import PromptRouter
from otel_prompt_canary.service import ServiceSettings
from tests.instrumentation.support import Telemetry
from tests.support.auth import AUTH, REPORT_TOKEN, TOKEN
from tests.support.loopback import running_server
from tests.support.waiting import eventually

PROMPT = "support-reply"
REFUSAL = "prompt_canary.check.refusal"
ACTOR = AUTH | {"X-Prompt-Canary-Actor": "test"}


@pytest.fixture
def store_backend() -> str:
    """SQLite: the control plane's storage is not what this test is about."""
    return "sqlite"


@pytest.fixture
def http_traced(telemetry: Telemetry) -> Iterator[None]:
    """urllib3, requests and httpx instrumented on the test's tracer provider."""
    instrumentors = [URLLib3Instrumentor(), RequestsInstrumentor(), HTTPXClientInstrumentor()]
    for instrumentor in instrumentors:
        instrumentor.instrument(tracer_provider=telemetry.tracer_provider)
    yield
    for instrumentor in reversed(instrumentors):
        instrumentor.uninstrument()


@pytest.fixture
def plane(registry: SqlRegistry) -> Iterator[tuple[str, SqlRegistry, str]]:
    """A control plane (controller off) with a rollout of version 2 at 50%: (url, registry, rollout id)."""
    for system in ("Answer briefly.", "Answer warmly."):
        registry.push(
            PromptSpec.model_validate({"name": PROMPT, "messages": [{"role": "system", "content": system}]})
        )
    route = registry.start_rollout(PROMPT, 2, ramp=(50.0, 100.0), actor="test", reason="test")
    assert route.rollout_id is not None
    with running_server(
        registry, ServiceSettings(token=TOKEN, report_token=REPORT_TOKEN, controller=False)
    ) as url:
        yield url, registry, route.rollout_id


def reported(registry: SqlRegistry, rollout_id: str) -> int:
    """Calls of the rollout the control plane has counted from the application's reports."""
    snapshot = SqlLoopStore(registry).rollout_snapshot(rollout_id)
    stats = [cohort.get(REFUSAL) for cohort in (snapshot.stable, snapshot.canary)]
    return sum(int(s.n) for s in stats if s is not None)


def to_the(url: str, spans: list[ReadableSpan]) -> list[str]:
    """The names of the spans of requests to the server at ``url``."""
    port = int(url.rsplit(":", 1)[1])
    found = []
    for span in spans:
        a = dict(span.attributes or {})
        urls = [str(a.get(key, "")) for key in ("url.full", "http.url")]
        if a.get("server.port") == port or a.get("net.peer.port") == port or any(url in u for u in urls):
            found.append(span.name)
    return found


def test_the_instrumentations_trace_the_applications_own_requests(
    http_traced: None, plane: tuple[str, SqlRegistry, str], telemetry: Telemetry
) -> None:
    url = plane[0]
    urllib3.PoolManager().request("GET", f"{url}/healthz")
    requests.get(f"{url}/healthz", timeout=10)
    httpx.get(f"{url}/healthz", timeout=10)
    assert len(to_the(url, telemetry.finished())) >= 3


def test_the_control_plane_requests_are_never_traced(
    http_traced: None,
    instrument: Any,
    plane: tuple[str, SqlRegistry, str],
    llm: SimulatedLLM,
    telemetry: Telemetry,
) -> None:
    url, registry, rollout_id = plane
    instrument(registry=url, registry_token=REPORT_TOKEN, report_interval=0.2)
    client = openai.OpenAI(base_url=llm.base_url, api_key="test", max_retries=0)
    with PromptRouter(url, token=REPORT_TOKEN, initial_timeout=10, long_poll_wait=30) as router:
        for i in range(10):
            with router.select(PROMPT, unit_key=f"user-{i}") as chosen:
                client.chat.completions.create(model="sim-gpt-small", messages=chosen.render())
        # The reports went out, and a held long poll was answered (the rollout rolled back).
        eventually(lambda: reported(registry, rollout_id) == 10, what="the calls reported")
        with suppress_instrumentation():  # the test's own request, not the application's
            rolled = httpx.post(
                f"{url}/v1/prompts/{PROMPT}/rollout/rollback", json={"reason": "r"}, headers=ACTOR
            )
        assert rolled.status_code == 200, rolled.text
        eventually(lambda: router.select(PROMPT, "user-1").rollout_id is None, what="the rollback")
    spans = telemetry.finished()
    assert len(telemetry.llm_spans()) == 10
    assert to_the(url, spans) == [], "the control plane's requests were traced"
