"""Concurrent runs on one model, stepped together: each llama_decode carries the next tokens of every run that is
waiting for one (continuous batching).

A run's thread asks the model to evaluate tokens (its next token, a prompt to prefill, the tokens several of its
own sequences add in lockstep) and blocks; a :class:`StepScheduler` gathers the requests of all threads into
shared decode calls. llama.cpp computes a batch of sequences in little more time than one sequence, so runs that
wait together advance together.

When to decode. The threads that are runs on the model (:meth:`StepScheduler.join`) are its *members*. A step
starts as soon as every member is waiting (the usual case: runs of one query spend most of their time in the
model), or when no request has come for ``patience`` seconds (a member busy with its own Python must not hold
the others up for long), or at once when a request is part-way through (the rest of a long prompt).

What a step holds. A run alone on the model has its request evaluated whole, in the blocks a run alone always
uses (lmlang.models.kvcache.BLOCK), so its numbers are bit for bit what they would be with no scheduler at all.
With several members, one step is one decode of at most ``budget`` tokens: requests with the fewest tokens left
first (the next tokens of runs that are generating), then as much of the longer ones (prompts) as fits, so that a
long prompt is prefilled over several steps while the other runs keep generating. llama.cpp's numbers depend
slightly on what else shares a decode, so shared steps can turn a near tie: :attr:`StepScheduler.shared_steps`
counts them, for callers that must know whether a cache's contents are exactly those of a run alone.

Everything else that touches the llama.cpp context (removing or copying a sequence's cells, saving or restoring
a state) takes a :meth:`StepScheduler.turn`, so it never overlaps a decode.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator

PATIENCE = 0.004  # seconds without a new request after which the members not waiting yet are not waited for


class NoRoom(Exception):
    """What an executor raises when the cache has no room for a step's tokens (``error`` says so to the user)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


class Request:
    """Rows of tokens to evaluate for one thread, and what their evaluation gave."""

    __slots__ = ("rows", "taken", "thread", "since", "done", "error", "results", "room_after", "room_error")

    def __init__(self, rows: list[Any]) -> None:
        self.rows = rows
        self.taken = 0  # rows evaluated so far
        self.thread = threading.get_ident()
        self.since = time.monotonic()
        self.done = False
        self.error: BaseException | None = None
        self.results: Any = None  # filled in by the model's executor
        self.room_after: int | None = None  # waiting for room in the cache until more runs than this have ended
        self.room_error: BaseException | None = None  # what to raise if that never comes

    @property
    def remaining(self) -> int:
        return len(self.rows) - self.taken


Part = tuple[Request, int, int]  # a request and the slice [start, end) of its rows in one decode


