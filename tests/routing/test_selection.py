"""Selections: rendering, fallbacks, and the current selection in the OpenTelemetry context."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import pytest
from opentelemetry import context as otel_context

from otel_prompt_canary.errors import InvalidInputError, NotFoundError, TemplateError
from otel_prompt_canary.registry.models import PromptSpec
from otel_prompt_canary.routing import FALLBACK_VERSION, PromptRouter, Selection, current_selection
from otel_prompt_canary.routing.selection import Arm
from tests.routing.fakes import ScriptedRegistry, ramping, route, version

CHAT = [
    {"role": "system", "content": "You answer for {{ company }}."},
    {"role": "user", "content": "{{ question }}"},
]


def arm(version_: int = 1, cohort: str = "stable") -> Arm:
    return Arm.of_version(version("p", version_), cohort, None)  # type: ignore[arg-type]


# -- rendering ------------------------------------------------------------------------------------


def test_render_text_template(make_router: Callable[..., PromptRouter]) -> None:
    store = ScriptedRegistry([route("p")], [version("p", 1, "Answer: {{ question }}")])
    sel = make_router(store).select("p", "u1")
    assert sel.render(question="why?", unused="ignored") == "Answer: why?"
    assert not sel.is_chat
    with pytest.raises(TemplateError, match="question"):
        sel.render()


def test_render_chat_template(make_router: Callable[..., PromptRouter]) -> None:
    pv = version("p", 1, messages=CHAT, model="gpt-4.1-mini", config={"temperature": 0.2})
    sel = make_router(ScriptedRegistry([route("p")], [pv])).select("p")
    assert sel.is_chat
    assert sel.render(company="ACME", question="hi") == [
        {"role": "system", "content": "You answer for ACME."},
        {"role": "user", "content": "hi"},
    ]
    assert sel.model == "gpt-4.1-mini"
    assert sel.config == {"temperature": 0.2}
    sel.config["temperature"] = 1.0  # a copy: the cached version is not changed
    assert sel.config == {"temperature": 0.2}
    assert sel.prompt_version == pv
    assert not sel.is_fallback


# -- fallbacks ------------------------------------------------------------------------------------


def test_cold_start_serves_the_fallback(make_router: Callable[..., PromptRouter]) -> None:
    router = make_router(
        ScriptedRegistry(),
        fallbacks={
            "text": "Fallback: {{ question }}",
            "chat": CHAT,
            "spec": PromptSpec(name="spec", template="S {{ x }}", model="m1", config={"t": 1}),
        },
    )
    sel = router.select("text", "u1")
    assert (sel.prompt_name, sel.version, sel.cohort, sel.rollout_id, sel.unit_key) == (
        "text",
        FALLBACK_VERSION,
        "stable",
        None,
        "u1",
    )
    assert sel.is_fallback and sel.prompt_version is None
    assert sel.render(question="q") == "Fallback: q"
    chat = router.select("chat")
    assert chat.is_chat and chat.version == 0
    assert chat.render(company="A", question="q")[0] == {
        "role": "system",
        "content": "You answer for A.",
    }
    spec = router.select("spec")
    assert (spec.render(x=1), spec.model, spec.config) == ("S 1", "m1", {"t": 1})


def test_registry_state_wins_over_the_fallback(make_router: Callable[..., PromptRouter]) -> None:
    router = make_router(ScriptedRegistry([route("p")], [version("p", 1)]), fallbacks={"p": "fb"})
    assert router.select("p").version == 1


def test_no_state_and_no_fallback_is_not_found(make_router: Callable[..., PromptRouter]) -> None:
    router = make_router(ScriptedRegistry([route("p")], [version("p", 1)]))
    with pytest.raises(NotFoundError, match=r"'missing' is not in the registry.*fallbacks="):
        router.select("missing")


def test_not_found_before_the_first_read_says_why(
    make_router: Callable[..., PromptRouter],
) -> None:
    store = ScriptedRegistry()
    store.fail = True
    router = make_router(store, initial_timeout=0.3)
    with pytest.raises(NotFoundError, match=r"has not been read yet.*store down"):
        router.select("p")


@pytest.mark.parametrize(
    ("fallbacks", "message"),
    [
        ({"p": ""}, "empty template"),
        ({"p": []}, "no messages"),
        ({"p": [{"role": "wizard", "content": "x"}]}, "'role'"),
        ({"p": [{"content": "x"}]}, "'role'"),
        ({"p": 42}, "not int"),
        ({"bad name!": "x"}, "invalid prompt name"),
        ({"p": PromptSpec(name="q", template="x")}, "PromptSpec named 'q'"),
    ],
)
def test_bad_fallbacks_are_refused(fallbacks: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        PromptRouter(ScriptedRegistry(), fallbacks=fallbacks)  # type: ignore[arg-type]


def test_bad_registry_argument_is_refused() -> None:
    with pytest.raises(TypeError, match="control-plane URL"):
        PromptRouter(42)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="unsupported registry 'ftp://host/x'"):
        PromptRouter("ftp://host/x")


# -- the current selection ------------------------------------------------------------------------


def test_context_manager_sets_and_clears_the_current_selection() -> None:
    sel = Selection(arm(), "u1")
    assert current_selection() is None
    with sel as entered:
        assert entered is sel
        assert current_selection() is sel
    assert current_selection() is None


def test_nested_selections_restore_the_outer_one() -> None:
    outer, inner = Selection(arm(1), "u1"), Selection(arm(2, "canary"), "u1")
    with outer:
        with inner:
            assert current_selection() is inner
        assert current_selection() is outer
        with outer:  # the same selection entered twice
            assert current_selection() is outer
        assert current_selection() is outer
    assert current_selection() is None


def test_exceptions_pass_through_and_the_context_is_restored() -> None:
    sel = Selection(arm(), "u1")
    with pytest.raises(RuntimeError, match="boom"), sel:
        raise RuntimeError("boom")
    assert current_selection() is None
    assert sel.__exit__(None, None, None) is False  # nothing entered: a no-op


def test_selections_are_per_thread() -> None:
    shared = Selection(arm(), "u1")
    barrier = threading.Barrier(4)
    seen: list[object] = []
    errors: list[BaseException] = []

    def work(own: Selection) -> None:
        try:
            assert current_selection() is None  # the main thread's selection does not leak in
            with shared:
                barrier.wait(5)  # all four threads are inside `shared` at once
                with own:
                    assert current_selection() is own
                    barrier.wait(5)
                assert current_selection() is shared
            assert current_selection() is None
            seen.append(own)
        except BaseException as exc:
            errors.append(exc)

    with Selection(arm(3), "main") as main_selection:
        threads = [threading.Thread(target=work, args=(Selection(arm(i), "t"),)) for i in range(1, 5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert current_selection() is main_selection
    assert not errors, errors
    assert len(seen) == 4


def test_selections_are_per_asyncio_task() -> None:
    async def task(sel: Selection) -> bool:
        with sel:
            await asyncio.sleep(0.01)
            return current_selection() is sel

    async def main() -> list[bool]:
        return await asyncio.gather(*(task(Selection(arm(i), "u")) for i in range(1, 6)))

    assert asyncio.run(main()) == [True] * 5


def test_the_selection_lives_in_the_opentelemetry_context() -> None:
    sel = Selection(arm(), "u1")
    with sel:
        ctx = otel_context.get_current()
    assert current_selection() is None
    token = otel_context.attach(ctx)  # e.g. a context propagated to a worker
    try:
        assert current_selection() is sel
    finally:
        otel_context.detach(token)


def test_selection_value_semantics(make_router: Callable[..., PromptRouter]) -> None:
    router = make_router(ScriptedRegistry([ramping("p", "ro_x", 5000)], [version("p", 1), version("p", 2)]))
    a, b = router.select("p", "u1"), router.select("p", "u1")
    assert a == b and hash(a) == hash(b) and a is not b
    assert "rollout_id='ro_x'" in repr(a) and "unit_key='u1'" in repr(a)
    assert a != router.select("p", "u2") or a.unit_key != "u2"
