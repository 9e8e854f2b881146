"""Cohort assignment: the documented function, and the router's fast path agreeing with it."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otel_prompt_canary.routing import PromptRouter, assign_cohort, bucket, is_canary
from otel_prompt_canary.routing.cache import make_chooser
from otel_prompt_canary.routing.selection import Arm
from tests.routing.fakes import ScriptedRegistry, ramping, route, version
from tests.support.waiting import eventually

# The vectors in otel_prompt_canary/routing/cohort.py's docstring.
VECTORS = [
    ("ro_test", "user-1", 3462),
    ("ro_test", "user-2", 5453),
    ("rollout-42", "alice", 4844),
    ("ro_test", "élève", 2502),
]


def reference_bucket(rollout_id: str, unit_key: str) -> int:
    """The docstring's algorithm, written independently: hex digest, first 16 hex digits."""
    digest = hashlib.sha256(f"{rollout_id}:{unit_key}".encode()).hexdigest()
    return int(digest[:16], 16) % 10_000


@pytest.mark.parametrize(("rollout_id", "unit_key", "expected"), VECTORS)
def test_vectors(rollout_id: str, unit_key: str, expected: int) -> None:
    assert bucket(rollout_id, unit_key) == expected
    assert reference_bucket(rollout_id, unit_key) == expected


@given(st.text(max_size=40), st.text(max_size=40).filter(lambda s: s.isprintable()))
def test_bucket_matches_the_documented_algorithm(rollout_id: str, unit_key: str) -> None:
    try:
        f"{rollout_id}:{unit_key}".encode()
    except UnicodeEncodeError:
        return  # lone surrogates: documented separately
    assert bucket(rollout_id, unit_key) == reference_bucket(rollout_id, unit_key)


@given(
    st.text(min_size=1, max_size=20),
    st.text(max_size=40),
    st.integers(0, 10_000),
    st.integers(0, 10_000),
)
def test_monotone_in_weight(rollout_id: str, unit_key: str, low: int, high: int) -> None:
    low, high = sorted((low, high))
    if is_canary(rollout_id, unit_key, low):
        assert is_canary(rollout_id, unit_key, high)


def test_edges_of_the_weight() -> None:
    keys = [f"u{i}" for i in range(2000)]
    assert not any(is_canary("r", k, 0) for k in keys)
    assert all(is_canary("r", k, 10_000) for k in keys)
    assert {assign_cohort("r", k, 5000) for k in keys} == {"stable", "canary"}


def _chooser(rollout_id: str, weight_bp: int) -> Callable[[str | None], str]:
    stable = Arm(prompt_name="p", version=1, cohort="stable", rollout_id=rollout_id)
    canary = Arm(prompt_name="p", version=2, cohort="canary", rollout_id=rollout_id)
    choose = make_chooser(stable, canary, rollout_id, weight_bp)
    return lambda key: choose(key).cohort


@pytest.mark.parametrize("weight_bp", [1, 100, 500, 2000, 5000, 9999])
def test_the_fast_path_agrees_with_the_function(weight_bp: int) -> None:
    choose = _chooser("ro_agree", weight_bp)
    for i in range(5000):
        key = f"user-{i}"
        assert choose(key) == assign_cohort("ro_agree", key, weight_bp), key


def test_odd_unit_keys_are_hashed_not_refused() -> None:
    choose = _chooser("ro_odd", 5000)
    surrogate = "user-\ud800"
    assert choose(surrogate) == assign_cohort("ro_odd", surrogate, 5000)
    assert choose(12345) == assign_cohort("ro_odd", "12345", 5000)  # type: ignore[arg-type]
    assert choose("") == assign_cohort("ro_odd", "", 5000)


@pytest.mark.parametrize("weight_bp", [100, 500, 2000, 5000, 9000])
def test_uniform_over_100000_unit_keys(weight_bp: int) -> None:
    choose = _chooser(f"ro_uniform_{weight_bp}", weight_bp)
    canary = sum(choose(f"user-{i}") == "canary" for i in range(100_000))
    share = canary / 100_000 * 100
    assert abs(share - weight_bp / 100) <= 1.0, share


def test_buckets_are_uniform() -> None:
    # 100,000 keys in 10 deciles of buckets: each decile within 1 percentage point of 10%.
    deciles = [0] * 10
    for i in range(100_000):
        deciles[bucket("ro_deciles", f"user-{i}") // 1000] += 1
    assert all(abs(n / 1000 - 10) <= 1.0 for n in deciles), deciles


@pytest.mark.parametrize("weight_bp", [500, 2000, 5000])
def test_without_a_unit_key_the_share_matches_the_weight(weight_bp: int) -> None:
    choose = _chooser("ro_random", weight_bp)
    canary = sum(choose(None) == "canary" for _ in range(100_000))
    assert abs(canary / 100_000 * 100 - weight_bp / 100) <= 1.0


def test_without_a_unit_key_each_call_is_drawn_anew() -> None:
    choose = _chooser("ro_random", 5000)
    assert {choose(None) for _ in range(200)} == {"stable", "canary"}


def test_sticky_through_the_router(make_router: Callable[..., PromptRouter]) -> None:
    store = ScriptedRegistry([ramping("p", "ro_sticky", 2000)], [version("p", 1), version("p", 2)])
    router = make_router(store)
    first = {key: router.select("p", key).cohort for key in (f"user-{i}" for i in range(2000))}
    for _ in range(3):
        assert {key: router.select("p", key).cohort for key in first} == first
    assert set(first.values()) == {"stable", "canary"}
    for key, cohort in first.items():
        assert cohort == assign_cohort("ro_sticky", key, 2000)
        sel = router.select("p", key)
        assert sel.version == (2 if cohort == "canary" else 1)
        assert sel.rollout_id == "ro_sticky"


def test_a_new_rollout_reshuffles_the_units(make_router: Callable[..., PromptRouter]) -> None:
    store = ScriptedRegistry([ramping("p", "ro_a", 2000)], [version("p", 1), version("p", 2)])
    router = make_router(store, poll_interval=0.01)
    keys = [f"user-{i}" for i in range(5000)]
    in_a = {k for k in keys if router.select("p", k).cohort == "canary"}
    store.set_routes(ramping("p", "ro_b", 2000, revision=5))
    eventually(lambda: router.select("p", "x").rollout_id == "ro_b")
    in_b = {k for k in keys if router.select("p", k).cohort == "canary"}
    # Independent salts: the overlap is about 20% of 20%, far from all of it.
    assert len(in_a & in_b) < 0.5 * len(in_a)


def test_idle_route_has_everyone_on_stable(make_router: Callable[..., PromptRouter]) -> None:
    store = ScriptedRegistry([route("p", stable=3)], [version("p", 3)])
    router = make_router(store)
    cohorts = {router.select("p", f"u{i}").cohort for i in range(500)}
    assert cohorts == {"stable"}
    sel = router.select("p", "u1")
    assert (sel.version, sel.rollout_id) == (3, None)
