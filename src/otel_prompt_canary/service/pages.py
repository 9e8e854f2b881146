"""Pages of the lists the API serves: a page size, an opaque cursor, and a ``Link`` to the next page.

Every list endpoint takes ``limit`` (default :data:`DEFAULT_PAGE_SIZE`, at most
:data:`MAX_PAGE_SIZE`) and ``cursor``. A page that is not the last one carries the header
``Link: <...>; rel="next"`` (RFC 8288), the URL of the next page; the last page has none. The body
stays a JSON list, so a client that reads one page reads it as before.

Logs and versions (alerts, audit records, prompt versions, drift alerts) come newest page first:
the first page holds the newest ``limit`` records, the next one those just before them, and so on;
within a page, records are oldest first. Prompts (and the drift monitoring of each) and datasets
come by name. Evaluation runs come in the order asked (newest first by default), page after page.
Cursors are opaque (a client passes them back as they are) and stay valid while records are added:
a page never repeats or skips a record because newer ones arrived.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode

from fastapi import Depends, Query, Request, Response

from otel_prompt_canary.cursors import decode_cursor, encode_cursor
from otel_prompt_canary.errors import InvalidInputError
from otel_prompt_canary.registry.models import validate_prompt_name

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "PAGE_RESPONSE",
    "Page",
    "PageDep",
    "link_next",
]

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
#: The largest record id or version a cursor may carry: what the stores hold (signed 64 bits).
_MAX_KEY = 2**63 - 1

_T = TypeVar("_T")

#: The OpenAPI description of a page's answer: its ``Link`` header.
PAGE_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "One page; the Link header names the next one, when there is one",
        "headers": {
            "Link": {
                "description": 'The next page: <URL>; rel="next" (absent on the last page)',
                "schema": {"type": "string"},
            }
        },
    }
}


@dataclass(frozen=True, slots=True)
class Page:
    """What the client asked for: a page size and where to start (an opaque cursor, or the start)."""

    limit: int
    cursor: str | None

    def before(self, kind: str) -> int | None:
        """The record id (or version) the page ends before, or None for the first page."""
        key = self._key(kind)
        if key is None:
            return None
        if not key.isascii() or not key.isdigit() or not 1 <= int(key) <= _MAX_KEY:
            raise self._invalid()
        return int(key)

    def after(self, kind: str) -> str | None:
        """The prompt name the page starts after, or None for the first page."""
        return self.key(kind, validate_prompt_name)

    def key(self, kind: str, parse: Callable[[str], _T | None]) -> _T | None:
        """The key the page starts after, read by ``parse`` (None, or an
        :class:`~otel_prompt_canary.errors.InvalidInputError`, for a key that is not one), or None
        for the first page."""
        key = self._key(kind)
        if key is None:
            return None
        try:
            found = parse(key)
        except InvalidInputError:
            found = None
        if found is None:
            raise self._invalid()
        return found

    def _key(self, kind: str) -> str | None:
        if self.cursor is None:
            return None
        key = decode_cursor(self.cursor, kind)
        if key is None:
            raise self._invalid()
        return key

    @staticmethod
    def _invalid() -> InvalidInputError:
        return InvalidInputError(
            "invalid cursor: pass the cursor of a Link header of this list as it is, or leave it out "
            "for the first page"
        )


async def _page(
    limit: Annotated[
        int,
        Query(ge=1, le=MAX_PAGE_SIZE, description=f"Records per page (default {DEFAULT_PAGE_SIZE})"),
    ] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=400,
            pattern=r"^[A-Za-z0-9_-]+$",
            description="Where the page starts: the cursor of the previous page's Link header",
        ),
    ] = None,
) -> Page:
    return Page(limit=limit, cursor=cursor)


PageDep = Annotated[Page, Depends(_page)]


def link_next(
    request: Request,
    response: Response,
    items: Sequence[_T],
    page: Page,
    kind: str,
    key: Callable[[_T], int | str],
    *,
    newest_first: bool,
) -> list[_T]:
    """The page to answer, from ``items`` read with one record more than ``page.limit``.

    ``items`` are oldest first (or by name); when there is one more than the page holds, the extra
    one says that a next page exists: it is left out and the ``Link`` header set. ``newest_first``
    pages go back in time (the extra record is the oldest), the others forward.
    """
    if len(items) <= page.limit:
        return list(items)
    kept = list(items[1:]) if newest_first else list(items[: page.limit])
    boundary = kept[0] if newest_first else kept[-1]
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in ("cursor", "limit")]
    params += [("limit", str(page.limit)), ("cursor", encode_cursor(kind, key(boundary)))]
    response.headers["Link"] = f'<{request.url.path}?{urlencode(params)}>; rel="next"'
    return kept