class StepScheduler:
    """The shared decode steps of one model's concurrent runs.

    ``execute(parts)`` evaluates the given slices of requests in one llama_decode (raising on failure, with
    nothing of them applied); ``execute_alone(request)`` evaluates one request whole, as a run alone does.
    """

    def __init__(self, execute: Callable[[list[Part]], None], execute_alone: Callable[[Request], None],
                 budget: int, patience: float = PATIENCE) -> None:
        self._execute = execute
        self._execute_alone = execute_alone
        self.budget = budget
        self.patience = patience
        self.shared_steps = 0
        self._cond = threading.Condition(threading.Lock())
        self._queue: list[Request] = []
        self._members: dict[int, int] = {}  # thread -> how many runs of that thread joined
        self._owner: int | None = None  # the thread decoding or holding a turn
        self._idle_waiters: set[int] = set()  # members waiting for a resource another member holds
        self._ended = 0  # runs that left so far: each may have freed room in the cache

    # -- members --------------------------------------------------------------------------------------------------

    def join(self) -> Callable[[], None]:
        """Make the calling thread a member until the returned function is called (once)."""
        me = threading.get_ident()
        with self._cond:
            self._members[me] = self._members.get(me, 0) + 1
        left = False

        def leave() -> None:
            nonlocal left
            if left:
                return
            left = True
            with self._cond:
                count = self._members.get(me, 0) - 1
                self._ended += 1
                if count > 0:
                    self._members[me] = count
                else:
                    self._members.pop(me, None)
                self._cond.notify_all()  # the others may have been waiting for this thread

        return leave

    def others(self) -> bool:
        """Whether runs on other threads are members now."""
        me = threading.get_ident()
        return any(thread != me for thread in self._members)

    # -- steps ----------------------------------------------------------------------------------------------------

    def submit(self, request: Request) -> None:
        """Block until ``request``'s rows are evaluated (in steps shared with other threads' requests); raise
        what its evaluation raised."""
        me = request.thread
        with self._cond:
            if self._owner == me:  # inside a turn of this thread: nobody else can step now
                self._lead([request], alone=True)
            else:
                self._queue.append(request)
                while not request.done:
                    wait = self._wait_time()
                    if wait == 0.0:
                        alone = not self.others() and all(r.thread == me for r in self._queue)
                        batch = list(self._queue) if alone else self._gather()
                        self._lead(batch, alone)
                    else:
                        self._cond.wait(wait)
        if request.error is not None:
            raise request.error

    def _wait_time(self) -> float | None:
        """0.0 when a step may start now; else how long to wait before looking again (None: until notified)."""
        if self._owner is not None or not self._queue:
            return None
        ready = self._eligible()
        waiting = {r.thread for r in self._queue} | self._idle_waiters
        everyone = all(thread in waiting for thread in self._members)
        if not ready:
            if everyone:  # all wait for room that no run will free: the one needing the most gives up
                stuck = max(self._queue, key=lambda r: r.remaining)
                stuck.error, stuck.done = stuck.room_error, True
                self._queue.remove(stuck)
                self._cond.notify_all()
            return None
        if everyone or any(r.taken for r in ready):
            return 0.0
        # Members still arriving (one after the other, as the interpreter lock lets them) are waited for; a member
        # that has not come ``patience`` after the latest arrival is busy with something else.
        left = self.patience - (time.monotonic() - max(r.since for r in self._queue))
        return 0.0 if left <= 0 else left

    def _eligible(self) -> list[Request]:
        """The queued requests not waiting for room in the cache."""
        return [r for r in self._queue if r.room_after is None or r.room_after < self._ended]

    def _gather(self) -> list[Part]:
        """The next shared step: the requests with the fewest rows left first, as much as fits the budget."""
        room, parts = self.budget, []
        for request in sorted(self._eligible(), key=lambda r: r.remaining):
            if room == 0:
                break
            take = min(room, request.remaining)
            parts.append((request, request.taken, request.taken + take))
            room -= take
        return parts

    def _lead(self, batch: list[Any], alone: bool) -> None:
        """Evaluate ``batch`` (requests when ``alone``, else parts) with the lock let go; called holding it."""
        me = threading.get_ident()
        nested = self._owner == me
        self._owner = me
        self._cond.release()
        try:
            if alone:
                for request in batch:
                    self._run_alone(request)
            else:
                self._run_shared(batch)
        finally:
            self._cond.acquire()
            if not nested:
                self._owner = None
            self._queue = [r for r in self._queue if not r.done]
            self._cond.notify_all()

    def _run_alone(self, request: Request) -> None:
        try:
            self._execute_alone(request)
            request.taken = len(request.rows)
        except NoRoom as full:
            request.error = full.error
        except BaseException as error:  # the run that asked gets it; the scheduler goes on
            request.error = error
        request.done = True

    def _run_shared(self, parts: list[Part]) -> None:
        self.shared_steps += 1
        try:
            self._execute(parts)
        except NoRoom as full:
            # The cache is full: the request with the most tokens in the step waits until another run ends (and
            # frees its cells), unless it is the only run.
            culprit = max(parts, key=lambda part: part[2] - part[1])[0]
            with self._cond:
                others = any(thread != culprit.thread for thread in self._members)
                if others:
                    culprit.room_after = self._ended
                    culprit.room_error = full.error
                else:
                    culprit.error, culprit.done = full.error, True
            return
        except BaseException as error:
            # Nothing of the step was applied: the request with the most tokens in it gives up (when the cache is
            # full, it is the one that needs the room); the others are tried again in the next step.
            culprit = max(parts, key=lambda part: part[2] - part[1])[0]
            culprit.error, culprit.done = error, True
            return
        for request, _, end in parts:
            request.taken = end
            if end == len(request.rows):
                request.done = True

    # -- everything else on the context -------------------------------------------------------------------------

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Hold the context, with no decode under way, for an operation on its cache (re-entrant per thread)."""
        me = threading.get_ident()
        with self._cond:
            while self._owner is not None and self._owner != me:
                self._cond.wait()
            nested = self._owner == me
            self._owner = me
        try:
            yield
        finally:
            with self._cond:
                if not nested:
                    self._owner = None
                self._cond.notify_all()

    def wait_for(self, ready: Callable[[], bool], stuck: Callable[[], BaseException]) -> None:
        """Wait until ``ready()`` (checked whenever something changes: a step, a member leaving, a turn ending),
        while the other members go on; ``stuck()`` is raised when no other member could ever change it."""
        me = threading.get_ident()
        with self._cond:
            while not ready():
                others = [t for t in self._members if t != me]
                # Holding a turn, this thread keeps every other member from stepping: none could give anything.
                if not others or self._owner == me or all(t in self._idle_waiters for t in others):
                    raise stuck()
                self._idle_waiters.add(me)
                try:
                    self._cond.notify_all()  # a step waiting for this thread may start now
                    self._cond.wait(0.05)
                finally:
                    self._idle_waiters.discard(me)

    def changed(self) -> None:
        """Wake the threads in :meth:`wait_for` (something they wait for may be there now)."""
        with self._cond:
            self._cond.notify_all()
