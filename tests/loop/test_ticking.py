"""The background ticker the controller and the drift monitor run on."""

from __future__ import annotations

import threading

from otel_prompt_canary.loop.ticking import Ticking
from tests.support.waiting import eventually


def test_a_failing_tick_is_logged_and_the_next_one_still_runs() -> None:
    calls: list[int] = []

    def tick() -> None:
        calls.append(len(calls))
        if len(calls) == 1:
            raise RuntimeError("the store is down")

    ticking = Ticking("test-ticker", 3600.0, tick)  # only wake() makes it tick
    ticking.start()
    try:
        ticking.wake()
        eventually(lambda: len(calls) == 1)
        assert ticking.running
        ticking.wake()
        eventually(lambda: len(calls) == 2)
    finally:
        ticking.stop()
    assert not ticking.running


def test_stop_waits_for_the_tick_in_progress_and_start_again_resumes() -> None:
    entered, release = threading.Event(), threading.Event()
    done: list[bool] = []

    def tick() -> None:
        entered.set()
        release.wait(30)
        done.append(True)

    ticking = Ticking("test-ticker", 3600.0, tick)
    ticking.start()
    ticking.start()  # already running: nothing
    ticking.wake()
    assert entered.wait(30)
    stopper = threading.Thread(target=ticking.stop)
    stopper.start()
    release.set()
    stopper.join(30)
    assert done == [True] and not ticking.running

    entered.clear()
    ticking.start()
    ticking.wake()
    assert entered.wait(30)
    ticking.stop()
    assert len(done) == 2
