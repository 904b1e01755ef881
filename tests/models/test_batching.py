"""The step scheduler on toy requests (no model): who decodes together, when, and what happens on failure."""

from __future__ import annotations

import threading
import time

import pytest

from lmlang.errors import ModelError
from lmlang.models.batching import Part, Request, StepScheduler


class Recorder:
    """An executor that records each decode's rows (strings naming the thread and the token)."""

    def __init__(self, fail_when: str | None = None, delay: float = 0.0) -> None:
        self.steps: list[list[str]] = []
        self.alone: list[list[str]] = []
        self.fail_when = fail_when
        self.delay = delay
        self.lock = threading.Lock()

    def execute(self, parts: list[Part]) -> None:
        rows = [row for request, start, end in parts for row in request.rows[start:end]]
        time.sleep(self.delay)
        if self.fail_when is not None and self.fail_when in rows:
            raise ModelError(None, "no room")
        with self.lock:
            self.steps.append(rows)

    def execute_alone(self, request: Request) -> None:
        with self.lock:
            self.alone.append(list(request.rows))


def members(scheduler: StepScheduler, count: int, work, patience_hold: threading.Barrier | None = None) -> list:
    """Run ``work(i)`` on ``count`` threads that are all members of ``scheduler`` before any of them submits."""
    ready = threading.Barrier(count)
    outcomes: list = [None] * count

    def thread(i: int) -> None:
        leave = scheduler.join()
        try:
            ready.wait()
            outcomes[i] = work(i)
        except BaseException as error:  # the test looks at it
            outcomes[i] = error
        finally:
            leave()

    threads = [threading.Thread(target=thread, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    return outcomes


def test_a_thread_alone_has_its_request_evaluated_whole() -> None:
    recorder = Recorder()
    scheduler = StepScheduler(recorder.execute, recorder.execute_alone, budget=4)
    leave = scheduler.join()
    scheduler.submit(Request([f"t{i}" for i in range(10)]))
    leave()
    assert recorder.alone == [[f"t{i}" for i in range(10)]] and recorder.steps == []
    assert scheduler.shared_steps == 0


def test_waiting_members_share_one_decode_per_step() -> None:
    recorder = Recorder()
    scheduler = StepScheduler(recorder.execute, recorder.execute_alone, budget=64, patience=5.0)

    def work(i: int) -> None:
        for step in range(3):
            scheduler.submit(Request([f"{i}:{step}"]))

    assert members(scheduler, 4, work) == [None] * 4
    assert recorder.alone == []
    # every step holds one token of each of the four runs (a patience of 5 s never ran out)
    assert sorted(sorted(step) for step in recorder.steps) == [
        sorted(f"{i}:{s}" for i in range(4)) for s in range(3)]
    assert scheduler.shared_steps == 3


def test_a_long_prompt_is_prefilled_over_several_steps_beside_the_short_requests() -> None:
    recorder = Recorder()
    scheduler = StepScheduler(recorder.execute, recorder.execute_alone, budget=4, patience=5.0)

    def work(i: int) -> None:
        if i == 0:
            scheduler.submit(Request([f"p{k}" for k in range(9)]))
        else:
            for step in range(3):
                scheduler.submit(Request([f"{i}:{step}"]))

    assert members(scheduler, 3, work) == [None] * 3
    assert all(len(step) <= 4 for step in recorder.steps)
    prompt = [row for step in recorder.steps for row in step if row.startswith("p")]
    assert prompt == [f"p{k}" for k in range(9)]  # in order, all of it, once
    first = recorder.steps[0]
    assert "1:0" in first and "2:0" in first  # the short requests go first


def test_a_member_busy_elsewhere_holds_the_others_up_for_the_patience_only() -> None:
    recorder = Recorder()
    scheduler = StepScheduler(recorder.execute, recorder.execute_alone, budget=8, patience=0.05)
    release = threading.Event()

    def work(i: int) -> float:
        if i == 0:
            release.wait(5)  # a member doing something else for a long while
            return 0.0
        started = time.monotonic()
        scheduler.submit(Request([f"{i}"]))
        release.set()
        return time.monotonic() - started

    waited = members(scheduler, 2, work)[1]
    assert 0.04 <= waited < 2.0
    assert recorder.steps == [["1"]]


def test_a_failed_step_fails_the_request_with_the_most_tokens_and_the_others_go_on() -> None:
    recorder = Recorder(fail_when="big1")
    scheduler = StepScheduler(recorder.execute, recorder.execute_alone, budget=16, patience=5.0)

    def work(i: int) -> None:
        scheduler.submit(Request(["big0", "big1", "big2"] if i == 0 else [f"{i}"]))

    outcomes = members(scheduler, 3, work)
    assert isinstance(outcomes[0], ModelError) and outcomes[1:] == [None, None]
    assert sorted(row for step in recorder.steps for row in step) == ["1", "2"]


def test_waiting_for_what_no_other_member_can_give_is_an_error() -> None:
    scheduler = StepScheduler(lambda parts: None, lambda request: None, budget=4)
    leave = scheduler.join()
    with pytest.raises(ModelError, match="none left"):
        scheduler.wait_for(lambda: False, lambda: ModelError(None, "none left"))
    leave()

    given = threading.Event()

    def work(i: int) -> None:
        if i == 0:
            scheduler.wait_for(given.is_set, lambda: ModelError(None, "none left"))
        else:
            time.sleep(0.1)
            given.set()
            scheduler.changed()

    assert members(scheduler, 2, work) == [None, None]


def test_a_turn_keeps_decodes_out() -> None:
    recorder = Recorder()
    scheduler = StepScheduler(recorder.execute, recorder.execute_alone, budget=4)
    order: list[str] = []

    def other() -> None:
        scheduler.submit(Request(["x"]))
        order.append("decoded")

    with scheduler.turn():
        thread = threading.Thread(target=other)
        thread.start()
        time.sleep(0.1)
        order.append("turn ends")
    thread.join(5)
    assert order == ["turn ends", "decoded"]


def test_a_request_with_no_room_waits_for_another_run_to_end() -> None:
    from lmlang.models.batching import NoRoom

    class Full(Recorder):
        def __init__(self) -> None:
            super().__init__()
            self.room = False

        def execute(self, parts: list[Part]) -> None:
            rows = [row for request, start, end in parts for row in request.rows[start:end]]
            if "big" in rows and not self.room:
                raise NoRoom(ModelError(None, "the context window is full"))
            super().execute(parts)

    recorder = Full()
    scheduler = StepScheduler(recorder.execute, recorder.execute_alone, budget=16, patience=5.0)
    gone = threading.Event()

    def work(i: int) -> None:
        if i == 0:
            scheduler.submit(Request(["big", "big2"]))
            assert gone.is_set()  # it went through once the other run had ended
        else:
            scheduler.submit(Request(["small"]))
            recorder.room = True
            gone.set()

    assert members(scheduler, 2, work) == [None, None]
    assert ["big", "big2"] in recorder.steps + recorder.alone

    # alone, or when every run waits for room no run will free, it is an error
    recorder = Full()
    scheduler = StepScheduler(recorder.execute, recorder.execute_alone, budget=16, patience=5.0)
    outcomes = members(scheduler, 2, lambda i: scheduler.submit(Request(["big", f"{i}"])))
    assert any(isinstance(o, ModelError) for o in outcomes)
