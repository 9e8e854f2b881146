"""The cursors of the control plane's paged lists, shared by the service and its client.

To users a cursor is opaque: they pass back what a ``Link`` header gave them. Inside the package,
a cursor is the base64url of ``<kind>.<key>``: the kind of list (:data:`ALERTS`, :data:`AUDIT`,
:data:`VERSIONS`, :data:`PROMPTS`) and the key the page ends before (a record id or a version) or
starts after (a prompt name), so that :class:`~otel_prompt_canary.routing.remote.RemoteRegistry`
can ask for the page before a given record as a local store does.
"""

from __future__ import annotations

import base64
import binascii

__all__ = ["ALERTS", "AUDIT", "PROMPTS", "VERSIONS", "decode_cursor", "encode_cursor"]

ALERTS = "a"
AUDIT = "h"
VERSIONS = "v"
PROMPTS = "p"


def encode_cursor(kind: str, key: int | str) -> str:
    """The cursor of the page that ends before (or starts after) ``key`` in a list of ``kind``."""
    return base64.urlsafe_b64encode(f"{kind}.{key}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str, kind: str) -> str | None:
    """The key a cursor of ``kind`` carries, or None when it is not one (malformed, another kind)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        found_kind, sep, key = raw.decode("utf-8").partition(".")
    except (binascii.Error, ValueError):
        return None
    return key if sep and found_kind == kind else None
