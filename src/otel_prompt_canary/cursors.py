"""The cursors of the control plane's paged lists, shared by the service and its client.

To users a cursor is opaque: they pass back what a ``Link`` header gave them. Inside the package,
a cursor is the base64url of ``<kind>.<key>``: the kind of list (:data:`ALERTS`, :data:`AUDIT`,
:data:`VERSIONS`, :data:`PROMPTS`, :data:`DRIFT_ALERTS`, :data:`DATASETS`, :data:`RUNS`,
:data:`REVIEWS`) and the
key the page ends before (a record id or a version) or starts after (a prompt or dataset name, an
evaluation run's :func:`run_key`), so that the clients
(:class:`~otel_prompt_canary.routing.remote.RemoteRegistry`,
:class:`~otel_prompt_canary.evals.remote.RemoteEvalStore`) can ask for the page next to a given
record as a local store does.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime, timedelta

__all__ = [
    "ALERTS",
    "AUDIT",
    "DATASETS",
    "DRIFT_ALERTS",
    "PROMPTS",
    "REVIEWS",
    "RUNS",
    "VERSIONS",
    "decode_cursor",
    "encode_cursor",
    "parse_run_key",
    "run_key",
]

ALERTS = "a"
AUDIT = "h"
VERSIONS = "v"
PROMPTS = "p"
DRIFT_ALERTS = "d"
DATASETS = "s"
RUNS = "r"
REVIEWS = "w"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_RUN_KEY = re.compile(r"^(-?[0-9]{1,20})\.([0-9a-f]{8,64})$")


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


def run_key(finished_at: datetime, run_id: str) -> str:
    """The key of an evaluation run in the lists of runs, which are ordered by when runs finished,
    then by id: ``<microseconds since 1970>.<run id>``."""
    return f"{(finished_at - _EPOCH) // _MICROSECOND}.{run_id}"


def parse_run_key(key: str) -> tuple[datetime, str] | None:
    """When the run of a :func:`run_key` finished (UTC) and its id; None when ``key`` is not one."""
    found = _RUN_KEY.fullmatch(key)
    if found is None:
        return None
    try:
        return _EPOCH + int(found.group(1)) * _MICROSECOND, found.group(2)
    except OverflowError:
        return None
