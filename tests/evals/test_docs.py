"""The examples docs/evaluations.md and the README show are valid: the example golden set fits the
example prompt versions, and the JSONL lines of the guide read as cases."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

from otel_prompt_canary.evals import Case, read_dataset
from otel_prompt_canary.evals.datasets import check_variables
from otel_prompt_canary.registry import PromptSpec, PromptVersion
from otel_prompt_canary.yaml_documents import load_yaml

ROOT = Path(__file__).resolve().parents[2]


def test_the_example_golden_set_fits_both_example_versions() -> None:
    text = (ROOT / "examples" / "support-golden.yaml").read_text(encoding="utf-8")
    dataset = read_dataset(text, source="examples/support-golden.yaml")
    assert (dataset.prompt, dataset.name, len(dataset.cases)) == ("support-bot", "support-golden", 5)
    for name in ("support-bot-v1.yaml", "support-bot-v2.yaml"):
        spec = PromptSpec.model_validate(load_yaml((ROOT / "examples" / name).read_text(encoding="utf-8")))
        version = PromptVersion.from_spec(spec, version=1, created_at=datetime.now(UTC))
        check_variables(dataset.cases, version, [dataset.where(i) for i in range(len(dataset.cases))])


def test_the_guides_examples_read_as_cases() -> None:
    guide = (ROOT / "docs" / "evaluations.md").read_text(encoding="utf-8")
    [jsonl] = re.findall(r"```json\n(.*?)```", guide, flags=re.S)
    cases = [Case.model_validate(json.loads(line)) for line in jsonl.splitlines()]
    assert [c.id for c in cases] == ["refund-window", "parcel-late"]
    [reference] = [
        block for block in re.findall(r"```yaml\n(.*?)```", guide, flags=re.S) if "cases:" in block
    ]
    read = read_dataset(reference, source="reference.yaml")
    assert read.cases[0].expect.ignore_checks == ("refusal",) and read.judge.pass_score == 0.6
