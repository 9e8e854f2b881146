from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from otel_prompt_canary.errors import InvalidInputError
from otel_prompt_canary.scoring import (
    CheckOutcome,
    LLMJudge,
    LLMResponse,
    ScoreOutcome,
    ScoringWorker,
    WorkerStats,
)
from tests.scoring.fakes import FakeOpenAI, Reply, chat_reply, unreachable_base_url

MakeWorker = Callable[..., ScoringWorker]


class Collector:
    """An on_result callback that keeps what it receives."""

    def __init__(self) -> None:
        self.results: list[tuple[LLMResponse, CheckOutcome | ScoreOutcome]] = []
        self.lock = threading.Lock()

    def __call__(self, response: LLMResponse, outcome: CheckOutcome | ScoreOutcome) -> None:
        with self.lock:
            self.results.append((response, outcome))


class Length:
    name = "length"

    def score(self, response: LLMResponse) -> float:
        return float(len(response.output_text))


class Flaky:
    name = "flaky"

    def check(self, response: LLMResponse) -> bool:
        if response.output_text == "boom":
            raise RuntimeError("check bug")
        return True


def response(i: int, text: str = "answer") -> LLMResponse:
    return LLMResponse(output_text=text, response_id=f"chatcmpl-{i}", prompt_name="support-bot")


def judge(server: FakeOpenAI, timeout: float = 5.0) -> LLMJudge:
    return LLMJudge(base_url=server.base_url, model="judge-model", timeout=timeout)


def test_late_scores_reach_the_callback(fake_openai: FakeOpenAI, make_worker: MakeWorker) -> None:
    fake_openai.respond = lambda path, body: chat_reply(
        '{"score": 0.5}' if "short" in body["messages"][1]["content"] else '{"score": 0.9}'
    )
    collected = Collector()
    worker = make_worker(collected)
    scorer = judge(fake_openai)
    assert worker.submit(response(1, "a long, complete answer"), scorer)
    assert worker.submit(response(2, "short"), scorer)
    assert worker.flush(5)
    by_id = {r.response_id: o for r, o in collected.results}
    assert by_id == {"chatcmpl-1": ScoreOutcome("judge", 0.9), "chatcmpl-2": ScoreOutcome("judge", 0.5)}
    assert worker.stats() == WorkerStats(
        submitted=2, completed=2, errors=0, dropped=0, abandoned=0, callback_errors=0, queued=0
    )
    scorer.close()


def test_checks_and_scorers_both_run(make_worker: MakeWorker) -> None:
    collected = Collector()
    worker = make_worker(collected)
    worker.submit(response(1, "abc"), Length())
    worker.submit(response(2, "ok"), Flaky())
    worker.submit(response(3, "boom"), Flaky())
    assert worker.flush(5)
    outcomes = sorted((r.response_id or "", o) for r, o in collected.results)
    assert [o for _, o in outcomes] == [
        ScoreOutcome("length", 3.0),
        CheckOutcome("flaky", True),
        CheckOutcome("flaky", None, "RuntimeError"),
    ]
    assert worker.stats().errors == 1


def test_submit_never_blocks_and_drops_when_full(fake_openai: FakeOpenAI, make_worker: MakeWorker) -> None:
    fake_openai.respond = lambda path, body: Reply(delay=30, body={})  # held until release
    collected = Collector()
    worker = make_worker(collected, queue_size=5)
    scorer = judge(fake_openai, timeout=30)
    accepted = sum(worker.submit(response(i), scorer) for i in range(200))
    # The worker holds at most one in flight plus five queued; everything else was dropped.
    assert 5 <= accepted <= 6
    stats = worker.stats()
    # No submit waited for room in the queue: the endpoint holds every request until released
    # below, so none had completed when the 200 submits returned.
    assert stats.completed == 0
    assert stats.dropped == 200 - accepted
    assert stats.submitted == accepted
    fake_openai.respond = lambda path, body: chat_reply('{"score": 1}')
    fake_openai.release.set()
    assert worker.flush(10)
    assert worker.stats().completed == accepted
    scorer.close()


