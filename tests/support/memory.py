"""The memory of a process, read from ``/proc/<pid>/status`` (Linux), for tests that bound it::

before = resident_kib(process.pid)
...
assert peak_kib(process.pid) - before < 100 * 1024
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["peak_kib", "resident_kib"]


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def resident_kib(pid: int) -> int:
    """The resident memory of process ``pid`` now, in KiB (``VmRSS``)."""
    return _status_kib(pid, "VmRSS")


def peak_kib(pid: int) -> int:
    """The largest resident memory process ``pid`` has had, in KiB (``VmHWM``)."""
    return _status_kib(pid, "VmHWM")
