from __future__ import annotations

from datetime import UTC, datetime

from otel_prompt_canary.registry import PromptSpec, PromptVersion, diff_versions

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def v(n: int, **fields: object) -> PromptVersion:
    return PromptVersion.from_spec(
        PromptSpec.model_validate({"name": "p", **fields}), version=n, created_at=NOW
    )


SYSTEM = {"role": "system", "content": "You are terse.\nAnswer in JSON."}
USER = {"role": "user", "content": "Question: {{q}}"}


def test_system_prompt_change() -> None:
    a = v(1, messages=[SYSTEM, USER])
    b = v(2, messages=[{"role": "system", "content": "You are chatty.\nAnswer in JSON."}, USER])
    d = diff_versions(a, b)
    assert d.blast_radius == "system"
    assert d.summary == "p@1 -> p@2: system prompt changed (+1 -1 lines) [blast radius: system]"
    assert d.template_diff.splitlines() == [
        "--- p@1 template",
        "+++ p@2 template",
        "@@ -1,5 +1,5 @@",
        " --- message 0 (system) ---",
        "-You are terse.",
        "+You are chatty.",
        " Answer in JSON.",
        " --- message 1 (user) ---",
        " Question: {{q}}",
    ]
    assert d.config_diff == ""


def test_task_prompt_change() -> None:
    d = diff_versions(
        v(1, messages=[SYSTEM, USER]), v(2, messages=[SYSTEM, {"role": "user", "content": "Q: {{q}}"}])
    )
    assert d.blast_radius == "task"
    assert "task prompt changed (+1 -1 lines)" in d.summary


def test_text_template_role_decides_the_radius() -> None:
    d = diff_versions(
        v(1, template="Summarise.", template_role="user"),
        v(2, template="Summarise briefly.", template_role="user"),
    )
    assert d.blast_radius == "task"
    d = diff_versions(v(1, template="Be kind."), v(2, template="Be kind!"))
    assert d.blast_radius == "system"


def test_configuration_only_change() -> None:
    a = v(1, template="t", model="m1", config={"temperature": 0.2})
    b = v(2, template="t", model="m2", config={"temperature": 0.7}, environment={"rag_index_id": "i2"})
    d = diff_versions(a, b)
    assert d.blast_radius == "config"
    assert d.template_diff == ""
    assert "config.temperature: 0.2 -> 0.7" in d.summary
    assert "model: m1 -> m2" in d.summary
    assert "environment.rag_index_id: null -> i2" in d.summary
    assert '-    "temperature": 0.2' in d.config_diff and '+    "temperature": 0.7' in d.config_diff


def test_identical_versions() -> None:
    d = diff_versions(v(1, template="t"), v(2, template="t"))
    assert (d.blast_radius, d.template_diff, d.config_diff) == ("none", "", "")
    assert d.summary.endswith("no changes [blast radius: none]")
