"""The application of the end-to-end tests, run by ``opentelemetry-instrument`` in its own process.

A support bot: every request picks its prompt version with a :class:`PromptRouter` (long-polling
the control plane), renders it under the Selection and calls the real ``openai`` SDK, asking for
JSON. The instrumentation (the ``prompt_canary`` instrumentor ``opentelemetry-instrument`` loads)
tags each LLM call span with the prompt, version, cohort, rollout and check outcomes, and the
OTLP exporter sends them to the Collector.

It runs until ``APP_STOP_FILE`` exists or ``APP_MAX_SECONDS`` pass, at about ``APP_RATE`` calls per
second, then prints one JSON line: the calls by ``<routing state>/<cohort>/<version>``, where the
routing state is the one the router held just before the call.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import openai

from otel_prompt_canary import PromptRouter

QUESTIONS = (
    "I would like a refund for order {n}.",
    "Why is there a second charge on my bill for order {n}?",
    "Where is my package {n}?",
    "I cannot log in to account {n}.",
)


def main() -> None:
    prompt = os.environ["APP_PROMPT"]
    stop_file = Path(os.environ["APP_STOP_FILE"])
    period = 1.0 / float(os.environ.get("APP_RATE", "100"))
    deadline = time.monotonic() + float(os.environ.get("APP_MAX_SECONDS", "120"))
    client = openai.OpenAI(base_url=os.environ["APP_LLM_URL"], api_key="test", max_retries=0)
    calls: Counter[str] = Counter()
    errors = 0
    with PromptRouter(os.environ["APP_CONTROL_PLANE"], initial_timeout=10, long_poll_wait=20) as router:
        n = 0
        next_call = time.monotonic()
        while time.monotonic() < deadline and not stop_file.exists():
            route = router.route(prompt)
            state = route.state.value if route is not None else "none"
            with router.select(prompt, unit_key=f"user-{n}") as selection:
                try:
                    messages: Any = selection.render(question=QUESTIONS[n % len(QUESTIONS)].format(n=n))
                    client.chat.completions.create(
                        model="sim-gpt-small", messages=messages, response_format={"type": "json_object"}
                    )
                except openai.OpenAIError:
                    errors += 1
            calls[f"{state}/{selection.cohort}/{selection.version}"] += 1
            n += 1
            next_call += period
            time.sleep(max(0.0, next_call - time.monotonic()))
    print(json.dumps({"calls": dict(calls), "errors": errors}), flush=True)


if __name__ == "__main__":
    main()
