# ruff: noqa: RUF001  (the phrase tables hold Cyrillic letters and CJK punctuation on purpose)
"""Phrase lists and the matcher that finds them cheaply in every response.

Users give plain phrases (``"let me connect you with a human agent"``); a :class:`PhraseMatcher`
compiles them once into a pattern that ignores case, tolerates any run of whitespace between words
and either apostrophe (ASCII or typographic). The built-in refusal phrases are lower-case regular-expression
fragments written in the same spirit; they are kept short and specific because a false "refusal" on a
normal answer is worse than a missed one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType

__all__ = [
    "REFUSAL_LANGUAGES",
    "REFUSAL_PATTERNS",
    "PhraseMatcher",
    "expand_leading_groups",
    "phrase_matcher",
    "refusal_matcher",
]

_APOSTROPHE = "['\u2019\u02bc]"

# Languages whose words are separated by spaces: their phrases are tried where a clause starts, so
# "no puedo" never matches inside another word or mid-sentence. CJK text has no spaces between words:
# its phrases are searched everywhere.
_SPACED = frozenset({"en", "es", "fr", "de", "pt", "it", "nl", "ru"})

#: Built-in refusal patterns per language (ISO 639-1 code). Matched case-insensitively at the start of
#: the output; ``'`` matches either apostrophe and a space matches any whitespace.
REFUSAL_PATTERNS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "en": (
            r"(?:i'm|i am|i'm really|i am really) (?:sorry|afraid),? (?:but )?i (?:can't|cannot|can not|"
            r"won't|will not|am unable|'m unable|am not able|'m not able|must decline)",
            r"sorry,? (?:but )?i (?:can't|cannot|won't) (?:help|assist|do|provide|comply)",
            r"i (?:can't|cannot|can not|won't|will not) (?:help|assist) (?:you )?with (?:that|this|your|"
            r"the request|requests)",
            r"i (?:can't|cannot|won't|will not) (?:comply|fulfill|fulfil) (?:with )?(?:that|this|your)",
            r"i(?:'m| am) (?:unable|not able) to (?:help|assist|comply|fulfill|fulfil) (?:you )?"
            r"(?:with )?(?:that|this|your)",
            r"but i (?:can't|cannot|won't|will not|am unable to|'m unable to) (?:help|assist|comply|"
            r"fulfill|fulfil|provide that|do that)",
            r"i must (?:decline|refuse)",
            r"as an ai(?: language model| assistant)?,? i (?:can't|cannot|am not able|'m not able|"
            r"am unable|'m unable|don't|do not)",
            r"i'm not (?:able|allowed|permitted) to (?:help|assist|provide|share|discuss)",
        ),
        "es": (
            r"lo (?:siento|lamento),? pero no (?:puedo|me es posible|estoy en condiciones)",
            r"no puedo (?:ayudarte|ayudarle|ayudar|asistirte|asistirle) con (?:eso|esto|esa|esta|tu|su)",
            r"no puedo (?:cumplir|atender|satisfacer|responder) (?:con |a )?(?:esa|esta|tu|su) "
            r"(?:solicitud|petición|pregunta)",
            r"lamentablemente,? no puedo (?:ayudar|proporcionar|cumplir)",
        ),
        "fr": (
            r"(?:je suis désolée?|désolée?),? mais je ne (?:peux|suis pas en mesure|pourrai)",
            r"je ne (?:peux|pourrai) pas (?:vous |t')?(?:aider|assister) (?:avec|pour|à|sur) "
            r"(?:cela|ça|ceci|cette|votre|ta)",
            r"je ne (?:peux|pourrai) pas (?:répondre|donner suite) à (?:cette|votre|ta) "
            r"(?:demande|requête|question)",
            r"je ne suis pas en mesure de (?:vous |t')?(?:aider|répondre|fournir)",
        ),
        "de": (
            r"es tut mir leid,? aber ich (?:kann|darf) (?:dir |ihnen |dabei |damit |hierbei |das |"
            r"diese anfrage )*nicht",
            r"ich (?:kann|darf) (?:dir |ihnen )?(?:dabei|damit|hierbei|bei dieser anfrage|bei diesem "
            r"anliegen) nicht (?:helfen|behilflich sein|unterstützen)",
            r"ich kann (?:diese|deine|ihre) anfrage nicht (?:erfüllen|beantworten|bearbeiten)",
            r"ich bin nicht in der lage,? (?:dir |ihnen )?(?:dabei |damit |hierbei )?"
            r"(?:zu helfen|zu unterstützen)",
            r"leider kann ich (?:dir |ihnen )?(?:dabei|damit|hierbei) nicht (?:helfen|weiterhelfen)",
        ),
        "pt": (
            r"(?:desculpe|sinto muito|lamento),? mas não (?:posso|consigo|é possível)",
            r"não (?:posso|consigo) (?:ajudar|ajudá-lo|ajudá-la|te ajudar|lhe ajudar|auxiliar)"
            r"(?: você)? com (?:isso|isto|essa|esta|esse|este|seu|sua)",
            r"não posso (?:atender|cumprir|realizar|responder) (?:a |o |à |ao )?(?:essa|esta|esse|este|"
            r"sua|seu) (?:solicitação|pedido|pergunta)",
            r"infelizmente,? não (?:posso|consigo) (?:ajudar|fornecer|atender)",
        ),
        "it": (
            r"(?:mi dispiace|spiacente|purtroppo),? (?:ma )?non (?:posso|sono in grado)",
            r"non posso (?:aiutarti|aiutarla|aiutare|assisterti|assisterla) (?:con|in|su) "
            r"(?:questo|questa|ciò|quello|quella|la tua|la sua)",
            r"non sono in grado di (?:aiutarti|aiutarla|aiutare|soddisfare|rispondere)",
        ),
        "nl": (
            r"het spijt me,? maar ik kan (?:je |u |daar |hier |hiermee |daarmee |dit |dat )*niet",
            r"ik kan (?:je |u )?(?:daar|hier|hiermee|daarmee) niet (?:mee |bij )?helpen",
        ),
        "ru": (
            r"(?:извините|простите|к сожалению),? (?:но )?я не (?:могу|смогу)",
            r"я не (?:могу|смогу) (?:вам |тебе )?(?:с этим )?(?:помочь|выполнить (?:этот|эту|ваш|вашу|"
            r"твой|твою) (?:запрос|просьбу))",
        ),
        "zh": (
            r"(?:抱歉|对不起|很抱歉|非常抱歉|對不起)[，,、]?\s*(?:但)?(?:是)?我(?:无法|不能|没办法|不可以|"
            r"無法|沒辦法)",
            r"我(?:无法|不能|無法)(?:帮助|协助|满足|幫助|協助|滿足)(?:你|您)",
            r"我(?:无法|不能|無法)(?:提供|完成|回答)(?:这个|此|该|這個|該)(?:请求|要求|問題|问题|請求)",
            r"作为一个?(?:人工智能|AI)(?:语言模型|助手)?[，,]?\s*我(?:无法|不能)",
        ),
        "ja": (
            r"申し訳(?:ありません|ございません|ないのですが)(?:が)?[、,]?.{0,40}?(?:できません|いたしかねます|"
            r"お答えできません|お応えできません|対応できません)",
            r"(?:お手伝い|ご協力|お答え|お応え|対応|サポート)(?:することは|は)?(?:でき(?:ません|かねます)|"
            r"いたしかねます)",
            r"(?:その|この|ご)(?:リクエスト|依頼|要望|ご依頼|質問)(?:には|に)(?:お応え|お答え|対応)"
            r"(?:できません|いたしかねます)",
        ),
        "ko": (
            r"죄송(?:하지만|합니다)[,.]?\s*.{0,30}?(?:도와\s?드릴\s?수\s?없|도움을\s?드릴\s?수\s?없|"
            r"제공할\s?수\s?없|응할\s?수\s?없)",
            r"(?:도와|도움을)\s?드릴\s?수\s?없습니다",
        ),
    }
)

#: The languages of the built-in refusal phrases.
REFUSAL_LANGUAGES: tuple[str, ...] = tuple(REFUSAL_PATTERNS)

# A clause starts at the start of the text or after sentence or clause punctuation, once whitespace and
# Markdown/quote decoration are skipped ("**I'm sorry**", "> I can't"). Clause phrases are spaced-script
# phrases, so ASCII punctuation suffices, and an ASCII-only set keeps the engine's scan fast.
_DECORATION = r"[\s*_#>\"\u201c\u00ab]*"
_CLAUSE_PUNCTUATION = r"[.!?;:,\n]"


def _fragment(text: str) -> str:
    """A plain phrase as a regex fragment: lower-cased, escaped, any whitespace, either apostrophe."""
    return r"\s+".join(
        re.escape(w).replace("'", _APOSTROPHE).replace("\u2019", _APOSTROPHE) for w in text.lower().split()
    )


def _source(pattern: str) -> str:
    """A built-in fragment with flexible whitespace and apostrophes."""
    return pattern.replace("'", _APOSTROPHE).replace(" ", r"\s+")


def _closing_paren(source: str, start: int) -> int:
    depth, i, in_class = 0, start, False
    while i < len(source):
        ch = source[i]
        if ch == "\\":
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise ValueError(f"unbalanced pattern {source!r}")


def _split_top(inner: str) -> list[str]:
    parts, depth, current, i, in_class = [], 0, [], 0, False
    while i < len(inner):
        ch = inner[i]
        if ch == "\\":
            current.append(inner[i : i + 2])
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "|" and depth == 0:
            parts.append("".join(current))
            current = []
            i += 1
            continue
        current.append(ch)
        i += 1
    parts.append("".join(current))
    return parts


def expand_leading_groups(source: str) -> list[str]:
    """Split a pattern that opens with ``(?:a|b)`` into patterns that each open with a literal.

    The regular-expression engine skips an alternative in one comparison when it opens with a literal
    character, and scans for candidate positions in C when every alternative does: that is what keeps
    a few dozen phrases cheap on every response.
    """
    if not source.startswith("(?:"):
        return [source]
    close = _closing_paren(source, 0)
    rest = source[close + 1 :]
    if rest[:1] in ("?", "*", "+", "{"):
        raise ValueError(f"pattern {source!r} opens with an optional group")
    expanded: list[str] = []
    for alternative in _split_top(source[3:close]):
        expanded.extend(expand_leading_groups(alternative + rest))
    return expanded


def _starts_spaced_word(text: str) -> bool:
    # Letters below U+2E80 (Latin, Greek, Cyrillic...) belong to scripts that separate words with
    # spaces; CJK text has no word boundaries, so it is searched everywhere instead.
    first = text[:1]
    return first.isalnum() and ord(first) < 0x2E80


def _first_atom(source: str) -> str:
    if source[:1] == "\\":
        return source[:2]
    if source[:1] == "[":
        return source[: source.index("]", 1) + 1]
    return source[:1]


def _alternation(sources: Iterable[str]) -> tuple[str, bool] | None:
    """One alternation of ``sources`` grouped by first character, ``i(?:...|...)|s(?:...)``, and
    whether every alternative opens with a non-ASCII character.

    Every alternative then opens with a literal, so the engine rejects a position with a handful of
    character comparisons instead of trying each phrase.
    """
    groups: dict[str, list[str]] = {}
    for source in sources:
        for expanded in expand_leading_groups(source):
            atom = _first_atom(expanded)
            groups.setdefault(atom, []).append(expanded[len(atom) :])
    if not groups:
        return None
    pattern = "|".join(f"{atom}(?:{'|'.join(rests)})" for atom, rests in groups.items())
    non_ascii = all(not atom.isascii() for atom in groups)
    return pattern, non_ascii


class PhraseMatcher:
    """Finds phrases in lower-cased text, cheaply enough to run on every response.

    Phrases of spaced scripts (``clause``) are tried only where a sentence or clause starts; the
    others (``anywhere``) are searched everywhere. Each is one compiled pattern without
    ``re.IGNORECASE``: the caller lower-cases the text once, which is much faster than a
    case-insensitive alternation. When every ``anywhere`` phrase opens with a non-ASCII character
    (CJK), ASCII text skips that search altogether (``str.isascii`` costs nothing).
    """

    __slots__ = ("_anywhere", "_anywhere_non_ascii", "_clause_inner", "_clause_start")

    def __init__(self, *, clause: Sequence[str] = (), anywhere: Sequence[str] = ()) -> None:
        clause_alt = _alternation(clause)
        anywhere_alt = _alternation(anywhere)
        self._clause_start: re.Pattern[str] | None = None
        self._clause_inner: re.Pattern[str] | None = None
        if clause_alt is not None:
            self._clause_start = re.compile(f"{_DECORATION}(?:{clause_alt[0]})")
            self._clause_inner = re.compile(f"{_CLAUSE_PUNCTUATION}{_DECORATION}(?:{clause_alt[0]})")
        self._anywhere = None if anywhere_alt is None else re.compile(anywhere_alt[0])
        self._anywhere_non_ascii = anywhere_alt is not None and anywhere_alt[1]

    @property
    def empty(self) -> bool:
        """True when there is nothing to match."""
        return self._clause_start is None and self._anywhere is None

    def search(self, lowered: str) -> bool:
        """True when a phrase occurs in ``lowered`` (already lower-cased)."""
        anywhere = self._anywhere
        if (
            anywhere is not None
            and not (self._anywhere_non_ascii and lowered.isascii())
            and anywhere.search(lowered) is not None
        ):
            return True
        if self._clause_start is None or self._clause_inner is None:
            return False
        return self._clause_start.match(lowered) is not None or self._clause_inner.search(lowered) is not None


def refusal_matcher(languages: Iterable[str], extra_phrases: Iterable[str] = ()) -> PhraseMatcher:
    """The matcher of the built-in refusal patterns of ``languages`` plus plain ``extra_phrases``.

    Raises KeyError for an unknown language.
    """
    clause: list[str] = []
    anywhere: list[str] = []
    for lang in languages:
        target = clause if lang in _SPACED else anywhere
        target.extend(_source(fragment) for fragment in REFUSAL_PATTERNS[lang])
    for phrase in extra_phrases:
        text = phrase.strip().lower()
        if text:
            (clause if _starts_spaced_word(text) else anywhere).append(_fragment(text))
    return PhraseMatcher(clause=clause, anywhere=anywhere)


def phrase_matcher(phrases: Iterable[str]) -> PhraseMatcher:
    """A matcher that finds any of the plain ``phrases`` anywhere in the text."""
    return PhraseMatcher(anywhere=[_fragment(p) for p in phrases if p.strip()])
