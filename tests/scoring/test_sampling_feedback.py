from __future__ import annotations

import threading

import pytest

from otel_prompt_canary.errors import InvalidInputError
from otel_prompt_canary.scoring import (
    BoundedLRU,
    FeedbackContext,
    FeedbackIndex,
    LLMResponse,
    Sampler,
    validate_feedback_score,
)


@pytest.mark.parametrize("rate", [0.01, 0.1, 0.3, 0.5, 0.9])
def test_sampling_by_id_keeps_the_rate(rate: float) -> None:
    sampler = Sampler(rate, salt="judge")
    n = 20_000
    kept = sum(sampler.should_sample(f"resp-{i}") for i in range(n))
    # Binomial: 4 standard deviations, at least 0.5 percentage point.
    tolerance = max(4 * (rate * (1 - rate) / n) ** 0.5, 0.005)
    assert abs(kept / n - rate) < tolerance


def test_sampling_by_id_is_stable_across_samplers_and_salted() -> None:
    ids = [f"chatcmpl-{i}" for i in range(2000)]
    a = [Sampler(0.2, salt="judge").should_sample(i) for i in ids]
    b = [Sampler(0.2, salt="judge").should_sample(i) for i in ids]
    other = [Sampler(0.2, salt="safety").should_sample(i) for i in ids]
    assert a == b
    assert a != other
    # Monotone in the rate: what 20% keeps, 50% keeps too.
    wider = [Sampler(0.5, salt="judge").should_sample(i) for i in ids]
    assert all(w for k, w in zip(a, wider, strict=True) if k)


def test_sampling_without_id_is_random_but_seedable() -> None:
    first = Sampler(0.3, seed=7)
    second = Sampler(0.3, seed=7)
    draws = [first.should_sample(None) for _ in range(10_000)]
    assert draws == [second.should_sample(None) for _ in range(10_000)]
    assert abs(sum(draws) / len(draws) - 0.3) < 0.03


def test_sampling_extremes_and_validation() -> None:
    assert all(Sampler(1.0).should_sample(str(i)) for i in range(100))
    assert not any(Sampler(0.0).should_sample(str(i)) for i in range(100))
    for bad in (-0.1, 1.5, float("nan"), True, "0.5"):
        with pytest.raises(InvalidInputError):
            Sampler(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(("score", "value"), [(0, 0.0), (1, 1.0), (0.75, 0.75), (True, 1.0), (False, 0.0)])
def test_feedback_scores(score: float, value: float) -> None:
    assert validate_feedback_score(score) == value


@pytest.mark.parametrize("score", [-0.1, 1.01, float("nan"), float("inf"), "1", None])
def test_feedback_scores_out_of_range_are_refused(score: object) -> None:
    with pytest.raises(InvalidInputError):
        validate_feedback_score(score)  # type: ignore[arg-type]


def test_feedback_custom_range() -> None:
    assert validate_feedback_score(4, low=1, high=5) == 4.0
    assert validate_feedback_score(True, low=1, high=5) == 5.0
    with pytest.raises(InvalidInputError, match=r"\[1, 5\]"):
        validate_feedback_score(0, low=1, high=5)


def test_bounded_lru_evicts_the_least_recently_used() -> None:
    lru: BoundedLRU[str, int] = BoundedLRU(2)
    lru.put("a", 1)
    lru.put("b", 2)
    assert lru.get("a") == 1  # a is now the most recent
    lru.put("c", 3)
    assert "b" not in lru
    assert lru.get("a") == 1
    assert lru.get("c") == 3
    assert len(lru) == 2
    assert lru.pop("a") == 1
    assert lru.get("a") is None
    with pytest.raises(InvalidInputError):
        BoundedLRU(0)


def test_bounded_lru_stays_bounded_under_threads() -> None:
    lru: BoundedLRU[int, int] = BoundedLRU(100)

    def writer(base: int) -> None:
        for i in range(2000):
            lru.put(base + i, i)
            lru.get(base + i // 2)

    threads = [threading.Thread(target=writer, args=(k * 10_000,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(lru) == 100


def test_feedback_index_remembers_prompt_version_and_cohort() -> None:
    index = FeedbackIndex(maxsize=2)
    index.remember(
        LLMResponse(response_id="r1", prompt_name="support-bot", prompt_version=3, cohort="canary")
    )
    index.remember(LLMResponse(response_id="r2"))  # no prompt: nothing to attribute
    index.remember(LLMResponse(prompt_name="support-bot"))  # no id: nothing to look up
    assert index.lookup("r1") == FeedbackContext("support-bot", 3, "canary")
    assert index.lookup("r2") is None
    assert len(index) == 1
    index.remember(LLMResponse(response_id="r3", prompt_name="p"))
    index.remember(LLMResponse(response_id="r4", prompt_name="p"))
    assert index.lookup("r1") is None  # evicted
