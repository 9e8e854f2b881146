"""Fault injection: whatever breaks in checks, scorers, listeners, the registry or telemetry, the app sees
exactly what it would see uninstrumented (the same result, or the SDK's own exception)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import anthropic
import openai
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider

from otel_prompt_canary.demo.behaviour import Behaviour, Reply, ToolCall
from otel_prompt_canary.demo.simulated_llm import SimulatedLLM
from otel_prompt_canary.instrumentation import (
    InstrumentationConfig,
    PromptCanaryInstrumentor,
    add_observation_listener,
    remove_observation_listener,
)
from tests.instrumentation.support import Telemetry, selection

REPLIES = {
    "text": Reply(text="A plain answer."),
    "json": Reply.json({"answer": 42}),
    "refusal": Reply(text="I'm sorry, but I can't help with that."),
    "tool": Reply(tool_calls=(ToolCall(name="lookup", arguments={"q": "x"}),)),
    "filtered": Reply(text="", finish="content_filter"),
    "zero_tokens": Reply(text="t", output_tokens=0, input_tokens=0),
    "server_error": Reply.failure(500),
    "bad_request": Reply.failure(400),
    "dropped": Reply(text="x" * 80, chunk_chars=4, drop_connection_after=3),
}


class FaultyCheck:
    def __init__(self, mode: str) -> None:
        self.mode = mode

    @property
    def name(self) -> str:
        if self.mode == "bad_name":
            raise RuntimeError("no name")
        return "faulty"

    def check(self, response: Any) -> Any:
        if self.mode == "raises":
            raise ValueError("check failed")
        if self.mode == "garbage":
            return "yes"
        return True


class FaultyScorer:
    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.name = "faulty_score"

    def score(self, response: Any) -> Any:
        return {"raises": 1 / 0 if self.mode == "raises" else 0, "nan": float("nan"), "string": "high"}.get(
            self.mode, 0.5
        )


class BrokenRouter:
    @property
    def _cache(self) -> Any:
        raise RuntimeError("registry unreachable")


class RaisingProcessor(SpanProcessor):
    def __init__(self, where: str) -> None:
        self.where = where

    def on_start(self, span: Span, parent_context: Any = None) -> None:
        if self.where == "start":
            raise RuntimeError("processor down")

    def on_end(self, span: ReadableSpan) -> None:
        if self.where == "end":
            raise RuntimeError("exporter down")


def _outcome(run: Callable[[], Any]) -> Any:
    try:
        return ("ok", run())
    except Exception as exc:  # the SDK's exception, compared by type and status
        return ("raised", type(exc).__name__, getattr(exc, "status_code", None))


def _call(api: str, llm: SimulatedLLM) -> Any:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    oa = openai.OpenAI(base_url=llm.base_url, api_key="t", max_retries=0)
    an = anthropic.Anthropic(
        base_url=llm.anthropic_base_url, api_key="t", max_retries=0, open_telemetry=False
    )
    if api == "chat":
        r = oa.chat.completions.create(model="m", messages=messages)  # type: ignore[arg-type]
        return (
            r.choices[0].message.content,
            r.choices[0].finish_reason,
            bool(r.choices[0].message.tool_calls),
        )
    if api == "chat_stream":
        chunks = list(oa.chat.completions.create(model="m", messages=messages, stream=True))  # type: ignore[arg-type]
        return ["".join(c.choices[0].delta.content or "" for c in chunks if c.choices), len(chunks)]
    if api == "responses":
        r2 = oa.responses.create(model="m", input="Hi", instructions="Be brief.")
        return (r2.output_text, r2.status)
    if api == "responses_stream":
        return [e.type for e in oa.responses.create(model="m", input="Hi", stream=True)]
    if api == "messages":
        m = an.messages.create(model="m", max_tokens=50, system="Be brief.", messages=messages[1:])  # type: ignore[arg-type]
        return (json.dumps([b.model_dump(exclude={"id"}) for b in m.content]), m.stop_reason)
    if api == "messages_stream":
        with an.messages.stream(model="m", max_tokens=50, messages=messages[1:]) as stream:  # type: ignore[arg-type]
            return "".join(stream.text_stream)
    if api == "async_chat":

        async def run() -> Any:
            client = openai.AsyncOpenAI(base_url=llm.base_url, api_key="t", max_retries=0)
            r = await client.chat.completions.create(model="m", messages=messages)  # type: ignore[arg-type]
            return r.choices[0].message.content

        return asyncio.run(run())
    raise AssertionError(api)


@settings(
    max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    api=st.sampled_from(
        ["chat", "chat_stream", "responses", "responses_stream", "messages", "messages_stream", "async_chat"]
    ),
    reply=st.sampled_from(sorted(REPLIES)),
    check=st.sampled_from(["ok", "raises", "garbage", "bad_name"]),
    scorer=st.sampled_from(["ok", "raises", "nan", "string"]),
    listener_raises=st.booleans(),
    router=st.sampled_from(["none", "broken"]),
    processor=st.sampled_from(["none", "start", "end"]),
    with_selection=st.booleans(),
    rewrite=st.booleans(),
)
def test_faults_never_reach_the_app(
    llm: SimulatedLLM,
    behaviour: Behaviour,
    telemetry: Telemetry,
    api: str,
    reply: str,
    check: str,
    scorer: str,
    listener_raises: bool,
    router: str,
    processor: str,
    with_selection: bool,
    rewrite: bool,
) -> None:
    behaviour.set_default(REPLIES[reply])
    expected = _outcome(lambda: _call(api, llm))

    tracer_provider = TracerProvider()
    if processor != "none":
        tracer_provider.add_span_processor(RaisingProcessor(processor))

    def listener(observation: Any) -> None:
        if listener_raises:
            raise RuntimeError("listener bug")

    instrumentor = PromptCanaryInstrumentor()
    add_observation_listener(listener)
    instrumentor.instrument(
        config=InstrumentationConfig(rewrite=rewrite),
        tracer_provider=tracer_provider,
        meter_provider=telemetry.meter_provider,
        logger_provider=telemetry.logger_provider,
        router=BrokenRouter() if router == "broken" else None,
        extra_checks=[FaultyCheck(check)],
        extra_scorers=[FaultyScorer(scorer)],
    )
    try:
        if with_selection:
            with selection():
                actual = _outcome(lambda: _call(api, llm))
        else:
            actual = _outcome(lambda: _call(api, llm))
    finally:
        instrumentor.uninstrument()
        remove_observation_listener(listener)
    assert actual == expected
