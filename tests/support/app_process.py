"""The canary test application (``tests/collector/canary_app.py``) in a subprocess.

It runs under ``opentelemetry-instrument``, stops when its stop file appears and prints a JSON summary
as its last line of output. The end-to-end suites (Collector, Prometheus) drive it alike.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

__all__ = ["APP", "AppProcess", "running_app"]

APP = Path(__file__).parents[1] / "collector" / "canary_app.py"


@dataclass
class AppProcess:
    """The running application and the files it writes."""

    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path
    stop_file: Path

    def stderr_tail(self, chars: int = 3000) -> str:
        return self.stderr.read_text(errors="replace")[-chars:]

    def wait_for(
        self, condition: Callable[[], bool], timeout: float, what: str, diagnostics: Callable[[], str]
    ) -> float:
        """Seconds until ``condition`` held; fails with ``diagnostics()`` after ``timeout`` or when
        the application exits first."""
        begin = time.monotonic()
        while not condition():
            if self.process.poll() is not None:
                pytest.fail(f"the application exited while waiting for {what}\n{diagnostics()}")
            if time.monotonic() - begin > timeout:
                pytest.fail(f"{what} did not happen within {timeout:.0f} s\n{diagnostics()}")
            time.sleep(0.05)
        return time.monotonic() - begin

    def stop(self, diagnostics: Callable[[], str]) -> dict[str, Any]:
        """Stop the application; its summary: calls by ``<routing state>/<cohort>/<version>``."""
        self.stop_file.touch()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
            pytest.fail(f"the application did not stop\n{diagnostics()}")
        assert self.process.returncode == 0, self.stderr_tail(4000)
        summary: dict[str, Any] = json.loads(self.stdout.read_text().strip().splitlines()[-1])
        return summary


@contextmanager
def running_app(environment: Mapping[str, str], workdir: Path, stop_file: Path) -> Iterator[AppProcess]:
    """The application under ``opentelemetry-instrument`` with ``environment``; stopped on exit.

    ``stop_file`` must be the file the environment names (``APP_STOP_FILE``).
    """
    stdout, stderr = workdir / "app.out", workdir / "app.err"
    instrument = Path(sys.executable).parent / "opentelemetry-instrument"
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        process = subprocess.Popen(
            [str(instrument), sys.executable, str(APP)], env=dict(environment), stdout=out, stderr=err
        )
    app = AppProcess(process, stdout, stderr, stop_file)
    try:
        yield app
    finally:
        if process.poll() is None:
            stop_file.touch()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
