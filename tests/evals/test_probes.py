"""Probes: the live stable version evaluated on a schedule, so that a provider's silent change of
the model is caught at any traffic; run by ``prompt-canary serve --probes``."""

from __future__ import annotations

import logging

import pytest

from otel_prompt_canary.demo.behaviour import Behaviour, Reply
from otel_prompt_canary.demo.simulated_llm import SimulatedLLM
from otel_prompt_canary.errors import InvalidInputError
from otel_prompt_canary.evals import Dataset, EvalSettings, SqlEvalStore
from otel_prompt_canary.evals.probes import Probe, Prober, parse_probes
from otel_prompt_canary.registry import SqlRegistry
from otel_prompt_canary.service import ServiceSettings
from tests.evals.golden import BILLING_CASES, STABLE
from tests.support.auth import TOKEN
from tests.support.loopback import running_server
from tests.support.waiting import eventually

#: The store is not what these tests test.
sqlite_only = pytest.mark.parametrize("store_backend", ["sqlite"])


def test_probes_are_read_from_their_setting() -> None:
    assert parse_probes(" support-bot=support-golden@1h, faq=faq-golden@90 ") == (
        Probe("support-bot", "support-golden", 3600.0),
        Probe("faq", "faq-golden", 90.0),
    )
    assert parse_probes("") == ()
    for bad, message in [
        ("support-bot", "write PROMPT=DATASET@INTERVAL"),
        ("support-bot=golden@soon", "invalid probe interval 'soon'"),
        ("support-bot=golden@0", "at least 1 s"),
        ("a=b@1h,a=b@2h", "a prompt and dataset are probed once"),
        ("bad name=golden@1h", "invalid prompt name"),
    ]:
        with pytest.raises(InvalidInputError, match=message):
            parse_probes(bad)
    with pytest.raises(ValueError, match="invalid probe interval"):
        ServiceSettings(token=TOKEN, probes="support-bot=golden@later")


@sqlite_only
def test_a_probe_catches_a_silent_change_of_the_model_naming_the_cases(
    prompts: SqlRegistry,
    store: SqlEvalStore,
    golden: Dataset,
    settings: EvalSettings,
    behaviour: Behaviour,
    caplog: pytest.LogCaptureFixture,
) -> None:
    prober = Prober(
        prompts, (Probe("support-bot", "support-golden", 3600),), settings=lambda _prompt: settings
    )
    first, none = prober.run_probe(prober.probes[0])
    assert (first.version, first.source, first.actor, first.totals.passed, none) == (
        1,
        "probe",
        "probe",
        12,
        None,
    )

    # The provider changes the model behind the same name: billing answers stop being JSON, and
    # two shipping answers too (six cases: proof at the 5% level).
    for words in ("charge", "invoice", "bill", "change the card", "deliver", "track"):
        behaviour.when(
            system_contains=STABLE, user_contains=words, reply=Reply(text="Sure thing! Here you go.")
        )
    with caplog.at_level(logging.INFO, logger="otel_prompt_canary.evals"):
        second, comparison = prober.run_probe(prober.probes[0])
    assert comparison is not None and comparison.baseline.run_id == first.run_id
    assert comparison.worse_cases == (*BILLING_CASES, "shipping-2", "shipping-3")
    regressions = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert regressions and regressions[0].getMessage().startswith(
        "probe support-bot@1 on support-golden@1: pass fell from 1 to 0.5 against run " + first.run_id
    )
    assert "billing-1, billing-2, billing-3, billing-4, shipping-2, shipping-3" in regressions[0].getMessage()
    assert [r.run_id for r in store.list_runs("support-bot")] == [second.run_id, first.run_id]


@sqlite_only
def test_serve_runs_the_probes_on_a_schedule(
    prompts: SqlRegistry,
    golden: Dataset,
    llm: SimulatedLLM,
    behaviour: Behaviour,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The usual variables of the SDK and of the judge, as the control plane's process would have them.
    monkeypatch.setenv("OPENAI_BASE_URL", llm.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    monkeypatch.setenv("OTEL_PROMPT_CANARY_JUDGE_ENDPOINT", llm.base_url)
    monkeypatch.setenv("OTEL_PROMPT_CANARY_JUDGE_MODEL", "sim-judge")
    monkeypatch.setenv("OTEL_PROMPT_CANARY_JUDGE_API_KEY_ENV", "OPENAI_API_KEY")
    store = SqlEvalStore(prompts)
    settings = ServiceSettings(token=TOKEN, controller=False, probes="support-bot=support-golden@1")
    with running_server(prompts, settings):
        eventually(lambda: len(store.list_runs("support-bot")) >= 2, timeout=60, what="two probe runs")
    runs = store.list_runs("support-bot")
    assert {(r.source, r.version, r.status, r.passed) for r in runs} == {("probe", 1, "complete", 12)}
    judged = store.get_run("support-bot", runs[0].run_id)
    assert all(case.scores["judge"] == 1.0 for case in judged.cases)
