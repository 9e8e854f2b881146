"""``prompt-canary eval``: run a golden set through a prompt version, list and show the runs.

``eval run`` calls the version's model through the real SDK, case by case (docs/evaluations.md),
stores the run beside the version, prints its signals and failed cases, and compares it case by
case with its baseline run (the stable version's, for a candidate), naming the cases that got
worse. With ``--policy``, the policy's gate judges it as ``rollout start`` will. Exit codes: 0 the
run is complete (and passes the gate, when one was given); 1 it is incomplete or does not pass.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from otel_prompt_canary.analysis.policy import Gate, load_policy
from otel_prompt_canary.cli.dataset import parse_dataset_ref
from otel_prompt_canary.cli.eval_store import eval_store
from otel_prompt_canary.cli.files import load_policy_document, naming_the_file
from otel_prompt_canary.cli.group import (
    CommandFailed,
    Group,
    State,
    common_options,
    default_actor,
    fail_input,
)
from otel_prompt_canary.cli.output import format_table, print_json, time_text
from otel_prompt_canary.errors import InvalidInputError
from otel_prompt_canary.evals.baselines import baseline_run
from otel_prompt_canary.evals.comparison import RunComparison, compare_runs
from otel_prompt_canary.evals.environment import eval_settings
from otel_prompt_canary.evals.gate import GateVerdict, gate_verdict
from otel_prompt_canary.evals.providers import PROVIDERS, provider_for
from otel_prompt_canary.evals.report import html_report
from otel_prompt_canary.evals.results import EvalRun
from otel_prompt_canary.evals.runner import run_evaluation
from otel_prompt_canary.evals.store import EvalStore
from otel_prompt_canary.instrumentation import InstrumentationConfig
from otel_prompt_canary.registry.base import Registry
from otel_prompt_canary.registry.bounds import parse_version, shown
from otel_prompt_canary.registry.models import PromptVersion, validate_prompt_name

__all__ = ["comparison_lines", "eval_group"]

#: Failed cases listed in the text output; the HTML report and --json have them all.
_FAILED_SHOWN = 20
_DEFAULT_JUDGE_ENDPOINT = "https://api.openai.com/v1"


@click.group("eval", cls=Group)
def eval_group() -> None:
    """Evaluate prompt versions on golden sets; list and show the runs (docs/evaluations.md)."""


def _version(registry: Registry, name: str, text: str) -> PromptVersion:
    """VERSION as the command takes it: a number, ``latest``, ``stable`` or ``canary``."""
    if text in ("stable", "canary"):
        route = registry.get_route(name)
        number = route.stable_version if text == "stable" else route.canary_version
        if number is None or (text == "canary" and not route.state.active):
            fail_input(f"{name} has no canary now: give a version number")
        return registry.get_version(name, number)
    try:
        return registry.get_version(name, parse_version(text))
    except InvalidInputError:
        fail_input(f"invalid version {shown(text)}: give a number, latest, stable or canary")


def _percent(value: float) -> str:
    return f"{value:.1%}"


def _signal_rows(run: EvalRun) -> list[tuple[str, str]]:
    totals = run.totals
    rows = [("pass", f"{_percent(totals.pass_rate)} ({totals.passed}/{totals.cases})")]
    rows += [(n, f"{_percent(t.rate)} ({t.passed}/{t.applied})") for n, t in totals.checks.items()]
    if totals.judge_mean is not None:
        rows.append(("judge (mean)", f"{totals.judge_mean:.2f} (n={totals.judged})"))
    return rows


def comparison_lines(comparison: RunComparison, *, title: str) -> list[str]:
    """The comparison as text: a title, a table of signals, the cases that got worse."""
    lines = [title]
    rows = []
    for s in comparison.signals:
        if s.kind == "proportion":
            values = (_percent(s.baseline), _percent(s.candidate), f"{s.change * 100:+.1f} pts")
        else:
            values = (f"{s.baseline:.2f}", f"{s.candidate:.2f}", f"{s.change:+.2f}")
        rows.append((s.signal, *values, s.worse, s.better, f"{s.p_value:.3g}", s.test))
    headers = ("SIGNAL", "BASELINE", "THIS RUN", "CHANGE", "WORSE", "BETTER", "P", "TEST")
    lines.append(format_table(headers, rows) if rows else "(no case completed in both runs)")
    worse = comparison.worse_cases
    lines.append(f"cases that got worse: {', '.join(worse) if worse else 'none'}")
    return lines


def _run_lines(run: EvalRun, comparison: RunComparison | None, gate: GateVerdict | None) -> list[str]:
    totals = run.totals
    lines = [
        f"{run.ref}: {totals.passed} of {totals.cases} cases passed, {totals.failed} failed, "
        f"{totals.errors} errors (run {run.run_id}, {run.status})",
        f"model {run.model} ({run.provider}), {sum(c.attempts for c in run.cases)} calls"
        + (f"; {run.note}" if run.note else ""),
        "",
        format_table(("SIGNAL", "VALUE"), _signal_rows(run)),
    ]
    failed = [c for c in run.cases if c.status != "passed"]
    if failed:
        rows = [(c.case_id, c.status, "; ".join(c.failures) or "-") for c in failed[:_FAILED_SHOWN]]
        lines += ["", format_table(("CASE", "OUTCOME", "WHAT FAILED"), rows)]
        if len(failed) > _FAILED_SHOWN:
            lines.append(f"... and {len(failed) - _FAILED_SHOWN} more (--html or --json list them all)")
    if comparison is not None:
        base = comparison.baseline
        title = (
            f"Compared with {base.prompt}@{base.version} (run {base.run_id}), {comparison.paired_cases} "
            "cases paired; one-sided tests of a drop:"
        )
        lines += ["", *comparison_lines(comparison, title=title)]
    if gate is not None:
        lines += ["", f"gate (--policy): {gate.explain()}"]
    return lines


def _instrumentation_config(
    checks: str | None,
    scoring: str | None,
    judge_endpoint: str | None,
    judge_model: str | None,
    judge_key: str | None,
) -> InstrumentationConfig:
    overrides: dict[str, Any] = {}
    if checks is not None:
        overrides["checks"] = tuple(c.strip() for c in checks.split(",") if c.strip() and c.strip() != "none")
    if scoring is not None:
        overrides["scoring"] = scoring
    if judge_model is not None:
        overrides["judge_model"] = judge_model
        # A judge model alone: the same OpenAI-compatible endpoint and key as the SDK's.
        endpoint = judge_endpoint or os.environ.get("OTEL_PROMPT_CANARY_JUDGE_ENDPOINT")
        overrides["judge_endpoint"] = endpoint or os.environ.get("OPENAI_BASE_URL") or _DEFAULT_JUDGE_ENDPOINT
        if judge_key is None and not os.environ.get("OTEL_PROMPT_CANARY_JUDGE_API_KEY_ENV"):
            judge_key = "OPENAI_API_KEY" if os.environ.get("OPENAI_API_KEY") else None
    elif judge_endpoint is not None:
        overrides["judge_endpoint"] = judge_endpoint
    if judge_key is not None:
        overrides["judge_api_key_env"] = judge_key
    try:
        return InstrumentationConfig.from_env(**overrides)
    except InvalidInputError as exc:
        fail_input(str(exc))


def _gate(policy_file: str | None) -> Gate | None:
    if policy_file is None:
        return None
    document = load_policy_document(policy_file)
    with naming_the_file(policy_file):
        gate = load_policy(document).gate
        if gate is None:
            raise InvalidInputError("the policy has no gate: add `gate: {dataset: ..., min_pass_rate: ...}`")
    return gate


def _compared(
    store: EvalStore, registry: Registry, version: PromptVersion, run: EvalRun
) -> RunComparison | None:
    dataset = store.get_dataset(run.prompt, run.dataset, run.dataset_version)
    stable = registry.get_route(run.prompt).stable_version
    baseline = baseline_run(store, version, dataset, stable_version=stable)
    if baseline is None or baseline.run_id == run.run_id:
        return None
    return compare_runs(baseline, run)


@eval_group.command("run")
@click.argument("name")
@click.argument("version_text", metavar="VERSION")
@click.option(
    "--dataset", "dataset_ref", required=True, help="DATASET or DATASET@VERSION (default: its newest)."
)
@click.option(
    "--concurrency", type=click.IntRange(1, 256), default=8, show_default=True, help="Cases at once."
)
@click.option(
    "--retries", type=click.IntRange(0, 10), default=2, show_default=True, help="Retries of a failed call."
)
@click.option(
    "--timeout", type=click.FloatRange(min=0.1), default=60.0, show_default=True, help="Seconds per call."
)
@click.option(
    "--provider",
    type=click.Choice(PROVIDERS),
    help="The API to speak (default: anthropic for claude-* models, else the OpenAI API).",
)
@click.option("--judge-model", help="The LLM judge's model (else OTEL_PROMPT_CANARY_JUDGE_MODEL).")
@click.option(
    "--judge-endpoint",
    help="The judge's OpenAI-compatible base URL (else OTEL_PROMPT_CANARY_JUDGE_ENDPOINT, else "
    "OPENAI_BASE_URL).",
)
@click.option(
    "--judge-api-key-env", help="The variable holding the judge's API key (default: OPENAI_API_KEY)."
)
@click.option(
    "--checks",
    envvar="OTEL_PROMPT_CANARY_CHECKS",
    show_envvar=True,
    metavar="LIST",
    help="The project's checks the application runs (as `policy init` takes them); default: its defaults.",
)
@click.option(
    "--scoring",
    envvar="OTEL_PROMPT_CANARY_SCORING",
    show_envvar=True,
    type=click.Path(dir_okay=False),
    help="The application's scoring settings file (docs/checks.md).",
)
@click.option(
    "--policy",
    "policy_file",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Judge the run by this policy's gate, as `rollout start` will (exit 1 when it does not pass).",
)
@click.option(
    "--html", "html_path", type=click.Path(dir_okay=False), help="Write the HTML report to this file."
)
@click.option(
    "--probe", is_flag=True, help="Record the run as a probe (a scheduled run of the live version)."
)
@common_options
@click.pass_obj
def eval_run(
    state: State,
    name: str,
    version_text: str,
    dataset_ref: str,
    concurrency: int,
    retries: int,
    timeout: float,
    provider: str | None,
    judge_model: str | None,
    judge_endpoint: str | None,
    judge_api_key_env: str | None,
    checks: str | None,
    scoring: str | None,
    policy_file: str | None,
    html_path: str | None,
    probe: bool,
) -> None:
    """Run every case of a dataset through VERSION of NAME (a number, latest, stable or canary).

    The model is the version's, called with the real SDK (OPENAI_API_KEY and OPENAI_BASE_URL, or
    ANTHROPIC_API_KEY and ANTHROPIC_BASE_URL). Nothing is called when a case is malformed or does not
    fit the version. The run is stored beside the version, even when incomplete.
    """
    registry = state.registry()
    version = _version(registry, validate_prompt_name(name), version_text)
    gate = _gate(policy_file)
    store = eval_store(state)
    dataset_name, dataset_version = parse_dataset_ref(dataset_ref)
    dataset = store.get_dataset(name, dataset_name, dataset_version)
    config = _instrumentation_config(checks, scoring, judge_endpoint, judge_model, judge_api_key_env)
    settings = eval_settings(
        name,
        config=config,
        concurrency=concurrency,
        retries=retries,
        timeout_seconds=timeout,
        provider=None if provider is None else provider_for("", provider),
    )
    with _progress(len(dataset.cases), f"{version.ref} on {dataset.ref}") as advance:
        run = run_evaluation(
            version,
            dataset,
            settings,
            actor=default_actor(),
            source="probe" if probe else "manual",
            on_case=lambda _result: advance(),
        )
    store.record_run(run)
    comparison = _compared(store, registry, version, run)
    verdict = None
    if gate is not None:
        verdict = gate_verdict(
            store, gate, version=version, stable_version=registry.get_route(name).stable_version
        )
    if html_path is not None:
        _write(html_path, html_report(run, comparison=comparison, gate=verdict))
    if state.as_json:
        print_json({"run": run, "comparison": comparison, "gate": verdict})
    else:
        click.echo("\n".join(_run_lines(run, comparison, verdict)))
        if html_path is not None:
            click.echo(f"HTML report: {html_path}")
    if run.status != "complete":
        raise CommandFailed(
            f"the run is incomplete ({run.note}): stored as run {run.run_id}, it never passes a gate"
        )
    if verdict is not None and not verdict.passed:
        raise CommandFailed(verdict.explain())


@contextmanager
def _progress(length: int, label: str) -> Iterator[Callable[[], None]]:
    """A progress bar on stderr when it is a terminal (nothing otherwise); yields "one more done"."""
    if not sys.stderr.isatty():
        yield lambda: None
        return
    with click.progressbar(length=length, label=label, file=sys.stderr) as bar:
        yield lambda: bar.update(1)


def _write(path: str, text: str) -> None:
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        fail_input(f"cannot write {path}: {exc.strerror or exc}")


@eval_group.command("list")
@click.argument("name")
@click.option("--version", "version", type=click.IntRange(min=1), help="Only runs of this version.")
@click.option("--dataset", "dataset_name", help="Only runs on this dataset.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True, help="The newest N runs.")
@common_options
@click.pass_obj
def eval_list(state: State, name: str, version: int | None, dataset_name: str | None, limit: int) -> None:
    """List the evaluation runs of NAME, newest first.

    From a control plane, the list is read page after page until it holds N runs.
    """
    runs = eval_store(state).list_runs(
        validate_prompt_name(name), version=version, dataset=dataset_name, limit=limit
    )
    if state.as_json:
        print_json(runs)
        return
    if not runs:
        click.echo(f"{name}: no evaluation runs yet: `prompt-canary eval run {name} VERSION --dataset D`")
        return
    rows = (
        (
            r.run_id,
            f"v{r.version}",
            f"{r.dataset}@{r.dataset_version}",
            r.status,
            r.source,
            f"{_percent(r.pass_rate)} ({r.passed}/{r.cases})",
            r.model,
            time_text(r.finished_at),
        )
        for r in runs
    )
    headers = ("RUN", "VERSION", "DATASET", "STATUS", "SOURCE", "PASSED", "MODEL", "FINISHED")
    click.echo(format_table(headers, rows))


@eval_group.command("show")
@click.argument("name")
@click.argument("run_id", metavar="RUN")
@click.option(
    "--html", "html_path", type=click.Path(dir_okay=False), help="Write the HTML report to this file."
)
@common_options
@click.pass_obj
def eval_show(state: State, name: str, run_id: str, html_path: str | None) -> None:
    """Show one run of NAME: its signals, failed cases and comparison with its baseline run."""
    registry = state.registry()
    store = eval_store(state)
    run = store.get_run(validate_prompt_name(name), run_id)
    comparison = _compared(store, registry, registry.get_version(name, run.version), run)
    if html_path is not None:
        _write(html_path, html_report(run, comparison=comparison))
    if state.as_json:
        print_json({"run": run, "comparison": comparison})
        return
    click.echo("\n".join(_run_lines(run, comparison, None)))
    if html_path is not None:
        click.echo(f"HTML report: {html_path}")
