"""Reading the control plane's lists, which come a page at a time.

Every list of the API answers ``limit`` records at most (1000) and names the next page in its
``Link: <...>; rel="next"`` header (docs/control-plane.md#pages). :func:`read_pages` follows those
links until it holds what the caller asked for: every record, or ``limit`` of them. The clients of
the control plane (:class:`~otel_prompt_canary.routing.remote.RemoteRegistry`,
:class:`~otel_prompt_canary.evals.remote.RemoteEvalStore`, the CLI's drift commands) read their
lists through it::

    pages = read_pages(client, "/v1/alerts", parse, limit=500)   # the pages read, in order
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final, TypeVar
from urllib.parse import parse_qs, urlsplit

from otel_prompt_canary.routing.control_plane import Answer, ControlPlaneClient

__all__ = ["PAGE_SIZE", "next_cursor", "read_pages"]

#: Records asked for per page: the control plane's largest page.
PAGE_SIZE: Final = 1000

_T = TypeVar("_T")


def next_cursor(answer: Answer) -> str | None:
    """The cursor of the page after ``answer``, from its ``Link: <...>; rel="next"`` header."""
    for link in (answer.headers.get("Link") or "").split(","):
        target, _, params = link.strip().partition(";")
        if target.startswith("<") and target.endswith(">") and 'rel="next"' in params.replace(" ", ""):
            found = parse_qs(urlsplit(target[1:-1]).query).get("cursor")
            return found[0] if found else None
    return None


def read_pages(
    client: ControlPlaneClient,
    path: str,
    parse: Callable[[Answer], list[_T]],
    *,
    query: Mapping[str, str | int] | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> list[list[_T]]:
    """The pages of the list at ``path`` (filtered by ``query``), from ``cursor`` (the first page
    when None), in the order read, until they hold ``limit`` records (every record when None).

    ``parse`` reads the records of one answer (raising the client's ``unexpected`` error for an
    answer it cannot read).
    """
    pages: list[list[_T]] = []
    held = 0
    while limit is None or held < limit:
        asked: dict[str, str | int] = dict(query or {})
        asked["limit"] = PAGE_SIZE if limit is None else min(PAGE_SIZE, limit - held)
        if cursor is not None:
            asked["cursor"] = cursor
        answer = client.request("GET", path, query=asked)
        page = parse(answer)
        pages.append(page)
        held += len(page)
        cursor = next_cursor(answer)
        if cursor is None or not page:
            break
    return pages
