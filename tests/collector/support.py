"""The built ``otelcol-promptcanary`` distribution, run on loopback for the end-to-end suites.

:func:`build_collector` runs ``collector/build.sh`` (which reuses its stamp when nothing changed);
:func:`running_collector` starts the binary with a generated configuration: OTLP gRPC and HTTP on
ephemeral ports of 127.0.0.1, the ``promptcanary`` processor pointed at a control plane with the
webhook secret (passed in the environment, never written to the file), short evaluation, report
and policy refresh intervals, and the Collector's own metrics on a Prometheus endpoint. Stopping
it sends SIGTERM and waits for the process.
"""

from __future__ import annotations

import copy
import os
import re
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.support.loopback import free_port
from tests.support.waiting import eventually

REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "collector" / "build.sh"
SECRET_VARIABLE = "PROMPT_CANARY_WEBHOOK_SECRET"
READY_LINE = "Everything is ready"

_SAMPLE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$")
_LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')


class CollectorError(RuntimeError):
    """The distribution could not be built or started; the message holds the log's tail."""


def build_collector(timeout: float = 1000.0) -> tuple[Path, float]:
    """Build (or reuse) the distribution; returns the binary and the seconds the build took."""
    began = time.monotonic()
    try:
        done = subprocess.run(
            [str(BUILD_SCRIPT)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise CollectorError(f"collector/build.sh did not finish in {timeout:.0f} s") from exc
    if done.returncode != 0:
        raise CollectorError(f"collector/build.sh failed ({done.returncode}):\n{done.stderr[-6000:]}")
    binary = Path(done.stdout.strip().splitlines()[-1])
    if not os.access(binary, os.X_OK):
        raise CollectorError(f"collector/build.sh printed {binary}, which is not an executable")
    return binary, time.monotonic() - began


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def processor_settings(control_plane_url: str, **overrides: Any) -> dict[str, Any]:
    """The ``promptcanary`` settings of the suites: short intervals, quick retries."""
    base: dict[str, Any] = {
        "control_plane": {"endpoint": control_plane_url, "timeout": "5s"},
        "webhook": {
            "secret": "${env:" + SECRET_VARIABLE + "}",
            "retry_on_failure": {"initial_interval": "100ms", "max_interval": "1s"},
        },
        "policy": {"source": "control_plane", "refresh_interval": "500ms"},
        "report_interval": "1s",
        "report_window": "1s",
        "evaluation_interval": "250ms",
        "source": "e2e-gateway",
    }
    return _merge(base, overrides)


def collector_config(
    *,
    grpc_port: int,
    http_port: int,
    metrics_port: int,
    promptcanary: Mapping[str, Any] | None,
    forward_to: str | None = None,
) -> dict[str, Any]:
    """A gateway configuration: OTLP in, ``promptcanary`` (when given) and ``batch``, then out.

    Traces and logs pass through ``promptcanary`` (one processor: spans and late evaluation
    results count into the same rollouts). Traces, metrics and logs go to the ``debug`` exporter
    (basic verbosity, sampled), and traces and logs also to ``forward_to`` (an OTLP/HTTP base
    URL) when given, as they would go to an APM backend.
    """
    processors: dict[str, Any] = {"batch": {"timeout": "200ms"}}
    chain = ["batch"]
    if promptcanary is not None:
        processors["promptcanary"] = dict(promptcanary)
        chain = ["promptcanary", "batch"]
    exporters: dict[str, Any] = {
        "debug": {"verbosity": "basic", "sampling_initial": 1, "sampling_thereafter": 100}
    }
    forwarding = ["debug"]
    if forward_to is not None:
        exporters["otlp_http/backend"] = {"endpoint": forward_to, "compression": "none"}
        forwarding.append("otlp_http/backend")
    return {
        "receivers": {
            "otlp": {
                "protocols": {
                    "grpc": {"endpoint": f"127.0.0.1:{grpc_port}"},
                    "http": {"endpoint": f"127.0.0.1:{http_port}"},
                }
            }
        },
        "processors": processors,
        "exporters": exporters,
        "service": {
            "telemetry": {
                "logs": {"level": "info"},
                "metrics": {
                    "level": "normal",
                    "readers": [
                        {"pull": {"exporter": {"prometheus": {"host": "127.0.0.1", "port": metrics_port}}}}
                    ],
                },
            },
            "pipelines": {
                "traces": {"receivers": ["otlp"], "processors": chain, "exporters": forwarding},
                "metrics": {"receivers": ["otlp"], "processors": ["batch"], "exporters": ["debug"]},
                "logs": {"receivers": ["otlp"], "processors": chain, "exporters": forwarding},
            },
        },
    }


def parse_prometheus(text: str) -> list[tuple[str, dict[str, str], float]]:
    """(name, labels, value) of every sample of a Prometheus text exposition."""
    samples = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match is None:
            continue
        name, labels, value = match.groups()
        samples.append((name, dict(_LABEL.findall(labels or "")), float(value)))
    return samples


@dataclass
class Collector:
    """A running Collector: its endpoints, its log and its own metrics."""

    process: subprocess.Popen[bytes]
    grpc_endpoint: str
    http_endpoint: str
    metrics_url: str
    config_path: Path
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_tail(self, characters: int = 6000) -> str:
        return self.log()[-characters:]

    def metric(self, name: str, **labels: str) -> float:
        """The sum of the samples of one of the Collector's own metrics whose labels match."""
        with urllib.request.urlopen(self.metrics_url, timeout=10) as answer:
            text = answer.read().decode()
        return sum(
            value
            for sample, found, value in parse_prometheus(text)
            if sample == name and all(found.get(k) == v for k, v in labels.items())
        )

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, then wait; returns the exit status (killed after ``timeout``: CollectorError)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
            raise CollectorError(
                f"the Collector did not stop within {timeout:.0f} s of SIGTERM:\n{self.log_tail()}"
            ) from None


@contextmanager
def running_collector(
    binary: Path,
    workdir: Path,
    *,
    control_plane_url: str,
    secret: str,
    promptcanary: Mapping[str, Any] | None = None,
    with_processor: bool = True,
    forward_to: str | None = None,
    startup_timeout: float = 30.0,
) -> Iterator[Collector]:
    """Run the distribution on 127.0.0.1 for the ``with`` block, then stop it with SIGTERM.

    ``promptcanary`` overrides :func:`processor_settings` (nested keys merge). The block may stop
    the Collector itself (:meth:`Collector.stop`) to check its exit status.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    grpc_port, http_port, metrics_port = free_port(), free_port(), free_port()
    settings = processor_settings(control_plane_url, **(promptcanary or {})) if with_processor else None
    config = collector_config(
        grpc_port=grpc_port,
        http_port=http_port,
        metrics_port=metrics_port,
        promptcanary=settings,
        forward_to=forward_to,
    )
    config_path = workdir / "collector.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    log_path = workdir / "collector.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env[SECRET_VARIABLE] = secret
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(binary), "--config", str(config_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=workdir,
        )
    collector = Collector(
        process=process,
        grpc_endpoint=f"127.0.0.1:{grpc_port}",
        http_endpoint=f"http://127.0.0.1:{http_port}",
        metrics_url=f"http://127.0.0.1:{metrics_port}/metrics",
        config_path=config_path,
        log_path=log_path,
    )

    def still_running() -> None:
        assert process.poll() is None, f"the Collector exited ({process.returncode})"

    try:
        eventually(
            lambda: READY_LINE in collector.log(),
            timeout=startup_timeout,
            what="the Collector's start",
            between=still_running,
            diagnostics=collector.log_tail,
        )
        yield collector
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
