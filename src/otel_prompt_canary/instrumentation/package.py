"""The client libraries this instrumentation patches, and the version ranges it supports.

This is the one place that says which versions are supported. A library that is missing, or installed
in a version outside its range, is skipped with a log line; the others are still patched. The
instrumentor declares no hard dependency (:data:`_instruments` is empty), so that
``opentelemetry-instrument`` loads it whatever subset of the libraries an application uses.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

__all__ = ["LIBRARIES", "_instruments", "library_problem"]

#: Library key -> requirement (distribution name and supported range).
LIBRARIES: Final = MappingProxyType(
    {
        "openai": "openai >= 1.40, < 4",
        "anthropic": "anthropic >= 0.40, < 3",
        "httpx": "httpx >= 0.27, < 1",
        "httpx2": "httpx2 >= 2, < 3",
        "requests": "requests >= 2.28, < 3",
    }
)

#: What :meth:`BaseInstrumentor.instrumentation_dependencies` returns: none is required.
_instruments: tuple[str, ...] = ()


def library_problem(key: str) -> str | None:
    """Why library ``key`` cannot be patched (missing, or outside its range); None when it can."""
    from importlib.metadata import PackageNotFoundError, version

    from packaging.requirements import Requirement

    requirement = Requirement(LIBRARIES[key])
    try:
        installed = version(requirement.name)
    except PackageNotFoundError:
        return f"{requirement.name} is not installed"
    if not requirement.specifier.contains(installed, prereleases=True):
        return f"{requirement.name} {installed} is outside the supported range {requirement.specifier}"
    return None
