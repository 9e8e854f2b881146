"""Pure extraction helpers shared by the response readers of every client library.

The OpenAI and Anthropic readers (SDK objects) and the HTTP path (decoded JSON) read responses with
these. Every helper reads defensively: a field the installed SDK version lacks, or a value of an
unexpected type, yields None (or nothing) rather than an exception, since instrumentation must never
break the call it watches. :func:`field` reads attributes and mapping keys alike, so one reader
serves pydantic objects and JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from opentelemetry.util.types import AttributeValue

from otel_prompt_canary import names
from otel_prompt_canary.instrumentation._tags import remember

__all__ = ["as_float", "as_int", "as_str", "field", "server_attributes", "server_of"]

# Whether a type is a Mapping, per type: ``isinstance(obj, Mapping)`` walks the ABC machinery, and
# a response is read a dozen fields at a time. Bounded like every cache of this package.
_IS_MAPPING: Final[dict[type, bool]] = {dict: True}
# The server attributes of a client's base URL, per URL object (kept, so that its id stays unique).
_SERVERS: Final[dict[int, tuple[object, dict[str, AttributeValue]]]] = {}


def field(obj: object, name: str) -> Any:
    """``obj.name`` or ``obj[name]``; None when absent."""
    kind = type(obj)
    mapping = _IS_MAPPING.get(kind)
    if mapping is None:
        mapping = remember(_IS_MAPPING, kind, isinstance(obj, Mapping))
    if mapping:
        return obj.get(name)  # type: ignore[attr-defined]
    return getattr(obj, name, None)


def as_str(value: object) -> str | None:
    """``value`` if it is a string, else None."""
    return value if isinstance(value, str) else None


def as_int(value: object) -> int | None:
    """``value`` if it is an integer (not a bool), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def as_float(value: object) -> float | None:
    """``value`` as a float if it is an integer or a float (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def server_attributes(instance: object) -> dict[str, AttributeValue]:
    """``server.address``/``server.port`` of the client behind a resource (``instance._client``).

    Read once per base URL object (a client's URL is replaced, not changed, when it is set); the
    result is a fresh dict the caller may extend.
    """
    url = getattr(getattr(instance, "_client", None), "base_url", None)
    if url is None:
        return {}
    cached = _SERVERS.get(id(url))
    if cached is not None and cached[0] is url:
        return dict(cached[1])
    return dict(remember(_SERVERS, id(url), (url, server_of(url)))[1])


def server_of(url: object) -> dict[str, AttributeValue]:
    """``server.address``/``server.port`` of an ``httpx.URL`` (or alike); empty without a host."""
    host = getattr(url, "host", None)
    if not isinstance(host, str) or not host:
        return {}
    result: dict[str, AttributeValue] = {names.SERVER_ADDRESS: host}
    port = getattr(url, "port", None)
    if isinstance(port, int):
        result[names.SERVER_PORT] = port
    return result
