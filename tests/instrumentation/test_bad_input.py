"""Bad input through the real SDKs: a body that is not JSON, an object of an unknown shape, a stream
of events that are not the API's, a peer that ends its span first. The application sees exactly what
it sees uninstrumented, nothing raises out of the instrumentation, the call counts once (with an
error type, since its outcome is unknown), and no span is left open.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import openai
import pytest
from opentelemetry.instrumentation.utils import unwrap
from wrapt import wrap_function_wrapper

from otel_prompt_canary.demo.behaviour import Behaviour, Reply
from otel_prompt_canary.demo.simulated_llm import SimulatedLLM
from tests.instrumentation.support import Telemetry, selection
from tests.support.not_an_llm import not_an_llm

MESSAGES: Any = [{"role": "user", "content": "Hi"}]


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with not_an_llm() as url:
        yield url


def outcome(call: Callable[[], Any]) -> tuple[str, str, str]:
    """What the application sees: the result (a stream read to its end) or the exception."""
    try:
        result = call()
        if isinstance(result, openai.Stream | anthropic.Stream):
            result = list(result)
        return ("returned", type(result).__name__, repr(result))
    except Exception as error:
        return ("raised", type(error).__name__, str(error))


def calls(base_url: str) -> dict[str, Callable[[], Any]]:
    """One call of each SDK path against the server that is not an LLM, by name."""

    def chat(kind: str, **kwargs: Any) -> Callable[[], Any]:
        client = openai.OpenAI(base_url=f"{base_url}/{kind}", api_key="test", max_retries=0)
        return lambda: client.chat.completions.create(model="m", messages=MESSAGES, **kwargs)

    def raw(kind: str) -> Callable[[], Any]:
        client = openai.OpenAI(base_url=f"{base_url}/{kind}", api_key="test", max_retries=0)
        return lambda: client.chat.completions.with_raw_response.create(model="m", messages=MESSAGES).parse()

    def messages(kind: str, **kwargs: Any) -> Callable[[], Any]:
        client = anthropic.Anthropic(base_url=f"{base_url}/{kind}", api_key="test", max_retries=0)
        return lambda: client.messages.create(model="m", max_tokens=10, messages=MESSAGES, **kwargs)

    return {
        "chat_text": chat("text"),
        "chat_other_shape": chat("other"),
        "chat_events_not_json": chat("events", stream=True),
        "raw_text": raw("text"),
        "raw_events": raw("events"),
        "messages_text": messages("text"),
        "messages_other_shape": messages("other"),
        "messages_events_not_json": messages("events", stream=True),
    }


CASES = {
    "chat_text": "response_unreadable",
    "chat_other_shape": "response_unreadable",
    "chat_events_not_json": "JSONDecodeError",  # the SDK raises it while the stream is read
    "raw_text": "response_unreadable",
    "raw_events": "response_unreadable",
    "messages_text": "response_unreadable",
    "messages_other_shape": "response_unreadable",
    "messages_events_not_json": "response_unreadable",  # the SDK skips them: a stream with no event
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_body_that_is_not_the_apis(case: str, instrument: Any, base_url: str, telemetry: Telemetry) -> None:
    uninstrumented = outcome(calls(base_url)[case])
    instrument()
    with selection():
        instrumented = outcome(calls(base_url)[case])
    assert instrumented == uninstrumented
    assert telemetry.open_spans() == []
    assert telemetry.total("prompt_canary.responses") == 1
    assert telemetry.total("prompt_canary.responses", error__type=CASES[case]) == 1
    assert telemetry.total("prompt_canary.checks") == 0


# -- a peer that ends its span before the call's results exist -----------------------------------


@pytest.fixture
def hasty_peer(telemetry: Telemetry) -> Iterator[None]:
    """A GenAI instrumentation that ends its ``chat`` span as soon as the SDK returns (before a
    stream is read), outside this project's wrapper."""
    tracer = telemetry.tracer_provider.get_tracer("hasty.peer")

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        with tracer.start_as_current_span("chat m", attributes={"gen_ai.operation.name": "chat"}):
            return wrapped(*args, **kwargs)

    wrap_function_wrapper("openai.resources.chat.completions", "Completions.create", wrapper)
    yield
    unwrap(openai.resources.chat.completions.Completions, "create")


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_a_peer_that_ends_its_span_first(
    stream: bool,
    instrumented: Any,
    hasty_peer: None,
    llm: SimulatedLLM,
    behaviour: Behaviour,
    telemetry: Telemetry,
) -> None:
    """The peer's span carries the prompt; the results it could not carry go out as log records."""
    behaviour.set_default(Reply(text="Hi there.", chunk_chars=3))
    client = openai.OpenAI(base_url=llm.base_url, api_key="test", max_retries=0)
    with selection():
        result = client.chat.completions.create(model="m", messages=MESSAGES, stream=stream)
        text = (
            "".join(c.choices[0].delta.content or "" for c in result)
            if stream
            else result.choices[0].message.content
        )
    assert text == "Hi there."
    assert telemetry.open_spans() == []
    [span] = telemetry.llm_spans()
    assert span.instrumentation_scope is not None and span.instrumentation_scope.name == "hasty.peer"
    assert (span.attributes or {})["gen_ai.prompt.name"] == "support-reply"
    assert telemetry.total("prompt_canary.responses") == 1
    assert telemetry.total("prompt_canary.checks", prompt_canary__check="refusal") == 1
    if stream:  # ended before the stream was read: the results are log records
        assert "refusal" in {e["gen_ai.evaluation.name"] for e in telemetry.log_events()}
    else:  # results written inside the SDK's response processing, before the peer ended its span
        assert (span.attributes or {})["prompt_canary.check.refusal"] is True
