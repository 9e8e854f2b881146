"""What the in-app reporting suites share: applications that report, and what the store received.

The applications are the canary test application (``tests/collector/canary_app.py``, run by
:func:`~tests.support.app_process.running_app` under ``opentelemetry-instrument``), configured here
to report to a control plane by themselves: its URL as the instrumentation's registry, the
reporting credential, a 1 s report interval, and the default OTLP exporters sending to a local
receiver. No Collector anywhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from otel_prompt_canary.registry import open_store
from otel_prompt_canary.registry import schema as tables
from tests.instrumentation.otlp_receiver import Received, attributes
from tests.support.app_process import PROMPT, AppProcess, app_environment, running_app
from tests.support.auth import REPORT_TOKEN

__all__ = ["keys_of_calls", "report_sources", "reporting_app", "route_state"]


@contextmanager
def reporting_app(
    tmp_path: Path,
    name: str,
    *,
    llm_url: str,
    control_plane: str,
    otlp_endpoint: str,
    rate: int = 50,
    **settings: str,
) -> Iterator[AppProcess]:
    """One application process named ``name`` (its files in ``tmp_path / name``), reporting to
    ``control_plane`` every second; ``settings`` are more variables of its environment."""
    workdir = tmp_path / name
    workdir.mkdir()
    stop_file = workdir / "stop"
    environment = app_environment(
        llm_url=llm_url,
        control_plane=control_plane,
        stop_file=stop_file,
        rate=rate,
        max_seconds=240,
        OTEL_SERVICE_NAME=name,
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",  # the receiver speaks OTLP/HTTP
        OTEL_EXPORTER_OTLP_ENDPOINT=otlp_endpoint,
        OTEL_BSP_SCHEDULE_DELAY="200",
        OTEL_PROMPT_CANARY_REGISTRY=control_plane,
        OTEL_PROMPT_CANARY_TOKEN=REPORT_TOKEN,
        OTEL_PROMPT_CANARY_REPORT_INTERVAL="1",
        **settings,
    )
    with running_app(environment, workdir, stop_file) as app:
        yield app


def report_sources(store_target: str) -> set[str]:
    """Who sent the reports the control plane's store counted (``<service>@<host>:<pid>``)."""
    with open_store(store_target) as store, store.database.read() as conn:
        return set(conn.execute(select(tables.report_receipts.c.source)).scalars())


def route_state(http: httpx.Client) -> str:
    """The routing state of the test prompt, as the control plane says."""
    state: str = http.get(f"/v1/routes/{PROMPT}").json()["state"]
    return state


def keys_of_calls(backend: Received) -> dict[str, list[str]]:
    """The feedback keys on the LLM call spans the backend received, by cohort."""
    found: dict[str, list[str]] = {"stable": [], "canary": []}
    for span in backend.spans():
        a: dict[str, Any] = attributes(span.attributes)
        if a.get("gen_ai.prompt.name") == PROMPT and "prompt_canary.feedback.key" in a:
            found[a["prompt_canary.cohort"]].append(a["prompt_canary.feedback.key"])
    return found
