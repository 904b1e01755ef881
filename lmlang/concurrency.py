"""Runs from many threads at once: each loaded model has a lock that a run holds for as long as it uses the model.

Runs on one model share it (the lock is taken in shared mode): their evaluations go to the model's scheduler,
which steps them together in shared llama.cpp decodes (lmlang.models.batching). A *deterministic* run takes the
lock alone instead, waiting for the runs in progress and keeping new ones waiting until it ends, so that its
numbers are those of a run alone on an empty cache. A run enters a :func:`run_scope` and calls :func:`use` for
each model it reaches (its own, a cascade's stages); the locks it took are let go when the scope ends. Locks are
re-entrant per thread, so a query whose Python runs another query on the same model goes on.

Two runs that each hold one model and wait for the other's would wait forever, so a run that may use several
models (a ``cascade``, ``route`` or ``ensemble``) first takes the multi-model gate, which one such run holds at a
time: runs holding one model never wait for another, and the one run that may hold several finishes. What the
gate cannot foresee (a query's Python starting a run on another model while a multi-model run waits for this
one's) is found when the wait would close a cycle and raised as a ModelError instead of hanging.
"""

from __future__ import annotations

import dataclasses
import threading
import weakref
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

from lmlang.errors import ModelError, UsageError
from lmlang.syntax import ast

# One mutex for the state of every lock: who owns it, who waits for what. Waits are short-lived bookkeeping;
# the runs themselves happen outside it.
_state = threading.Condition(threading.Lock())
_waiting: dict[int, ModelLock] = {}  # thread id -> the lock it waits for


