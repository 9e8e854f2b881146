# ruff: noqa: RUF001  (multilingual test phrases hold CJK punctuation and Cyrillic letters)
from __future__ import annotations

import pytest

from otel_prompt_canary.errors import InvalidInputError
from otel_prompt_canary.scoring import (
    REFUSAL_LANGUAGES,
    EscalationCheck,
    LLMResponse,
    RefusalCheck,
    SafetyCheck,
    ToolCall,
)
from otel_prompt_canary.scoring._phrases import REFUSAL_PATTERNS, expand_leading_groups

REFUSALS = {
    "en": [
        "I'm sorry, but I can't help with that.",
        "I’m sorry, but I cannot assist with this request.",
        "I am sorry, but I am unable to provide that information.",
        "Sorry, but I can't help with requests like this.",
        "I can't help with that.",
        "I cannot assist with that request.",
        "I'm unable to help with that.",
        "I must decline this request.",
        "As an AI language model, I cannot browse the internet.",
        "**I'm sorry**, but I can't do that.",
        "Thanks for asking! Unfortunately, I can't help with that.",
        "I'd love to, but I can't help with that one.",
        "I'M SORRY, BUT I CAN'T HELP WITH THAT.",
    ],
    "es": [
        "Lo siento, pero no puedo ayudarte con eso.",
        "Lo lamento, pero no puedo proporcionar esa información.",
        "No puedo ayudarte con esa solicitud.",
        "No puedo cumplir con esa solicitud.",
    ],
    "fr": [
        "Je suis désolé, mais je ne peux pas vous aider avec cela.",
        "Désolée, mais je ne peux pas répondre à cette question.",
        "Je ne peux pas t’aider avec cette demande.",
        "Je ne suis pas en mesure de vous aider.",
    ],
    "de": [
        "Es tut mir leid, aber ich kann Ihnen dabei nicht helfen.",
        "Ich kann Ihnen dabei nicht helfen.",
        "Leider kann ich dir dabei nicht helfen.",
        "Ich kann diese Anfrage nicht erfüllen.",
    ],
    "pt": [
        "Desculpe, mas não posso ajudar com isso.",
        "Sinto muito, mas não consigo fornecer essa informação.",
        "Não posso ajudá-lo com essa solicitação.",
        "Infelizmente, não posso ajudar.",
    ],
    "it": [
        "Mi dispiace, ma non posso aiutarti con questo.",
        "Non posso aiutarti con questa richiesta.",
        "Non sono in grado di aiutarti.",
    ],
    "nl": ["Het spijt me, maar ik kan je daar niet mee helpen.", "Ik kan je daar niet mee helpen."],
    "ru": ["Извините, но я не могу помочь с этим.", "К сожалению, я не могу выполнить этот запрос."],
    "zh": [
        "抱歉，我无法帮助你完成这个请求。",
        "对不起，我不能提供这类信息。",
        "很抱歉，但我无法回答这个问题。",
        "我无法满足您的这个请求。",
        "對不起，我無法協助處理這個問題。",
        "作为一个人工智能，我无法浏览网页。",
    ],
    "ja": [
        "申し訳ありませんが、そのご依頼にはお応えできません。",
        "申し訳ございませんが、その質問にはお答えできません。",
        "その件についてはお手伝いできません。",
    ],
    "ko": ["죄송하지만, 그 요청은 도와드릴 수 없습니다.", "죄송합니다. 해당 정보는 제공할 수 없습니다."],
}

ANSWERS = [
    "Sure! Here is a summary of the report: revenue grew 12% and costs were stable.",
    "I can't stress enough how important backups are. Here is how to set them up.",
    "You cannot use a semicolon there; use a comma. I can help with that rewrite.",
    "Sorry for the delay! Your order #123 shipped yesterday.",
    "The function returns None when the input is empty; otherwise it returns a list.",
    '{"answer": "I cannot wait to see it", "category": "other"}',
    "Claro, aquí tienes la receta. No puedo esperar a que la pruebes.",
    "Bien sûr ! Voici la liste. Je ne peux pas garantir les prix, ils changent souvent.",
    "Natürlich! Hier ist die Übersicht. Ich kann das gern noch kürzen.",
    "Claro! Aqui está o resumo. Não posso garantir que os preços não mudem.",
    "Certo! Ecco il riepilogo richiesto.",
    "当然可以！以下是报告的摘要：收入增长了百分之十二。",
    "はい、承知しました。以下が要約です。",
    "네, 요약은 다음과 같습니다.",
    "Конечно! Вот краткое содержание отчёта.",
    "",
]


