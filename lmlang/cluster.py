"""A query over rows on a Ray cluster: what ``lmlang map --ray`` and ``Query.map(rows, ray=...)`` run.

One long-lived actor per node of the cluster (on nodes with a CPU) holds the query and its model, loaded once
when the actor starts; the rows stream through the actors, a bounded number in flight, and come back in the rows'
order. Each actor runs a row exactly as ``Query.map`` runs it on one machine, so a row's result, or its error, is
the same wherever it ran.

Ray Data would also stream rows through actors, but everything it adds is for columns of data (Arrow blocks,
pandas, file systems) while a row here is a small dict and its result a Python object: its blocks would have to
hold results as pickled bytes, keeping the rows' order needs a global setting that slows it down, it draws
progress bars of its own, and it brings pyarrow and pandas. Plain actors give the order, the bounded window and
the per-row results directly, with Ray's core alone.

Ray is optional (``pip install 'lmlang[ray]'``) and imported only here, when a job asks for it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections import deque
from typing import Any, Iterable, Iterator, Mapping

from lmlang.errors import LmlangError, ModelError, UsageError
from lmlang.session import default_session

INSTALL = "pip install 'lmlang[ray]'"

Line = dict[str, Any] | None  # a row's result as JSON, as the worker that ran it wrote it

# How long the workers may take to start (placed by Ray, the query and its model loaded) before the job gives up.
START_SECONDS = 600.0


def ray_module() -> Any:
    """Ray, or a UsageError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise UsageError(None, f"running on Ray needs Ray, which is not installed: {INSTALL}") from None
    return ray


def run_on_ray(query: Any, items: Iterable[tuple[int, Any]], model: str | None, *, address: bool | str,
               concurrency: int, options: Mapping[str, Any]) -> Iterator[tuple[int, Any, Any, Line]]:
    """Run ``query`` on each ``(index, row)`` of ``items`` on a Ray cluster, ``concurrency`` rows at a time on each
    node, yielding ``(index, row, outcome, line)`` in the order of ``items``: an outcome is what ``Query.map``
    yields for the row (a result, a list of them, or the exception its run raised), and ``line`` a result's JSON
    as the worker wrote it (None for an exception).

    ``address``: a cluster's address (``"head:6379"``), or True for ``ray.init()``'s choice (``RAY_ADDRESS`` if
    set, else a new local cluster). When this process is already connected to Ray, that connection is used and
    left open; one opened here is closed at the end."""
    ray = ray_module()
    owned = not ray.is_initialized()
    if owned:
        _connect(ray, address)
    actors: list[Any] = []
    try:
        actors = _start_workers(ray, query, model, concurrency, options)
        yield from _stream(ray, actors, items, concurrency)
    finally:
        for actor in actors:
            ray.kill(actor)
        if owned:
            ray.shutdown()


def _connect(ray: Any, address: bool | str) -> None:
    # Ray's usage statistics are sent over the network by default: nothing of lmlang's reaches out at run time.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    target = address if isinstance(address, str) else os.environ.get("RAY_ADDRESS")
    settings: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.ERROR}
    if not target:
        settings["include_dashboard"] = False  # a new local cluster: only what the job needs
    try:
        ray.init(address=target or None, **settings)
    except Exception as err:  # Ray raises ConnectionError, ValueError, RuntimeError... for a cluster it cannot use
        where = f"the Ray cluster at {target}" if target else "a local Ray cluster"
        raise ModelError(None, f"cannot connect to {where}: {_gist(err.__cause__ or err)}") from None


def _start_workers(ray: Any, query: Any, model: str | None, concurrency: int,
                   options: Mapping[str, Any]) -> list[Any]:
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    nodes = [n["NodeID"] for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) >= 1]
    if not nodes:
        raise ModelError(None, "the Ray cluster has no node with a CPU to run the query on")
    worker = ray.remote(RowWorker)
    # The query travels inline with each actor's creation (it is small), so that a restarted actor finds it; as
    # a fresh copy, since the programs this process compiled from it live in modules of this process only.
    shipped = (type(query)(query.program, query.name), model, dict(options))
    actors: list[Any] = []
    try:
        for node in nodes:
            actors.append(worker.options(num_cpus=1, max_concurrency=concurrency, max_restarts=2,
                                         max_task_retries=1,
                                         scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False))
                          .remote(shipped))
    except Exception as err:  # the query holds a Python value that cannot be pickled (a lock, an open file)
        for actor in actors:
            ray.kill(actor)
        raise UsageError(None, f"the query cannot be sent to the Ray workers: {_gist(err)}") from None
    ready = [actor.ready.options(max_task_retries=0).remote() for actor in actors]
    done, waiting = ray.wait(ready, num_returns=len(ready), timeout=START_SECONDS)
    if waiting:
        for actor in actors:
            ray.kill(actor)
        raise ModelError(None, f"{len(waiting)} of the {len(actors)} Ray workers did not start in "
                               f"{START_SECONDS:.0f} s: does every node have a free CPU?")
    try:
        ray.get(done)
    except Exception as err:  # most often: lmlang, or one of its models, is not installed on a node
        for actor in actors:
            ray.kill(actor)
        raise ModelError(None, f"a Ray worker could not start: {_gist(err)}; every node needs lmlang and "
                               f"its models installed (pip install 'lmlang[ray]')") from None
    return actors


