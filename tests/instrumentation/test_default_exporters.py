"""``opentelemetry-instrument`` with its default exporters works where the README installs it.

The defaults are OTLP over gRPC for traces, metrics and logs (the ``opentelemetry-distro``
configurator): without ``opentelemetry-exporter-otlp`` the application starts with no telemetry and
an initialisation error. The README's install line for the instrumentation names the extra that
brings both; this test holds the extra to that and runs an app with the defaults, only the endpoint
pointed at a receiver on loopback.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

from tests.instrumentation.otlp_grpc_receiver import otlp_grpc_receiver
from tests.support.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]

APP = textwrap.dedent(
    """
    from opentelemetry import metrics, trace

    with trace.get_tracer("default-exporters-app").start_as_current_span("app-work"):
        metrics.get_meter("default-exporters-app").create_counter("app.work").add(1)
    print("app done")
    """
)


def test_the_readme_installs_the_otlp_exporter_with_the_instrumentation() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "optional-dependencies"
    ]
    named = re.findall(r"pip install 'otel-prompt-canary\[(\w+)\]'\s+# .*opentelemetry-instrument", readme)
    assert named == ["otlp"], "the README's install line for opentelemetry-instrument names one extra"
    packages = {re.split(r"[<>=\[]", requirement)[0] for requirement in extras["otlp"]}
    assert {"opentelemetry-distro", "opentelemetry-exporter-otlp"} <= packages
    assert "otel-prompt-canary[server,openai,otlp]" in extras["demo"]  # the venv scripts/demo makes


def test_opentelemetry_instrument_with_its_default_exporters(tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    app.write_text(APP)
    instrument = Path(sys.executable).parent / "opentelemetry-instrument"
    with otlp_grpc_receiver() as (endpoint, received):
        # Nothing but the service name and where the default (gRPC) exporters send.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PYTHONPATH"))}
        env |= {"OTEL_SERVICE_NAME": "default-exporters-app", "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint}
        done = subprocess.run(
            [str(instrument), sys.executable, str(app)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-4000:]
        assert "app done" in done.stdout
        for failure in ("Failed to auto initialize", "not found in entry point", "Traceback"):
            assert failure not in done.stderr, done.stderr[-4000:]
        eventually(lambda: received.spans(), what="the application's span at the OTLP/gRPC receiver")
        eventually(
            lambda: received.metric_points("app.work"), what="the application's metric at the receiver"
        )
    assert [span.name for span in received.spans()] == ["app-work"]
