"""docs/drift.md stays true: its settings parse, its figures are the detector's, its options and
endpoints exist, its scrape configuration reads the metrics endpoint."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from otel_prompt_canary.analysis.drift import DEFAULT_SHIFTS, DriftConfig
from otel_prompt_canary.registry import open_store
from otel_prompt_canary.service import ServiceSettings
from otel_prompt_canary.service.app import create_app
from otel_prompt_canary.service.drift_notifier import ALERT_NAME, WEBHOOK_TYPE

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "drift.md").read_text(encoding="utf-8")


def test_the_settings_shown_parse_and_the_defaults_are_the_real_ones() -> None:
    (shown,) = re.findall(r"--drift '([^']+)'", DOC)
    assert DriftConfig.parse(shown) == DriftConfig()
    assert "`alpha` (0.01), `horizon` (30d), `window` (1m), `baseline` (1d), `baseline_samples` (1000)" in DOC
    assert f"`ln A` is {DriftConfig().threshold:.2f} with the defaults" in DOC
    shifts = ", ".join(f"{c:g}" for c in DEFAULT_SHIFTS[:-1]) + f" or {DEFAULT_SHIFTS[-1]:g}"
    assert f"a move of {shifts} baseline standard deviations" in DOC


def test_the_serve_options_and_the_endpoints_exist(tmp_path: Path) -> None:
    options = set(re.findall(r"`--(drift[a-z-]*)", DOC))
    fields = {name.replace("_", "-") for name in ServiceSettings.model_fields}
    renamed = {"drift-interval": "drift-interval-seconds"}
    assert options and {renamed.get(o, o) for o in options} <= fields
    with open_store(tmp_path / "registry.db") as registry:
        paths = set(create_app(registry, ServiceSettings(insecure_dev=True)).openapi()["paths"])
    documented = {p.split("?")[0] for p in re.findall(r"`(?:GET|POST) (/v1/[^`]*)`", DOC)}
    assert documented and documented <= paths


def test_the_alert_formats_and_the_scrape_configuration_are_the_real_ones() -> None:
    assert f"`alertname={ALERT_NAME}`" in DOC and f'"type": "{WEBHOOK_TYPE}"' in DOC
    (scrape,) = [b for b in re.findall(r"```yaml\n(.*?)```", DOC, flags=re.S) if "scrape_configs" in b]
    (job,) = yaml.safe_load(scrape)["scrape_configs"]
    assert job["metrics_path"] == "/v1/drift/metrics" and "credentials" in job["authorization"]
