"""The evaluation suite's world: a support prompt in three versions, a golden set, and a model.

- ``support-bot@1`` (the stable version) answers every question as JSON;
- ``support-bot@2`` (the "friendlier" candidate) breaks one class of cases: its answers to billing
  questions open with a friendly sentence, so they are no longer JSON;
- ``support-bot@3`` is equivalent to version 1 (another temperature, same answers).

:func:`support_model` is the simulated LLM's responder playing the model and the LLM judge: the
judge scores 1 an answer holding the reference's key word (the case's topic), 0.2 one that does
not. The golden set has four billing, four shipping and four account cases.
"""

from __future__ import annotations

import json
import re
from typing import Final

from otel_prompt_canary.demo.behaviour import Behaviour, ModelRequest, Reply

STABLE: Final = (
    "You are the support assistant of Acme. Answer with compact JSON only: "
    '{"topic": "billing|shipping|account", "answer": "<one sentence>"}'
)
FRIENDLIER: Final = "Be warm and friendly first, then answer as JSON: " + STABLE


def spec(system: str, *, temperature: float = 0.2, model: str = "sim-gpt-small") -> str:
    """A prompt spec (YAML) with the system text ``system``."""
    return (
        "name: support-bot\n"
        f"model: {model}\n"
        f"config: {{temperature: {temperature}}}\n"
        "output: {format: json}\n"
        "messages:\n"
        f"  - {{role: system, content: {json.dumps(system)}}}\n"
        '  - {role: user, content: "{{ question }}"}\n'
    )


SPEC_V1: Final = spec(STABLE)
SPEC_V2: Final = spec(FRIENDLIER)
SPEC_V3: Final = spec(STABLE, temperature=0.3)

QUESTIONS: Final = {
    "billing": (
        "Why was my card charged twice this month?",
        "Can I get an invoice for my last payment?",
        "My bill shows a price I did not expect.",
        "How do I change the card I pay with?",
    ),
    "shipping": (
        "When will my package ship?",
        "Can you deliver to another address?",
        "How do I track my parcel?",
        "My package has not arrived yet.",
    ),
    "account": (
        "I forgot my password.",
        "How do I change my login email?",
        "Can I delete my account?",
        "How do I sign in on a new phone?",
    ),
}

_TOPIC_WORDS: Final = {
    "billing": ("charge", "invoice", "bill", "pay"),
    "shipping": ("ship", "deliver", "track", "package", "parcel"),
}


def topic_of(question: str) -> str:
    folded = question.casefold()
    for topic, words in _TOPIC_WORDS.items():
        if any(word in folded for word in words):
            return topic
    return "account"


def dataset_yaml(*, name: str = "support-golden", judged: bool = True) -> str:
    """The golden set, as a YAML file; with ``judged``, every case has a reference for the judge."""
    lines = [f"name: {name}", "prompt: support-bot", "description: Known support questions", "cases:"]
    for topic, questions in QUESTIONS.items():
        for number, question in enumerate(questions, start=1):
            lines += [
                f"  - id: {topic}-{number}",
                f"    tags: [{topic}]",
                f"    variables: {{question: {json.dumps(question)}}}",
                "    expect:",
                f"      must_contain: [{topic}]",
                "      must_not_contain: [sorry]",
            ]
            if judged:
                lines.append(f'      reference: "A {topic} answer"')
    return "\n".join(lines) + "\n"


def dataset_jsonl() -> str:
    """The golden set as JSONL (no judge), one case a line."""
    rows = []
    for topic, questions in QUESTIONS.items():
        for number, question in enumerate(questions, start=1):
            rows.append(
                json.dumps(
                    {
                        "id": f"{topic}-{number}",
                        "tags": [topic],
                        "variables": {"question": question},
                        "expect": {"must_contain": [topic]},
                    }
                )
            )
    return "\n".join(rows) + "\n"


BILLING_CASES: Final = tuple(f"billing-{n}" for n in range(1, 5))

_REFERENCE = re.compile(r"<reference>\s*A (\w+) answer", re.DOTALL)
_RESPONSE = re.compile(r"<response>(.*?)</response>", re.DOTALL)


def _judge(request: ModelRequest) -> Reply:
    reference = _REFERENCE.search(request.user)
    response = _RESPONSE.search(request.user)
    agrees = reference is not None and response is not None and reference.group(1) in response.group(1)
    return Reply.json({"score": 1.0 if agrees else 0.2})


def support_model(request: ModelRequest) -> Reply:
    """The model of the three versions (and the judge): see the module docstring."""
    if "impartial evaluator" in request.system:
        return _judge(request)
    topic = topic_of(request.user)
    text = json.dumps({"topic": topic, "answer": f"Here is how {topic} works at Acme."})
    if request.system.startswith("Be warm") and topic == "billing":
        text = "Happy to help with that! " + text
    return Reply(text=text)


def support_behaviour(behaviour: Behaviour) -> Behaviour:
    """``behaviour`` answering as :func:`support_model` (its rules cleared)."""
    behaviour.clear()
    behaviour.set_default(support_model)
    return behaviour