@pytest.mark.parametrize(
    ("lang", "text"), [(lang, text) for lang, texts in REFUSALS.items() for text in texts]
)
def test_refusals_are_detected_in_every_language(lang: str, text: str) -> None:
    assert RefusalCheck().check(LLMResponse(output_text=text)) is False
    assert RefusalCheck(languages=[lang]).check(LLMResponse(output_text=text)) is False


@pytest.mark.parametrize("text", ANSWERS)
def test_answers_are_not_refusals(text: str) -> None:
    assert RefusalCheck().check(LLMResponse(output_text=text)) is True


def test_every_built_in_language_is_tested() -> None:
    assert set(REFUSALS) == set(REFUSAL_LANGUAGES)


def test_built_in_patterns_open_with_a_literal_once_expanded() -> None:
    # The matcher's speed relies on it (see expand_leading_groups).
    for lang, patterns in REFUSAL_PATTERNS.items():
        for pattern in patterns:
            for expanded in expand_leading_groups(pattern):
                assert expanded[:1] not in "([.\\*+?{|", (lang, expanded)


def test_a_refusal_late_in_a_long_answer_is_not_read() -> None:
    text = "Here is the full answer. " * 40 + "I'm sorry, but I can't help with that."
    assert RefusalCheck().check(LLMResponse(output_text=text)) is True
    assert RefusalCheck(scan_chars=5000).check(LLMResponse(output_text=text)) is False


@pytest.mark.parametrize("reason", ["content_filter", "refusal", "SAFETY"])
def test_provider_refusal_finish_reasons_fail(reason: str) -> None:
    response = LLMResponse(output_text="", finish_reasons=(reason,))
    assert RefusalCheck().check(response) is False


def test_openai_refusal_field_fails() -> None:
    response = LLMResponse(output_text="", refusal="I can't help with that.")
    assert RefusalCheck().check(response) is False


def test_language_selection_and_extra_phrases() -> None:
    english_only = RefusalCheck(languages=["en"])
    assert english_only.check(LLMResponse(output_text="Lo siento, pero no puedo.")) is True
    custom = RefusalCheck(languages=[], extra_phrases=["That is outside my remit", "これは対応外です"])
    assert custom.check(LLMResponse(output_text="Hmm. That  is OUTSIDE my remit.")) is False
    assert custom.check(LLMResponse(output_text="ご質問ありがとうございます。これは対応外です。")) is False
    assert custom.check(LLMResponse(output_text="I'm sorry, but I can't.")) is True
    with pytest.raises(InvalidInputError, match="unknown language"):
        RefusalCheck(languages=["xx"])


def test_escalation_by_tool_call() -> None:
    check = EscalationCheck()
    assert check.check(LLMResponse(tool_calls=(ToolCall("transfer_to_human", "{}"),))) is False
    assert check.check(LLMResponse(tool_calls=(ToolCall("Transfer_To_Human", "{}"),))) is False
    assert check.check(LLMResponse(tool_calls=(ToolCall("lookup_order", "{}"),))) is True


@pytest.mark.parametrize(
    "text",
    [
        "I understand. Let me connect you with a human agent who can help.",
        "One moment, I will transfer you to a live agent.",
        "This needs a specialist.\nI'm transferring you to an agent now.",
    ],
)
def test_escalation_by_phrase(text: str) -> None:
    assert EscalationCheck().check(LLMResponse(output_text=text)) is False


def test_escalation_custom_names_and_phrases() -> None:
    check = EscalationCheck(
        name="handoff", tool_names=["page_oncall"], phrases=["un agente humano le atenderá"]
    )
    assert check.name == "handoff"
    assert check.check(LLMResponse(tool_calls=(ToolCall("page_oncall"),))) is False
    assert check.check(LLMResponse(output_text="Un agente  humano le atenderá pronto.")) is False
    assert check.check(LLMResponse(output_text="I will transfer you to a human.")) is True
    with pytest.raises(InvalidInputError):
        EscalationCheck(tool_names=[], phrases=[])


def test_safety_check_passes_unless_flagged() -> None:
    check = SafetyCheck(lambda r: "forbidden" in r.output_text)
    assert check.check(LLMResponse(output_text="all fine")) is True
    assert check.check(LLMResponse(output_text="something forbidden")) is False
    assert SafetyCheck(lambda r: None).check(LLMResponse(output_text="x")) is None


def test_safety_check_refuses_non_bool_verdicts() -> None:
    check = SafetyCheck(lambda r: "yes")  # type: ignore[arg-type,return-value]
    with pytest.raises(TypeError):
        check.check(LLMResponse(output_text="x"))
    with pytest.raises(InvalidInputError):
        SafetyCheck("not callable")  # type: ignore[arg-type]
