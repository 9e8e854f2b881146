"""Which stored run a run is compared with, and the comparisons of two versions' runs.

A run of a prompt version on a dataset version is compared with its **baseline**:

- the run the version's environment pins (``environment.eval_baseline_id`` in its spec), when it
  is a complete run on the same dataset version;
- else, for a version that is not the stable one (a candidate), the stable version's newest
  complete run on that dataset version;
- else (the stable version itself: a probe, a re-run), the version's own first complete run on
  that dataset version: the run that made it its eval baseline.

:func:`version_comparisons` pairs two versions' newest complete runs on each dataset version both
have run, for ``prompt diff`` and the control plane's diff.
"""

from __future__ import annotations

from otel_prompt_canary.errors import InvalidInputError, NotFoundError
from otel_prompt_canary.evals.comparison import RunComparison, compare_runs
from otel_prompt_canary.evals.datasets import Dataset
from otel_prompt_canary.evals.results import EvalRun
from otel_prompt_canary.evals.store import EvalStore
from otel_prompt_canary.registry.models import PromptVersion

__all__ = ["baseline_run", "newest_run", "version_comparisons"]

#: Runs read per version when pairing two versions' runs: far more than anyone keeps per dataset.
_RUNS_READ = 1000


def newest_run(
    store: EvalStore, prompt: str, version: int, dataset: Dataset, *, complete: bool = True
) -> EvalRun | None:
    """The newest run of ``prompt@version`` on ``dataset`` (complete ones only, by default)."""
    found = store.list_runs(
        prompt,
        version=version,
        dataset=dataset.name,
        dataset_version=dataset.version,
        status="complete" if complete else None,
        limit=1,
    )
    return store.get_run(prompt, found[0].run_id) if found else None


def _pinned(store: EvalStore, version: PromptVersion, dataset: Dataset) -> EvalRun | None:
    run_id = version.environment.eval_baseline_id
    if not run_id:
        return None
    try:
        run = store.get_run(version.name, run_id)
    except (NotFoundError, InvalidInputError):  # free text from before evaluations: no run of ours
        return None
    same = (run.dataset, run.dataset_version) == (dataset.name, dataset.version)
    return run if same and run.status == "complete" else None


def baseline_run(
    store: EvalStore, version: PromptVersion, dataset: Dataset, *, stable_version: int | None
) -> EvalRun | None:
    """The run a run of ``version`` on ``dataset`` is compared with (see the module docstring);
    None when there is none yet."""
    pinned = _pinned(store, version, dataset)
    if pinned is not None:
        return pinned
    if stable_version is not None and stable_version != version.version:
        return newest_run(store, version.name, stable_version, dataset)
    first = store.list_runs(
        version.name,
        version=version.version,
        dataset=dataset.name,
        dataset_version=dataset.version,
        status="complete",
        limit=1,
        oldest_first=True,
    )
    return store.get_run(version.name, first[0].run_id) if first else None


def version_comparisons(store: EvalStore, prompt: str, a: int, b: int) -> list[RunComparison]:
    """Version ``b``'s newest complete run against version ``a``'s, per dataset, on the newest
    dataset version both ran; by dataset name."""
    newest: list[dict[str, tuple[int, str]]] = []
    for version in (a, b):
        runs: dict[str, tuple[int, str]] = {}
        listed = store.list_runs(prompt, version=version, status="complete", limit=_RUNS_READ)
        for run in listed:  # newest first: the first run of each dataset version is its newest
            key = f"{run.dataset}@{run.dataset_version}"
            runs.setdefault(key, (run.dataset_version, run.run_id))
        newest.append(runs)
    chosen: dict[str, tuple[int, str, str]] = {}
    for key in sorted(set(newest[0]) & set(newest[1])):
        dataset = key.rsplit("@", 1)[0]
        dataset_version = newest[0][key][0]
        if dataset not in chosen or chosen[dataset][0] < dataset_version:
            chosen[dataset] = (dataset_version, newest[0][key][1], newest[1][key][1])
    return [
        compare_runs(store.get_run(prompt, run_a), store.get_run(prompt, run_b))
        for _, (_, run_a, run_b) in sorted(chosen.items())
    ]
