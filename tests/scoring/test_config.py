from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import pytest

from otel_prompt_canary.errors import InvalidInputError
from otel_prompt_canary.scoring import (
    JsonValidCheck,
    LateEvaluation,
    LLMJudge,
    LLMResponse,
    RefusalCheck,
    SafetyCheck,
    Sampler,
    ScoreOutcome,
    ScoringConfig,
    ScoringPlan,
    ScoringSettings,
    ScoringWorker,
    ToolCall,
    build_scoring,
    load_scoring_config,
    load_scoring_settings,
)
from tests.scoring.fakes import FakeOpenAI, chat_reply, moderation_reply

DOCS = Path(__file__).resolve().parents[2] / "docs" / "checks.md"


def names(plan: ScoringPlan) -> tuple[list[str], list[str], list[str]]:
    return (
        [c.name for c in plan.checks],
        [s.name for s in plan.scorers],
        [e.evaluator.name for e in plan.late],
    )


def test_defaults() -> None:
    plan = build_scoring()
    assert names(plan) == (
        ["json_valid", "max_output_tokens", "truncation", "refusal"],
        [],
        [],
    )
    assert plan.worker is None
    with_tokens = build_scoring(load_scoring_config("output_tokens: {enabled: true}"))
    assert names(with_tokens)[1] == ["output_tokens"]
    assert build_scoring(ScoringConfig()).checks[0].check(LLMResponse(output_text="prose")) is None
    assert load_scoring_config("") == ScoringConfig()
    assert load_scoring_config({}) == ScoringConfig()


def test_default_plan_results() -> None:
    plan = build_scoring()
    refused = plan.run(LLMResponse(output_text="I'm sorry, but I can't help with that.", output_tokens=12))
    assert refused.span_attributes() == {
        "prompt_canary.check.max_output_tokens": True,
        "prompt_canary.check.refusal": False,
    }
    json_answer = plan.run(
        LLMResponse(
            output_text='{"a": 1',
            response_format="json_object",
            finish_reasons=("length",),
            output_tokens=5000,
        )
    )
    assert json_answer.span_attributes() == {
        "prompt_canary.check.json_valid": False,
        "prompt_canary.check.max_output_tokens": False,
        "prompt_canary.check.truncation": False,
        "prompt_canary.check.refusal": True,
    }


def test_json_valid_modes() -> None:
    always = build_scoring(load_scoring_config("json_valid: {enabled: true, allow_fence: true}"))
    check = always.checks[0]
    assert isinstance(check, JsonValidCheck)
    assert check.check(LLMResponse(output_text="```json\n{}\n```")) is True
    off = build_scoring(load_scoring_config("json_valid: {enabled: false}"))
    assert "json_valid" not in names(off)[0]


YAML = """
json_schema:
  schema:
    type: object
    required: [answer]
regex:
  - {name: no_placeholder, pattern: "\\\\{\\\\{", must_match: false}
  - {name: cites_order, pattern: "order #\\\\d+", ignore_case: true}
max_output_tokens: {budget: 300}
refusal: {languages: [en, de], extra_phrases: ["outside my remit"], scan_chars: 200}
escalation: {enabled: true, tool_names: [transfer_to_human], phrases: ["a human will call you"]}
output_tokens: {enabled: false}
"""


def test_yaml_configuration_builds_every_check() -> None:
    plan = build_scoring(load_scoring_config(YAML))
    assert names(plan) == (
        [
            "json_valid",
            "json_schema",
            "no_placeholder",
            "cites_order",
            "max_output_tokens",
            "truncation",
            "refusal",
            "escalation",
        ],
        [],
        [],
    )
    result = plan.run(
        LLMResponse(
            output_text='{"answer": "ORDER #12 left; a human will call you"}',
            tool_calls=(ToolCall("lookup"),),
            output_tokens=400,
        )
    )
    assert result.span_attributes() == {
        "prompt_canary.check.json_schema": True,
        "prompt_canary.check.no_placeholder": True,
        "prompt_canary.check.cites_order": True,
        "prompt_canary.check.max_output_tokens": False,
        "prompt_canary.check.refusal": True,
        "prompt_canary.check.escalation": False,
    }


def test_configuration_loads_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "scoring.yaml"
    path.write_text(YAML)
    assert load_scoring_config(path) == load_scoring_config(YAML)
    with pytest.raises(InvalidInputError, match=r"pass a pathlib\.Path"):
        load_scoring_config("scoring.yaml")
    with pytest.raises(InvalidInputError, match="cannot read"):
        load_scoring_config(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("refusal: {name: Refusal}", "refusal.name: invalid check or scorer name"),
        ("regex: [{name: a, pattern: '('}]", "regex.0.pattern: invalid regular"),
        ("regex: [{pattern: x}]", "regex.0.name: Field required"),
        ("regex: [{name: refusal, pattern: x}]", "two checks are named refusal"),
        ("truncation: {name: refusal}", "two checks are named refusal"),
        ("judge: {base_url: 'http://x', model: m, sample_rate: 1.5}", "judge.sample_rate"),
        ("judge: {base_url: 'x', model: m}", "base_url must start with http"),
        ("judge: {base_url: 'http://x'}", "judge.model: Field required"),
        ("judge: {base_url: 'http://x', model: m, api_key: k, api_key_env: K}", "not both"),
        ("refusal: {languages: [xx]}", "unknown language"),
        ("max_output_tokens: {budget: 0}", "max_output_tokens.budget"),
        ("background: {queue_size: 0}", "background.queue_size"),
        ("escalation: {enabled: true, tool_names: [], phrases: []}", "at least one tool name"),
        ("refusals: {}", "refusals: unknown field"),
        ("json_schema: {}", "json_schema.schema: Field required"),
        ("- a list", "must be a mapping"),
        ("a: [unclosed", "not valid YAML"),
    ],
)
def test_invalid_configurations_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=re.escape(message)):
        load_scoring_config(text)


