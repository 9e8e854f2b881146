"""The version of the instrumentation: the package's own version."""

from otel_prompt_canary._version import __version__

__all__ = ["__version__"]
