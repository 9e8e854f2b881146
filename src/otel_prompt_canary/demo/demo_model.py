"""The demo's model: a canary prompt that silently breaks JSON output for one class of queries.

:class:`CanaryDemoModel` is a responder for :class:`~otel_prompt_canary.demo.behaviour.Behaviour`. It
tells the two prompt versions apart by their system prompt (or instructions):

- under the **stable** prompt it answers valid compact JSON, ``{"topic", "answer", "escalate"}``;
- under the **canary** prompt it answers more verbosely (a longer ``answer``, hence more output tokens)
  and, for queries about one of ``broken_topics`` (``refund`` and ``billing`` by default), it breaks the
  JSON at ``break_rate``: wrapped in prose or cut short, still with HTTP 200 and a normal finish reason.

With ``healthy`` set (it may be switched while serving) the canary answers exactly as the stable prompt
does. :meth:`CanaryDemoModel.update_model` plays a provider that changes the model behind the same
name: from then on every answer, whatever the prompt, is longer and breaks its JSON at
``update_break_rate`` (the drift that ``prompt-canary demo --drift`` catches after a promotion).
When the request asks for a JSON schema the answer follows that schema, filled with the same content.
Every decision is deterministic given ``seed``: the n-th identical request always gets the same answer,
whatever the interleaving of other requests.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterable
from typing import Any, Literal

from otel_prompt_canary.demo.behaviour import Behaviour, ModelRequest, Reply
from otel_prompt_canary.demo.schema_example import example_for_schema

__all__ = ["BreakStyle", "CanaryDemoModel", "Cohort", "demo_behaviour"]

Cohort = Literal["stable", "canary"]

#: How a broken answer is broken: JSON wrapped in prose, JSON cut short, or either at random.
BreakStyle = Literal["prose", "truncate", "mixed"]

#: Topics of support queries and the words that reveal them, in order of precedence.
TOPIC_WORDS: dict[str, tuple[str, ...]] = {
    "refund": ("refund", "money back", "return"),
    "billing": ("billing", "bill", "invoice", "charge", "payment", "price"),
    "shipping": ("shipping", "ship", "deliver", "package", "track"),
    "account": ("account", "password", "login", "sign in", "email"),
}

_ANSWERS = {
    "refund": "Refunds are issued to the original payment method within 5 business days.",
    "billing": "Your invoice lists each charge; duplicate charges are reversed automatically.",
    "shipping": "Orders ship within 2 business days and include a tracking link.",
    "account": "You can reset your password from the sign-in page.",
    "other": "Thanks for reaching out; a support agent will follow up shortly.",
}

_ELABORATIONS = (
    "I completely understand how important this is for you, and I want you to have every detail.",
    "Please keep in mind that timelines can vary slightly depending on your bank or region.",
    "If anything still looks wrong afterwards, simply reply to this message and we will look into it again.",
    "In the meantime, you can follow every step from the orders page of your account.",
    "We appreciate your patience and thank you for being a valued customer.",
)


def _normalized(text: str) -> str:
    return " ".join(text.split()).casefold()


def _topic_of(text: str) -> str:
    folded = text.casefold()
    for topic, words in TOPIC_WORDS.items():
        if any(word in folded for word in words):
            return topic
    return "other"


class CanaryDemoModel:
    """A responder playing a model whose canary prompt breaks JSON for one class of queries.

    A request is in the canary cohort when ``canary_prompt`` (whitespace and case aside) appears in
    its system prompt, in the stable cohort otherwise. ``extra_sentences`` is how much longer canary
    answers are. ``break_style`` says how broken answers are broken.
    """

    def __init__(
        self,
        *,
        stable_prompt: str,
        canary_prompt: str,
        broken_topics: Iterable[str] = ("refund", "billing"),
        break_rate: float = 0.5,
        break_style: BreakStyle = "mixed",
        extra_sentences: int = 3,
        healthy: bool = False,
        seed: int = 0,
    ) -> None:
        if not 0.0 <= break_rate <= 1.0:
            raise ValueError(f"break_rate must be in [0, 1], got {break_rate}")
        if _normalized(stable_prompt) == _normalized(canary_prompt):
            raise ValueError("the stable and canary prompts must differ")
        self.stable_prompt = stable_prompt
        self.canary_prompt = canary_prompt
        self.broken_topics = tuple(t.casefold() for t in broken_topics)
        self.break_rate = break_rate
        self.break_style = break_style
        self.extra_sentences = max(0, extra_sentences)
        #: When True the canary answers as well as the stable prompt; may be switched at any time.
        self.healthy = healthy
        #: Break rate of every answer once the provider updated its model (None: not updated).
        self.update_break_rate: float | None = None
        self.seed = seed
        self._lock = threading.Lock()
        self._seen: dict[str, int] = {}

    def __repr__(self) -> str:
        return (
            f"CanaryDemoModel(broken_topics={self.broken_topics!r}, break_rate={self.break_rate}, "
            f"healthy={self.healthy}, seed={self.seed})"
        )

    def update_model(self, break_rate: float = 0.06) -> None:
        """Play a provider update behind the same model name: every answer from now on is longer and
        breaks its JSON at ``break_rate``, whatever the prompt."""
        if not 0.0 <= break_rate <= 1.0:
            raise ValueError(f"break_rate must be in [0, 1], got {break_rate}")
        self.update_break_rate = break_rate

    def cohort_of(self, request: ModelRequest) -> Cohort:
        """Which prompt version the request was rendered from."""
        canary = _normalized(self.canary_prompt)
        return "canary" if canary and canary in _normalized(request.system) else "stable"

    def is_affected(self, user_message: str) -> bool:
        """True when a query belongs to the class the canary breaks."""
        folded = user_message.casefold()
        return _topic_of(user_message) in self.broken_topics or any(
            topic in folded for topic in self.broken_topics
        )

    def __call__(self, request: ModelRequest) -> Reply:
        cohort = self.cohort_of(request)
        degraded = cohort == "canary" and not self.healthy
        updated = self.update_break_rate
        topic = _topic_of(request.user)
        answer = _ANSWERS[topic]
        if (degraded or updated is not None) and self.extra_sentences:
            answer = " ".join((answer, *_ELABORATIONS[: self.extra_sentences]))
        content: dict[str, Any] = {"topic": topic, "answer": answer, "escalate": topic == "other"}
        if request.json_schema is not None:
            content = example_for_schema(request.json_schema, text=answer, hints=content)
        text = json.dumps(content, separators=(",", ":"))
        if degraded and self.is_affected(request.user):
            draw, style_draw = self._draws(cohort, request)
            if draw < self.break_rate:
                text = self._broken(text, style_draw)
        elif updated is not None:
            draw, style_draw = self._draws(cohort, request)
            if draw < updated:
                text = self._broken(text, style_draw)
        return Reply(text=text)

    def _draws(self, cohort: Cohort, request: ModelRequest) -> tuple[float, float]:
        """Two uniform numbers in [0, 1) for the n-th occurrence of this exact request."""
        key = hashlib.sha256(f"{cohort}\0{request.system}\0{request.user}".encode()).hexdigest()
        with self._lock:
            occurrence = self._seen.get(key, 0)
            self._seen[key] = occurrence + 1
        digest = hashlib.sha256(f"{self.seed}\0{key}\0{occurrence}".encode()).digest()
        scale = float(2**64)
        return int.from_bytes(digest[:8]) / scale, int.from_bytes(digest[8:16]) / scale

    def _broken(self, text: str, style_draw: float) -> str:
        style = self.break_style
        if style == "mixed":
            style = "prose" if style_draw < 0.5 else "truncate"
        if style == "prose":
            return (
                "Sure! Here is the information you asked for:\n\n"
                f"```json\n{text}\n```\n\nLet me know if there is anything else I can help with."
            )
        return text[: max(1, len(text) * 2 // 3)]


def demo_behaviour(
    *, stable_prompt: str, canary_prompt: str, **settings: Any
) -> tuple[Behaviour, CanaryDemoModel]:
    """A behaviour answered by a :class:`CanaryDemoModel`, and the model (to switch ``healthy``)."""
    model = CanaryDemoModel(stable_prompt=stable_prompt, canary_prompt=canary_prompt, **settings)
    return Behaviour(default=model), model
