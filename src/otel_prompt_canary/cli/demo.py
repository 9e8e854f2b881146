"""``prompt-canary demo``: the whole loop in about a minute, on loopback and a temporary registry.

Needs the ``demo`` extra; exits 1 when it is missing or when the rollout ends otherwise than expected.
"""

from __future__ import annotations

from pathlib import Path

import click

from otel_prompt_canary.cli.group import CommandFailed

__all__ = ["demo"]


@click.command()
@click.option(
    "--healthy", is_flag=True, help="A candidate as good as stable: watch it walk the ramp to 100%."
)
@click.option(
    "--drift",
    is_flag=True,
    help="After a clean promotion the simulated provider changes its model: watch drift monitoring "
    "catch it (exits 1 if it does not).",
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, writable=True),
    default=".prompt-canary/demo-report.html",
    show_default=True,
    help="Where to write the HTML report.",
)
@click.option(
    "--time-scale",
    type=click.FloatRange(min=1, max=600),
    default=6.0,
    show_default=True,
    help="Policy durations run this many times faster (the demo policy's steps last 60 s).",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=5, max=1000),
    default=80.0,
    show_default=True,
    help="LLM calls per second the demo application makes.",
)
def demo(healthy: bool, drift: bool, report_path: str, time_scale: float, rate: float) -> None:
    """Watch the whole loop in about a minute, on loopback and a temporary registry.

    A candidate prompt that silently breaks JSON for billing and refund questions is canaried on
    live (simulated) traffic; the controller's sequential judge rolls it back. With --healthy, the
    candidate is as good as stable and is promoted. With --drift, it is promoted, then the provider
    changes its model behind the same name and drift monitoring catches it. Exits 1 if the demo
    ends otherwise.
    """
    from otel_prompt_canary.demo.run import missing_modules, run_demo

    # Checked before anything starts: the demo imports these only once its servers are up.
    missing = missing_modules()
    if missing:
        raise CommandFailed(
            f"the demo needs the demo extra ({', '.join(missing)} missing): "
            "pip install 'otel-prompt-canary[demo]'",
            1,
        )
    expected = "drift_detected" if drift else "promoted" if healthy else "rolled_back"
    result = run_demo(
        healthy=healthy,
        drift=drift,
        report_path=Path(report_path),
        time_scale=time_scale,
        calls_per_second=rate,
    )
    if result.outcome != expected:
        raise CommandFailed(f"the demo ended {result.outcome}, not {expected}", 1)
