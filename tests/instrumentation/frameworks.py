"""What the framework tests share: offline settings, the one-call assertion, a registry to rewrite by.

Importing this module sets the environment that keeps the frameworks off the network (it must run
before they are imported): LiteLLM's price list from its package, no framework telemetry, no
tracing of the OpenAI Agents SDK to OpenAI. The tests also run under
:func:`tests.support.network.no_network`, which fails them if anything reaches past loopback.
"""

from __future__ import annotations

import os
from importlib.metadata import version
from typing import Any

from tests.instrumentation.support import Telemetry, attrs

OFFLINE = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # LiteLLM's model price list: the copy in its package
    "LITELLM_TELEMETRY": "False",
    "OPENAI_AGENTS_DISABLE_TRACING": "1",  # the Agents SDK exports its traces to OpenAI by default
    "LANGSMITH_TRACING": "false",
    "LANGCHAIN_TRACING_V2": "false",
    "TRACELOOP_TELEMETRY": "false",
    "ANONYMIZED_TELEMETRY": "false",
}
for _key, _value in OFFLINE.items():
    os.environ.setdefault(_key, _value)

STABLE = "You are the support assistant of ACME. Be concise."
CANARY = "You are the friendly support assistant of ACME. Answer in two sentences."

#: Distribution name of each framework and SDK the tests run, as docs/frameworks.md lists them.
TESTED = (
    "openai",
    "anthropic",
    "httpx",
    "httpx2",
    "requests",
    "langchain-openai",
    "langchain-anthropic",
    "litellm",
    "openai-agents",
    "pydantic-ai-slim",
    "opentelemetry-instrumentation-genai-openai",
    "opentelemetry-instrumentation-openai",
    "openinference-instrumentation-openai",
    "openinference-instrumentation-langchain",
)


def installed(distribution: str) -> str:
    """The installed version of ``distribution``."""
    return version(distribution)


def one_call(
    telemetry: Telemetry,
    *,
    cohort: str = "canary",
    checks: bool = True,
    tokens: bool = True,
    error: str | None = None,
) -> dict[str, Any]:
    """The attributes of the one LLM span of the one call made, after asserting what every path owes:
    one LLM span, tagged with the Selection's prompt and cohort, the checks (or the error type),
    the token usage, counted once, and no span left open."""
    assert telemetry.open_spans() == [], telemetry.open_spans()
    llm = telemetry.llm_spans()
    assert len(llm) == 1, [(s.name, s.instrumentation_scope) for s in telemetry.finished()]
    tagged = telemetry.tagged()
    assert tagged == llm, [s.name for s in tagged]
    a = attrs(llm[0])
    assert a["gen_ai.prompt.name"] == "support-reply"
    assert a["prompt_canary.cohort"] == cohort
    assert telemetry.total("prompt_canary.responses") == 1
    if error is not None:
        assert telemetry.total("prompt_canary.responses", error__type=error) == 1
    if checks:
        assert a["prompt_canary.check.refusal"] is True
        assert telemetry.total("prompt_canary.checks", prompt_canary__check="refusal") == 1
    else:
        assert not [k for k in a if k.startswith("prompt_canary.check.")]
    if tokens:
        assert telemetry.total("prompt_canary.token.usage", gen_ai__token__type="output") == 1
        assert telemetry.total("prompt_canary.token.usage", gen_ai__token__type="input") == 1
    return a