def _stream(ray: Any, actors: list[Any], items: Iterable[tuple[int, Any]],
            concurrency: int) -> Iterator[tuple[int, Any, Any, Line]]:
    # Each actor runs `concurrency` rows and has one more queued, so that it never waits for this process; rows
    # finished out of order wait here, within a window of twice what the actors hold.
    room = concurrency + 1
    window = 2 * room * len(actors)
    load = {id(actor): 0 for actor in actors}
    owner: dict[Any, Any] = {}  # a running row's reference -> the actor running it
    pending: deque[tuple[int, Any, Any]] = deque()  # (index, row, reference), in the rows' order
    finished: set[Any] = set()
    rows = iter(items)
    exhausted = False
    try:
        while True:
            while not exhausted and len(pending) < window:
                actor = min(actors, key=lambda a: load[id(a)])
                if load[id(actor)] >= room:
                    break
                item = next(rows, None)
                if item is None:
                    exhausted = True
                    break
                reference = actor.run.remote(item[1])
                pending.append((item[0], item[1], reference))
                owner[reference] = actor
                load[id(actor)] += 1
            if not pending:
                return
            index, row, reference = pending[0]
            if reference in finished:
                pending.popleft()
                finished.discard(reference)
                yield (index, row, *_outcome(ray, reference))
                continue
            ready, _ = ray.wait([p[2] for p in pending if p[2] not in finished], num_returns=1)
            for done in ready:
                finished.add(done)
                load[id(owner.pop(done))] -= 1
    finally:  # a job closed early (Ctrl-C): the rows still out are dropped rather than retried on a killed worker
        for _, _, reference in pending:
            try:
                ray.cancel(reference)
            except Exception:  # already finished, or its worker already gone
                pass


def _outcome(ray: Any, reference: Any) -> tuple[Any, Line]:
    try:
        outcome, line = ray.get(reference)
    except Exception as err:  # the worker died with the row (killed, out of memory) even after Ray's retry
        return ModelError(None, f"the Ray worker running this row stopped: {_gist(err)}"), None
    return (outcome.restored() if isinstance(outcome, Raised) else outcome), line


def _gist(err: BaseException) -> str:
    """What a Ray error says in one line: its last, where Ray puts the cause (a remote traceback's exception)."""
    text = str(err).strip()
    return text.splitlines()[-1] if text else type(err).__name__


class Raised:
    """A row's exception on its way back from a worker: lmlang's errors take their span and message as
    arguments, which pickle cannot give back, so the class and the attributes travel instead."""

    def __init__(self, err: BaseException) -> None:
        self.kind: type[BaseException] | None = type(err)
        self.args = err.args
        self.state = dict(vars(err))
        self.message = err.message if isinstance(err, LmlangError) else f"{type(err).__name__}: {err}"
        self.lmlang = isinstance(err, LmlangError)
        if not _portable((self.kind, self.args, self.state)):  # an attribute that cannot travel: the message does
            self.kind, self.args, self.state = None, (), {}

    def restored(self) -> BaseException:
        if self.kind is not None:
            err = self.kind.__new__(self.kind)
            err.args = self.args
            vars(err).update(self.state)
            return err
        return LmlangError(None, self.message) if self.lmlang else RuntimeError(self.message)


class RowWorker:
    """A Ray actor: the query, the model it runs on (loaded when the actor starts) and the run's options."""

    def __init__(self, shipped: tuple[Any, str | None, dict[str, Any]]) -> None:
        self.query, self.model, self.options = shipped
        name = self.model if self.model is not None else self.query.model_name
        if name is not None or self.query.program.model is None:
            try:
                default_session().load(name)
            except Exception:  # an unknown model fails each row with its message, as it does on one machine
                pass

    def ready(self) -> bool:
        return True

    def run(self, row: Any) -> tuple[Any, Line]:
        outcome = next(iter(self.query.map([row], self.model, **self.options)))
        if isinstance(outcome, BaseException):
            return Raised(outcome), None
        results = outcome if isinstance(outcome, list) else [outcome]
        lines = [result.to_json() for result in results]
        if not _portable(results):  # a value that only this process can hold: its JSON stands in for it
            results = [_as_json(result, line) for result, line in zip(results, lines)]
        if isinstance(outcome, list):
            return results, {"results": lines}
        return results[0], lines[0]


def _portable(value: Any) -> bool:
    from ray import cloudpickle  # as Ray itself sends values

    try:
        cloudpickle.dumps(value)
    except Exception:
        return False
    return True


def _as_json(result: Any, line: dict[str, Any]) -> Any:
    return dataclasses.replace(result, variables=line["variables"], return_value=line["return"],
                               trace=line.get("trace", []),
                               distributions={k: [tuple(c) for c in v] for k, v in line.get("distributions", {}).items()})
