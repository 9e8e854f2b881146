"""The canary test application (``tests/collector/canary_app.py``) in a subprocess.

It runs under ``opentelemetry-instrument``, stops when its stop file appears and prints a JSON summary
as its last line of output. The end-to-end suites (Collector, Prometheus) drive it alike: the same
prompt, whose canary version asks for longer answers (:func:`start_canary_rollout`), and the same
settings (:func:`app_environment`) beside their own telemetry exporters. As the LLM judge
(:data:`JUDGE_MODEL`), the simulated LLM grades the canary's long-winded answers lower
(:func:`grade_long_answers_lower`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from otel_prompt_canary.demo.behaviour import ModelRequest, Reply
from tests.support.auth import AUTH

__all__ = [
    "APP",
    "CANARY_SYSTEM",
    "JUDGE_MODEL",
    "PROMPT",
    "STABLE_SYSTEM",
    "AppProcess",
    "app_environment",
    "grade_long_answers_lower",
    "run_instrumented",
    "running_app",
    "start_canary_rollout",
]

APP = Path(__file__).parents[1] / "collector" / "canary_app.py"
#: The ``opentelemetry-instrument`` of this virtualenv.
INSTRUMENT = Path(sys.executable).parent / "opentelemetry-instrument"

#: The application's prompt, and the system message of its stable and canary versions.
PROMPT = "support-reply"
STABLE_SYSTEM = "You are the support assistant of ACME. Reply with one JSON object: topic, answer, escalate."
CANARY_SYSTEM = (
    "You are the warm and thorough support assistant of ACME. Explain every step. "
    "Reply with one JSON object: topic, answer, escalate."
)


#: The LLM judge's model: a rule of the simulated LLM answers its requests with a grade.
JUDGE_MODEL = "sim-judge"


def grade_long_answers_lower(request: ModelRequest) -> Reply:
    """The judge's grade: 0.5 for the canary's long-winded answers, 0.9 for the others."""
    graded = " ".join(text for _, text in request.messages)
    return Reply.json({"score": 0.5 if "I completely understand" in graded else 0.9})


def start_canary_rollout(http: httpx.Client, **rollout: Any) -> str:
    """Push the stable and the canary version of :data:`PROMPT` to the control plane ``http`` talks
    to, and start a rollout of the canary (``rollout``: more fields of the request, a ramp or a
    policy); returns the rollout's id."""
    for system in (STABLE_SYSTEM, CANARY_SYSTEM):
        spec = {
            "name": PROMPT,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": "{{ question }}"},
            ],
        }
        pushed = http.post("/v1/prompts", json=spec, headers=AUTH)
        assert pushed.status_code == 201, pushed.text
    started = http.post(
        f"/v1/prompts/{PROMPT}/rollouts",
        json={"version": 2, "reason": "warmer answers", **rollout},
        headers=AUTH,
    )
    assert started.status_code == 201, started.text
    rollout_id: str = started.json()["rollout_id"]
    return rollout_id


def app_environment(
    *, llm_url: str, control_plane: str, stop_file: Path, rate: int, max_seconds: int, **telemetry: str
) -> dict[str, str]:
    """The application's environment: this process's without ``OTEL_*`` and ``PYTHONPATH``, its own
    settings, and ``telemetry`` (the ``OTEL_*`` variables of the suite's exporters)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PYTHONPATH"))}
    return env | {
        "APP_LLM_URL": llm_url,
        "APP_CONTROL_PLANE": control_plane,
        "APP_PROMPT": PROMPT,
        "APP_STOP_FILE": str(stop_file),
        "APP_RATE": str(rate),
        "APP_MAX_SECONDS": str(max_seconds),
        **telemetry,
    }


@dataclass
class AppProcess:
    """The running application and the files it writes."""

    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path
    stop_file: Path

    def stderr_tail(self, chars: int = 3000) -> str:
        return self.stderr.read_text(errors="replace")[-chars:]

    def check_running(self) -> None:
        """Fail if the application has exited: pass it as ``between`` to
        :func:`~tests.support.waiting.eventually` while waiting on what it does."""
        assert self.process.poll() is None, f"the application exited ({self.process.returncode})"

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
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        process = subprocess.Popen(
            [str(INSTRUMENT), sys.executable, str(APP)], env=dict(environment), stdout=out, stderr=err
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


def run_instrumented(
    script: Path, environment: Mapping[str, str], *, timeout: float = 120, cwd: Path | None = None
) -> str:
    """Run ``script`` to its end under ``opentelemetry-instrument`` (in ``cwd``, when given); fail
    unless it exits 0.

    Returns its standard output.
    """
    done = subprocess.run(
        [str(INSTRUMENT), sys.executable, str(script)],
        cwd=cwd,
        env=dict(environment),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout
