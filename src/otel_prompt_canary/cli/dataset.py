"""``prompt-canary dataset``: push a golden-set file as a new dataset version, list, show and diff them.

A dataset belongs to a prompt and is versioned like it: content-addressed, so that pushing the same
cases again stores nothing. Files are JSONL (one case a line) or YAML/JSON (docs/evaluations.md);
every refusal names the file and the line.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from otel_prompt_canary.cli.eval_store import eval_store
from otel_prompt_canary.cli.files import file_name
from otel_prompt_canary.cli.group import Group, State, common_options, default_actor, fail_input
from otel_prompt_canary.cli.output import count, format_fields, format_table, print_json, time_text
from otel_prompt_canary.errors import InvalidInputError
from otel_prompt_canary.evals.dataset_files import read_dataset
from otel_prompt_canary.evals.datasets import Case, validate_dataset_name
from otel_prompt_canary.registry.bounds import parse_version, shown
from otel_prompt_canary.registry.models import validate_prompt_name

__all__ = ["dataset", "parse_dataset_ref"]


@click.group(cls=Group)
def dataset() -> None:
    """Push and inspect golden-set datasets (docs/evaluations.md)."""


def parse_dataset_ref(ref: str) -> tuple[str, int | None]:
    """``DATASET`` or ``DATASET@VERSION`` (``latest`` or a number): the name and the version."""
    name, sep, version = ref.rpartition("@")
    if not sep:
        return validate_dataset_name(ref), None
    validate_dataset_name(name)
    try:
        return name, parse_version(version)
    except InvalidInputError:
        fail_input(f"invalid dataset version {shown(version)} in {shown(ref)}: give DATASET or DATASET@N")


def _read(path: str) -> str:
    try:
        if path == "-":
            return sys.stdin.read()
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        fail_input(f"cannot read {file_name(path)}: {exc.strerror or exc}")
    except UnicodeDecodeError:
        fail_input(f"cannot read {file_name(path)}: it is not UTF-8 text")


@dataset.command("push")
@click.argument("file", metavar="FILE")
@click.option(
    "--prompt", "prompt_name", help="The prompt the dataset belongs to (default: the file's 'prompt')."
)
@click.option("--name", help="The dataset's name (default: the file's 'name', else the file's stem).")
@click.option("--author", help="Author recorded with the version (default: $USER).")
@common_options
@click.pass_obj
def dataset_push(
    state: State, file: str, prompt_name: str | None, name: str | None, author: str | None
) -> None:
    """Store the cases in FILE (JSONL, YAML or JSON; - for stdin) as a new version of a dataset.

    The cases must use exactly the variables of the prompt's newest version. Pushing content
    identical to an existing version stores nothing and names that version.
    """
    spec = read_dataset(_read(file), source=file_name(file), name=name, prompt=prompt_name)
    result = eval_store(state).push_dataset(spec, author=author or default_actor())
    if state.as_json:
        print_json(result)
        return
    stored = result.dataset
    note = "new" if result.created else "unchanged: identical content"
    click.echo(f"{stored.prompt}/{stored.ref} ({note}, {count(len(stored.cases), 'case')})")


@dataset.command("list")
@click.argument("prompt_name", metavar="PROMPT")
@click.option("--limit", type=click.IntRange(min=1), help="Only the first N datasets, by name.")
@common_options
@click.pass_obj
def dataset_list(state: State, prompt_name: str, limit: int | None) -> None:
    """List the datasets of PROMPT with their newest version, by name.

    From a control plane, every page of the list is read (the first N datasets with --limit).
    """
    summaries = eval_store(state).list_datasets(validate_prompt_name(prompt_name), limit=limit)
    if state.as_json:
        print_json(summaries)
        return
    if not summaries:
        click.echo(f"{prompt_name}: no datasets yet: push one with `prompt-canary dataset push FILE`")
        return
    rows = ((s.name, s.latest_version, s.versions, s.cases, time_text(s.updated_at)) for s in summaries)
    click.echo(format_table(("NAME", "LATEST", "VERSIONS", "CASES", "UPDATED"), rows))


def _expectations(case: Case) -> str:
    e = case.expect
    parts = [] if e.contract else ["no contract"]
    if e.must_contain:
        parts.append(f"contains {len(e.must_contain)}")
    if e.must_not_contain:
        parts.append(f"avoids {len(e.must_not_contain)}")
    if e.json_schema is not None:
        parts.append("schema")
    if e.reference is not None:
        parts.append("reference")
    if e.rubric is not None:
        parts.append("rubric")
    return ", ".join(parts) or "-"


def _short(value: object, width: int = 50) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= width else text[: width - 3] + "..."


@dataset.command("show")
@click.argument("prompt_name", metavar="PROMPT")
@click.argument("ref", metavar="DATASET[@VERSION]")
@common_options
@click.pass_obj
def dataset_show(state: State, prompt_name: str, ref: str) -> None:
    """Show one version of a dataset (the newest without @VERSION) and its cases."""
    name, version = parse_dataset_ref(ref)
    found = eval_store(state).get_dataset(validate_prompt_name(prompt_name), name, version)
    if state.as_json:
        print_json(found)
        return
    judge = found.judge
    lines = format_fields(
        [
            ("dataset", f"{found.prompt}/{found.ref}  {found.content_hash}"),
            ("created", time_text(found.created_at) + (f" by {found.author}" if found.author else "")),
            ("description", found.description or "-"),
            (
                "judge",
                f"rubric: {_short(judge.rubric) if judge.rubric else '-'}, pass score {judge.pass_score:g}",
            ),
            ("cases", str(len(found.cases))),
        ]
    )
    rows = (
        (
            found.lines[i] if found.lines else "-",
            case.id,
            ", ".join(case.tags) or "-",
            _short(case.variables) if case.variables else f"{count(len(case.messages), 'message')}",
            _expectations(case),
        )
        for i, case in enumerate(found.cases)
    )
    click.echo("\n".join(lines))
    click.echo("")
    click.echo(format_table(("LINE", "CASE", "TAGS", "INPUT", "EXPECTS"), rows))


@dataset.command("diff")
@click.argument("prompt_name", metavar="PROMPT")
@click.argument("name", metavar="DATASET")
@click.argument("a", type=click.IntRange(min=1))
@click.argument("b", type=click.IntRange(min=1))
@common_options
@click.pass_obj
def dataset_diff(state: State, prompt_name: str, name: str, a: int, b: int) -> None:
    """Show what changed from version A to version B of a dataset: cases added, removed, changed."""
    d = eval_store(state).diff_datasets(validate_prompt_name(prompt_name), validate_dataset_name(name), a, b)
    if state.as_json:
        print_json(d)
        return
    click.echo(d.summary)
    if d.cases_diff:
        click.echo("")
        click.echo(d.cases_diff.rstrip("\n"))