def test_a_yaml_bomb_is_refused_before_it_expands() -> None:
    # Nine aliases per level, seven levels: 47 values written, about 11 million once expanded.
    levels = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for name, previous in zip("bcdefg", "abcdef", strict=True):
        levels.append(f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]")
    with pytest.raises(InvalidInputError, match="scoring configuration refused: its aliases expand it"):
        load_scoring_config("\n".join(levels))


def test_an_invalid_schema_fails_at_build() -> None:
    config = load_scoring_config("json_schema: {schema: {type: objekt}}")
    with pytest.raises(InvalidInputError, match="invalid schema at type"):
        build_scoring(config)


def test_judge_needs_a_way_to_deliver_results() -> None:
    config = load_scoring_config("judge: {base_url: 'http://127.0.0.1:9/v1', model: m}")
    with pytest.raises(InvalidInputError, match="on_late_result"):
        build_scoring(config)


def test_api_key_env_is_resolved_at_build() -> None:
    config = load_scoring_config(
        "judge: {base_url: 'http://127.0.0.1:9/v1', model: m, api_key_env: JUDGE_KEY}"
    )
    with pytest.raises(InvalidInputError, match="JUDGE_KEY"):
        build_scoring(config, on_late_result=lambda r, o: None, environ={})
    plan = build_scoring(config, on_late_result=lambda r, o: None, environ={"JUDGE_KEY": "sk-1"})
    plan.close(1)


def test_safety_sources() -> None:
    enabled = load_scoring_config("safety: {enabled: true}")
    with pytest.raises(InvalidInputError, match="no classifier"):
        build_scoring(enabled)
    with pytest.raises(InvalidInputError, match=r"safety\.enabled is false"):
        build_scoring(classifier=lambda r: False)
    plan = build_scoring(enabled, classifier=lambda r: "bad" in r.output_text)
    assert isinstance(plan.checks[-1], SafetyCheck)
    assert plan.run(LLMResponse(output_text="bad")).span_attributes()["prompt_canary.check.safety"] is False
    both = load_scoring_config("safety: {enabled: true, moderation: {base_url: 'http://x'}}")
    with pytest.raises(InvalidInputError, match="not both"):
        build_scoring(both, classifier=lambda r: False, on_late_result=lambda r, o: None)


def test_extra_checks_and_name_clashes() -> None:
    class Polite:
        name = "polite"

        def check(self, response: LLMResponse) -> bool:
            return "please" in response.output_text

    plan = build_scoring(extra_checks=[Polite()])
    assert names(plan)[0][-1] == "polite"
    with pytest.raises(InvalidInputError, match="two checks are named refusal"):
        build_scoring(extra_checks=[RefusalCheck()])


def test_settings_merge_prompt_sections_over_the_default() -> None:
    settings = load_scoring_settings(
        """
default:
  max_output_tokens: {budget: 1000}
  refusal: {languages: [en]}
prompts:
  support-bot:
    max_output_tokens: {budget: 200}
    escalation: {enabled: true}
  extractor:
    json_valid: {enabled: true}
    refusal: {enabled: false}
"""
    )
    bot = settings.for_prompt("support-bot")
    assert bot.max_output_tokens.budget == 200
    assert bot.escalation.enabled
    assert bot.refusal.languages == ["en"]  # kept from the default
    extractor = settings.for_prompt("extractor")
    assert extractor.json_valid.enabled is True
    assert not extractor.refusal.enabled
    assert extractor.max_output_tokens.budget == 1000
    assert settings.for_prompt("unknown") == settings.default
    assert settings.for_prompt(None) == settings.default
    assert ScoringSettings() == load_scoring_settings("")


def test_settings_refuse_a_merge_that_clashes() -> None:
    with pytest.raises(InvalidInputError, match=r"support-bot.*two checks are named x"):
        load_scoring_settings(
            {
                "default": {"regex": [{"name": "x", "pattern": "a"}]},
                "prompts": {"support-bot": {"truncation": {"name": "x"}}},
            }
        )