class ModelLock:
    """A re-entrant reader-writer lock that knows its holders, so that a wait which could never end is found:
    held by one thread alone, or shared by several."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._owner: int | None = None  # the thread holding it alone
        self._count = 0
        self._shared: dict[int, int] = {}  # thread -> how many times it holds it shared
        self._writers = 0  # threads waiting to hold it alone: new sharers wait behind them

    def __repr__(self) -> str:
        return f"<ModelLock {self.name}: held alone {self._count} time(s), shared by {len(self._shared)}>"

    def held_here(self) -> bool:
        me = threading.get_ident()
        return self._owner == me or me in self._shared

    def holders(self) -> list[int]:
        return [self._owner] if self._owner is not None else list(self._shared)

    def acquire(self, shared: bool = False) -> bool:
        """Take the lock (alone, or ``shared`` with other sharers), waiting as long as that is not possible; a
        thread that holds it already holds it once more, in the mode it has. Whether this thread did not hold
        it before."""
        me = threading.get_ident()
        with _state:
            if self._owner == me:
                self._count += 1
                return False
            if me in self._shared:
                self._shared[me] += 1
                return False
            if shared:
                # Behind a waiting writer, unless this thread holds other locks (the writer may be waiting for one).
                while self._owner is not None or (self._writers and not _held.get(me)):
                    self._wait(me)
                self._shared[me] = 1
            else:
                self._writers += 1
                try:
                    while self._owner is not None or self._shared:
                        self._wait(me)
                finally:
                    self._writers -= 1
                self._owner, self._count = me, 1
            _held[me] = _held.get(me, 0) + 1
            return True

    def _wait(self, me: int) -> None:
        cycle = _cycle_through(me, self)
        if cycle:
            raise ModelError(None, f"runs on {' and '.join(cycle)} would wait for each other forever: "
                                   "a query's Python should not start a run on another model while a "
                                   "multi-model run is under way; run them one after the other")
        _waiting[me] = self
        try:
            _state.wait()
        finally:
            del _waiting[me]

    def release(self) -> None:
        me = threading.get_ident()
        with _state:
            if self._owner == me:
                self._count -= 1
                if self._count:
                    return
                self._owner = None
            elif me in self._shared:
                self._shared[me] -= 1
                if self._shared[me]:
                    return
                del self._shared[me]
            else:
                raise RuntimeError(f"{self.name}'s lock released by a thread that does not hold it")
            _held[me] -= 1
            if not _held[me]:
                del _held[me]
            _state.notify_all()


_held: dict[int, int] = {}  # thread id -> how many locks it holds


def _cycle_through(me: int, wanted: ModelLock) -> list[str]:
    """The names of the locks in the wait cycle that ``me`` waiting for ``wanted`` would close; [] if none."""
    pending, seen = [(wanted, [wanted.name])], set()
    while pending:
        lock, names = pending.pop()
        for holder in lock.holders():
            if holder == me:
                return names
            if holder in seen:
                continue
            seen.add(holder)
            next_lock = _waiting.get(holder)
            if next_lock is not None:
                pending.append((next_lock, [*names, next_lock.name]))
    return []


GATE = ModelLock("multi-model runs")
_locks: weakref.WeakKeyDictionary[Any, ModelLock] = weakref.WeakKeyDictionary()  # model -> its lock


def lock_of(model: Any) -> ModelLock:
    """The lock of a loaded model (made on first use; it goes with the model)."""
    with _state:
        lock = _locks.get(model)
        if lock is None:
            lock = _locks[model] = ModelLock(getattr(model, "name", repr(model)))
        return lock


def locked_models() -> list[Any]:
    """The models that have a lock, that is every model a run has used."""
    with _state:
        return list(_locks.keys())


@dataclass
class _Scope:
    fresh: bool
    shared: bool = True
    held: list[ModelLock] = field(default_factory=list)
    leaving: list[Callable[[], None]] = field(default_factory=list)


_local = threading.local()


def _scopes() -> list[_Scope]:
    if not hasattr(_local, "scopes"):
        _local.scopes = []
    return _local.scopes


def in_run() -> bool:
    """Whether this thread is inside a run (a query's Python calling back into lmlang)."""
    return bool(_scopes())


@contextmanager
def run_scope(*, fresh: bool, multi_model: bool, deterministic: bool = False) -> Iterator[None]:
    """A run on this thread: the model locks :func:`use` takes inside it are held until it ends. ``fresh``: a
    model's idle prompts and cache are emptied when the run takes its lock, if no other run is using the model
    (so the result does not depend on the runs before it). ``multi_model``: the run may use several models, so
    it takes the gate first. ``deterministic``: the run holds its models alone, outside the shared decodes."""
    scope = _Scope(fresh, not deterministic)
    scopes = _scopes()
    scopes.append(scope)
    try:
        if multi_model:
            _take(scope, GATE)
        yield
    finally:
        scopes.pop()
        try:
            for leave in reversed(scope.leaving):
                leave()
        finally:
            for lock in reversed(scope.held):
                lock.release()


def use(model: Any, clear: Callable[[], None], leave: Callable[[], None] | None = None,
        join: Callable[[], Callable[[], None]] | None = None) -> None:
    """Take ``model``'s lock for the rest of the current run (shared with the runs on other threads, or alone for
    a deterministic run, waiting as long as needed). When this thread did not hold it already: ``join`` (the
    model's scheduler) counts the thread among the model's runs until the run ends; in a fresh run, ``clear``
    empties what earlier runs left in the model when no other run is using it, and ``leave`` runs when the run
    ends, before the lock is let go. Outside a run, nothing is taken."""
    scopes = _scopes()
    if not scopes:
        return
    scope = scopes[-1]
    lock = lock_of(model)
    if lock in scope.held:
        return
    if not lock.held_here() and not GATE.held_here() and any(held is not GATE for s in scopes for held in s.held):
        _take(scope, GATE)  # a second model: only the gate's holder may hold several
    if not _take(scope, lock, shared=scope.shared):
        return
    if join is not None:
        scope.leaving.append(join())
    if scope.fresh:
        with _state:
            alone = lock.holders() == [threading.get_ident()]
        if alone:
            clear()
        if leave is not None:
            scope.leaving.append(leave)


def _take(scope: _Scope, lock: ModelLock, shared: bool = False) -> bool:
    first = lock.acquire(shared)
    scope.held.append(lock)
    return first


@contextmanager
def exclusive(models: Sequence[Any]) -> Iterator[None]:
    """Hold ``models`` with no run on them (waiting for the runs in progress to end), to close them."""
    for model in models:
        if lock_of(model).held_here():
            raise UsageError(None, f"{model.name} cannot be unloaded by a run that is using it")
    taken: list[ModelLock] = []
    try:
        GATE.acquire()
        taken.append(GATE)
        for model in models:
            lock = lock_of(model)
            lock.acquire()
            taken.append(lock)
        yield
    finally:
        for lock in reversed(taken):
            lock.release()


def may_use_several_models(program: ast.Program) -> bool:
    """Whether ``program`` has a multi-model statement (``cascade``, ``route``, ``ensemble``) anywhere in it."""
    pending: list[Any] = [program]
    while pending:
        item = pending.pop()
        if isinstance(item, (ast.Cascade, ast.Route, ast.Ensemble)):
            return True
        if isinstance(item, (list, tuple)):
            pending.extend(item)
        elif dataclasses.is_dataclass(item) and not isinstance(item, ast.Expr):
            pending.extend(getattr(item, f.name) for f in dataclasses.fields(item))
    return False
