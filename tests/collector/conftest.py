"""Fixtures of the Collector suites: the built ``otelcol-promptcanary`` binary, once per session.

The first build on a fresh machine downloads and compiles the Collector and its dependencies
(about 3.5 minutes on 2 cores); later sessions reuse it while nothing it depends on changed.
Without Go the suites are skipped locally and fail in CI.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.collector.support import CollectorError, build_collector
from tests.support.services import unavailable


@pytest.fixture(scope="session")
def collector_binary() -> Path:
    """The ``otelcol-promptcanary`` binary, built by ``collector/build.sh`` (reused when unchanged)."""
    if shutil.which("go") is None:
        unavailable("Go is not installed: the otelcol-promptcanary distribution cannot be built")
    try:
        binary, _ = build_collector()
    except CollectorError as exc:
        pytest.fail(str(exc))
    return binary