def test_plan_submits_sampled_late_evaluations(fake_openai: FakeOpenAI) -> None:
    fake_openai.respond = lambda path, body: (
        moderation_reply(False) if path.endswith("/moderations") else chat_reply('{"score": 0.75}')
    )
    received: list[tuple[str | None, Any]] = []
    lock = threading.Lock()

    def on_late_result(response: LLMResponse, outcome: Any) -> None:
        with lock:
            received.append((response.response_id, outcome))

    config = load_scoring_config(
        f"""
judge: {{base_url: "{fake_openai.base_url}", model: judge-model, sample_rate: 0.25}}
safety: {{enabled: true, moderation: {{base_url: "{fake_openai.base_url}"}}, sample_rate: 1.0}}
background: {{queue_size: 1000}}
"""
    )
    plan = build_scoring(config, on_late_result=on_late_result)
    try:
        assert names(plan)[2] == ["safety", "judge"]
        judge_sampler = Sampler(0.25, salt="judge")
        ids = [f"chatcmpl-{i}" for i in range(200)]
        queued = sum(plan.submit_late(LLMResponse(output_text="answer", response_id=i)) for i in ids)
        expected_judged = sum(judge_sampler.should_sample(i) for i in ids)
        assert 30 <= expected_judged <= 70
        assert queued == 200 + expected_judged
        assert plan.worker is not None and plan.worker.flush(20)
    finally:
        assert plan.close(5)
    judged = {rid for rid, o in received if isinstance(o, ScoreOutcome)}
    assert judged == {i for i in ids if judge_sampler.should_sample(i)}
    assert all(o.value == 0.75 for _, o in received if isinstance(o, ScoreOutcome))
    assert sum(1 for _, o in received if not isinstance(o, ScoreOutcome) and o.passed) == 200
    assert fake_openai.count("/v1/chat/completions") == expected_judged
    assert plan.worker.closed


def test_plans_can_share_a_worker(fake_openai: FakeOpenAI) -> None:
    fake_openai.respond = lambda path, body: chat_reply("0.5")
    received: list[Any] = []
    worker = ScoringWorker(lambda r, o: received.append((r.prompt_name, o)))
    config = load_scoring_config(f'judge: {{base_url: "{fake_openai.base_url}", model: m, sample_rate: 1}}')
    a = build_scoring(config, worker=worker)
    b = build_scoring(config, worker=worker)
    a.submit_late(LLMResponse(output_text="x", prompt_name="a"))
    b.submit_late(LLMResponse(output_text="y", prompt_name="b"))
    assert worker.flush(5)
    a.close()
    b.close()
    assert not worker.closed  # not theirs to shut down
    assert worker.shutdown(5)
    assert sorted(received) == [("a", ScoreOutcome("judge", 0.5)), ("b", ScoreOutcome("judge", 0.5))]


def test_extra_late_evaluations() -> None:
    received: list[Any] = []

    class Length:
        name = "length"

        def score(self, response: LLMResponse) -> float:
            return float(len(response.output_text))

    plan = build_scoring(
        extra_late=[LateEvaluation(Length(), Sampler(1.0))],
        on_late_result=lambda r, o: received.append(o),
    )
    assert plan.submit_late(LLMResponse(output_text="four")) == 1
    assert plan.close(5)
    assert received == [ScoreOutcome("length", 4.0)]
    assert build_scoring().submit_late(LLMResponse(output_text="x")) == 0


def test_plan_repr_and_judge_type() -> None:
    plan = build_scoring(
        load_scoring_config("judge: {base_url: 'http://127.0.0.1:9/v1', model: m}"),
        on_late_result=lambda r, o: None,
    )
    try:
        assert isinstance(plan.late[0].evaluator, LLMJudge)
        assert plan.late[0].sampler.rate == 0.05
        assert "late=['judge']" in repr(plan)
    finally:
        plan.close(1)


def _docs_yaml_blocks() -> list[str]:
    text = DOCS.read_text(encoding="utf-8")
    return re.findall(r"^```yaml\n(.*?)^```$", text, flags=re.DOTALL | re.MULTILINE)


def test_the_documented_configurations_are_valid() -> None:
    blocks = _docs_yaml_blocks()
    assert len(blocks) >= 2, "docs/checks.md lost its YAML examples"
    for block in blocks:
        if block.lstrip().startswith(("default:", "prompts:")):
            settings = load_scoring_settings(block)
            configs = [settings.default, *(settings.for_prompt(p) for p in settings.prompts)]
        else:
            configs = [load_scoring_config(block)]
        for config in configs:
            plan = build_scoring(
                config, on_late_result=lambda r, o: None, environ={"OPENAI_API_KEY": "sk-docs"}
            )
            plan.close(1)
    full = build_scoring(
        load_scoring_config(blocks[0]),
        on_late_result=lambda r, o: None,
        environ={"OPENAI_API_KEY": "sk-docs"},
    )
    try:
        assert names(full) == (
            [
                "json_valid",
                "json_schema",
                "no_template_leak",
                "cites_order_number",
                "max_output_tokens",
                "truncation",
                "refusal",
                "escalation",
            ],
            ["output_tokens"],
            ["safety", "judge"],
        )
    finally:
        full.close(1)
