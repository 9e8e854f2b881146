"""What the store can hold: the range of its integers, the text it can store, the size of a version.

Both stores (SQLite and PostgreSQL) keep integers in 64 bits, signed: a larger count, revision or
window start is refused here, with a precise message, rather than by the database (which would
fail the request with an internal error). A version number is a PostgreSQL ``INTEGER``, so at most
:data:`MAX_VERSION`, and is written with ASCII digits only (``str.isdigit`` also accepts ``²`` and
``\u0661``, the Arabic-Indic one, which ``int()`` would read as 2 and 1).

Text is stored as UTF-8, and PostgreSQL refuses the NUL character in text: a lone surrogate
(``\\ud800``, which JSON can spell but UTF-8 cannot) or a NUL, anywhere in a name, a template, a
reason or a key or value of a JSON document, is refused by :func:`check_storable`, which names
where it is. So are NaN and the infinities, which JSON cannot hold. Messages never echo such text
as it is: it is shown escaped (``'a\\ud800'``).

A version's ``config``, ``tools`` and output ``schema`` are bounded like its template
(:func:`check_spec_size`), on a local store as behind the control plane.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Final

from otel_prompt_canary.errors import InvalidInputError, TooLargeError

if TYPE_CHECKING:
    from otel_prompt_canary.registry.models import PromptSpec

__all__ = [
    "MAX_INTEGER",
    "MAX_VERSION",
    "check_integer",
    "check_spec_size",
    "check_storable",
    "parse_version",
    "shown",
    "storable_problem",
]

#: The largest integer either store holds (SQLite ``INTEGER``, PostgreSQL ``BIGINT``): 2**63 - 1.
MAX_INTEGER: Final = 2**63 - 1
#: The largest version number (a PostgreSQL ``INTEGER``): 2**31 - 1.
MAX_VERSION: Final = 2**31 - 1

_VERSION = re.compile(r"[0-9]{1,10}")


def parse_version(text: str) -> int | None:
    """A version as written in a path or on the command line: ``1``..``2147483647``, or ``latest`` (None).

    Only ASCII digits count. Raises :class:`InvalidInputError` otherwise.
    """
    if text == "latest":
        return None
    if _VERSION.fullmatch(text) and 1 <= int(text) <= MAX_VERSION:
        return int(text)
    return _refuse_version(text)


def _refuse_version(text: str) -> int:
    raise InvalidInputError(
        f"invalid version {shown(text[:40])}: give a number from 1 to {MAX_VERSION} in ASCII digits, "
        "or 'latest'"
    )


def check_integer(value: int, what: str, *, low: int = -MAX_INTEGER - 1, high: int = MAX_INTEGER) -> int:
    """``value`` when it is within ``[low, high]`` (by default the store's 64-bit range), else
    :class:`InvalidInputError` naming ``what``."""
    if not low <= value <= high:
        raise InvalidInputError(f"{what} {value} is out of range: it must be from {low} to {high}")
    return value


def shown(text: str) -> str:
    """``text`` quoted for a message, escaped when it holds what a message must not carry as it is."""
    if text.isprintable() and _encodes(text):
        return repr(text)
    return ascii(text)


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _text_problem(text: str) -> tuple[str, str] | None:
    """What in ``text`` cannot be stored, and what to do about it; None when it all can."""
    nul = text.find("\x00")
    try:
        text.encode("utf-8")
        bad = -1
    except UnicodeEncodeError as exc:
        bad = exc.start
    if nul < 0 and bad < 0:
        return None
    if bad >= 0 and (nul < 0 or bad < nul):
        return f"a lone surrogate (U+{ord(text[bad]):04X}) at character {bad}", "it is not valid Unicode text"
    return f"a NUL character (U+0000) at character {nul}", "remove it"


def _join(path: str, key: object) -> str:
    if isinstance(key, int) or (isinstance(key, str) and key.isidentifier()):
        part = str(key)
    else:
        part = shown(str(key)[:40])
    return f"{path}.{part}" if path else part


def _find(value: object) -> tuple[str, str] | None:
    """Where in ``value`` (a path, "" for the value itself) something cannot be stored, and why."""
    stack: list[tuple[str, object]] = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            problem = _text_problem(item)
            if problem is not None:
                return path, f"{problem[0]} cannot be stored: {problem[1]}"
        elif isinstance(item, float):
            if not math.isfinite(item):
                return path, f"{item} is not a JSON number: NaN and infinities cannot be stored"
        elif isinstance(item, Mapping):
            for key, child in reversed(list(item.items())):
                if isinstance(key, str) and (problem := _text_problem(key)) is not None:
                    found, remedy = problem
                    return path, f"the key {shown(key[:40])} has {found}, which cannot be stored: {remedy}"
                stack.append((_join(path, key), child))
        elif isinstance(item, Sequence) and not isinstance(item, bytes | bytearray):
            stack.extend((_join(path, i), child) for i, child in reversed(list(enumerate(item))))
    return None


def storable_problem(value: object, what: str = "") -> str | None:
    """Why ``value`` cannot be stored, and where in it (``what`` names ``value`` itself); None when
    it can.

    ``value`` is text or a JSON value (mappings, sequences, text, numbers, booleans, None).
    """
    found = _find(value)
    if found is None:
        return None
    path, why = found
    where = ".".join(part for part in (what, path) if part)
    return f"{where}: {why}" if where else why


def check_storable(value: object, what: str = "") -> None:
    """Raise :class:`InvalidInputError` (HTTP 422) when ``value`` cannot be stored, naming ``what``
    and where in it (see :func:`storable_problem`)."""
    problem = storable_problem(value, what)
    if problem is not None:
        raise InvalidInputError(problem)


def check_spec_size(spec: PromptSpec, limit: int) -> None:
    """Refuse (:class:`TooLargeError`, HTTP 413) a spec whose template, ``config``, ``tools`` or
    output ``schema`` is over ``limit`` bytes (UTF-8 text; canonical JSON for the documents)."""
    for what, size in spec.sizes().items():
        if size > limit:
            raise TooLargeError(f"{what} of {spec.name!r} is {size} bytes, over the limit of {limit} bytes")