def test_endpoint_errors_and_timeouts_are_counted_not_raised(
    fake_openai: FakeOpenAI, make_worker: MakeWorker
) -> None:
    answers = iter(
        [
            Reply(status=503, body={"error": "overloaded"}),
            Reply(delay=3, body={}),
            chat_reply("no idea"),
            chat_reply('{"score": 0.4}'),
        ]
    )
    fake_openai.respond = lambda path, body: next(answers)
    collected = Collector()
    worker = make_worker(collected)
    scorer = judge(fake_openai, timeout=0.3)
    for i in range(4):
        assert worker.submit(response(i), scorer)
    assert worker.flush(10)
    errors = [o.error for _, o in sorted(collected.results, key=lambda x: x[0].response_id or "")]
    assert errors == [
        "EvaluationResponseError",
        "EvaluationTimeoutError",
        "EvaluationResponseError",
        None,
    ]
    stats = worker.stats()
    assert (stats.completed, stats.errors) == (4, 3)
    scorer.close()


def test_an_unreachable_endpoint_is_an_error_outcome(make_worker: MakeWorker) -> None:
    collected = Collector()
    worker = make_worker(collected)
    scorer = LLMJudge(base_url=unreachable_base_url(), model="m", timeout=2)
    worker.submit(response(1), scorer)
    assert worker.flush(10)
    assert collected.results[0][1] == ScoreOutcome("judge", None, "EvaluationError")


def test_a_failing_callback_is_counted_and_the_worker_goes_on(make_worker: MakeWorker) -> None:
    calls: list[str] = []

    def callback(r: LLMResponse, outcome: Any) -> None:
        calls.append(r.output_text)
        if r.output_text == "bad":
            raise ValueError("callback bug")

    worker = make_worker(callback)
    for text in ("one", "bad", "two"):
        worker.submit(response(0, text), Length())
    assert worker.flush(5)
    assert calls == ["one", "bad", "two"]
    assert worker.stats().callback_errors == 1


def test_shutdown_drains_then_joins(make_worker: MakeWorker) -> None:
    collected = Collector()
    worker = make_worker(collected)
    for i in range(50):
        worker.submit(response(i), Length())
    assert worker.shutdown(5) is True
    assert worker.closed
    assert len(collected.results) == 50
    assert not any(t.name == "prompt-canary-scoring" and t.is_alive() for t in threading.enumerate())
    assert worker.submit(response(99), Length()) is False
    assert worker.stats().dropped == 1
    assert worker.shutdown(1) is True  # again: harmless


def test_shutdown_times_out_on_a_hung_endpoint_and_abandons_the_rest(
    fake_openai: FakeOpenAI, make_worker: MakeWorker
) -> None:
    fake_openai.respond = lambda path, body: Reply(delay=30, body={})
    collected = Collector()
    worker = make_worker(collected, queue_size=10)
    scorer = judge(fake_openai, timeout=30)
    for i in range(4):
        worker.submit(response(i), scorer)
    fake_openai.wait_for_requests(1)
    assert worker.shutdown(0.3) is False
    # It gave up on its timeout: the request it waits for is held until released below.
    assert worker.stats().completed == 0
    fake_openai.respond = lambda path, body: chat_reply('{"score": 1}')
    fake_openai.release.set()  # the request in flight ends; the queued ones are abandoned
    worker._thread.join(5)
    stats = worker.stats()
    assert not worker._thread.is_alive()
    assert stats.completed == 1
    assert stats.abandoned == 3
    assert stats.queued == 0
    scorer.close()


def test_shutdown_without_draining(make_worker: MakeWorker) -> None:
    gate = threading.Event()

    class Slow:
        name = "slow"

        def check(self, r: LLMResponse) -> bool:
            gate.wait(5)
            return True

    worker = make_worker(Collector())
    for i in range(5):
        worker.submit(response(i), Slow())
    time.sleep(0.05)
    threading.Timer(0.1, gate.set).start()
    assert worker.shutdown(5, drain=False) is True
    stats = worker.stats()
    assert stats.completed + stats.abandoned == 5
    assert stats.abandoned >= 4


def test_worker_validates_its_parameters() -> None:
    with pytest.raises(InvalidInputError):
        ScoringWorker(Collector(), queue_size=0)
    with pytest.raises(InvalidInputError):
        ScoringWorker("not callable")  # type: ignore[arg-type]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_gets_its_own_worker(make_worker: MakeWorker) -> None:
    collected = Collector()
    worker = make_worker(collected)
    worker.submit(response(1), Length())
    assert worker.flush(5)
    pid = os.fork()
    if pid == 0:  # the child: its worker must run, on a fresh queue
        code = 1
        try:
            before = len(collected.results)
            ok = worker.submit(response(2, "child"), Length()) and worker.flush(5)
            code = 0 if ok and len(collected.results) == before + 1 else 2
            worker.shutdown(2)
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert worker.submit(response(3), Length())
    assert worker.flush(5)
    assert len(collected.results) == 2
