"""A query over a dataset: one run per row, on several threads, results in the rows' order.

:func:`map_rows` is the engine (``Query.map`` in Python); :func:`map_file` is ``lmlang map``: rows from a JSON
Lines or CSV file, one output line per row written as soon as the rows before it are, so that an interrupted job
leaves a valid file and the same command resumes it.

The runs of rows on one model share its decode steps (lmlang.models.batching): ``concurrency`` rows at a time
advance together, one llama.cpp batch per step, which costs little more than one row alone. With ``ray=``, the
rows run on a Ray cluster instead (lmlang.cluster), one worker per node, and come back here in the same order.
"""

from __future__ import annotations

import csv
import io
import json
import os
import queue
import sys
import threading
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Container, Iterable, Iterator, Mapping

from lmlang.errors import InputError, LmlangError, UsageError
from lmlang.syntax import ast

Outcome = Any  # Result | list[Result] | Exception: what one row's run gave

# Parameters of Query.run that a row's field must not be mistaken for.
_RUN_PARAMETERS = {"model", "decoder", "decoder_args", "on_text", "reuse_prompts", "deterministic"}


@dataclass(frozen=True)
class Mapped:
    """One row's run: its position in the rows, the row, and a result (a list when the decoder gives several)
    or the exception the run raised."""

    index: int
    row: Any
    outcome: Outcome
    # The outcome's JSON as the process that ran the row wrote it (a Ray worker), where that process may show a
    # value differently (a class the query defined is named as it was there); None: written from the outcome.
    line: dict[str, Any] | None = None

    @property
    def failed(self) -> bool:
        return isinstance(self.outcome, BaseException)


def map_rows(query: Any, rows: Iterable[Any], model: str | None = None, *, concurrency: int = 1,
             skip: Container[int] = frozenset(), ray: bool | str | None = None, **options: Any) -> Iterator[Mapped]:
    """Run ``query`` on each row (a mapping of its inputs) except the indexes in ``skip``, ``concurrency`` rows
    at a time, yielding each row's :class:`Mapped` in the rows' order. A failing row yields its exception and
    the job goes on. Closing the iterator early drops the rows not started yet.

    ``ray``: run the rows on a Ray cluster, ``concurrency`` at a time on each node: True for ``ray.init()``'s
    cluster (``RAY_ADDRESS``, else a new local one), or a cluster's address (``"head:6379"``). A process
    already connected to Ray uses that connection."""
    if not isinstance(concurrency, int) or concurrency < 1:
        raise UsageError(None, f"concurrency is a number of threads, at least 1, not {concurrency!r}")
    if ray is not None and ray is not False:
        from lmlang.cluster import run_on_ray

        if ray is not True and (not isinstance(ray, str) or not ray.strip()):
            raise UsageError(None, f"ray is True or a cluster's address such as 'head:6379', not {ray!r}")
        todo = ((index, row) for index, row in enumerate(rows) if index not in skip)
        for index, row, outcome, line in run_on_ray(query, todo, model, address=ray, concurrency=concurrency,
                                                    options=options):
            yield Mapped(index, row, outcome, line)
        return
    work: queue.Queue[tuple[Any, Future] | None] = queue.Queue()

    def worker() -> None:
        while True:
            item = work.get()
            if item is None:
                return
            row, future = item
            if future.set_running_or_notify_cancel():
                future.set_result(_run_row(query, row, model, options))

    # Daemon threads: an interrupted job exits without waiting for the rows still running (their lines were
    # not written, so a resumed job runs them again).
    threads = [threading.Thread(target=worker, name=f"lmlang-map-{i}", daemon=True) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    pending: deque[tuple[int, Any, Future]] = deque()
    try:
        for index, row in enumerate(rows):
            if index in skip:
                continue
            future: Future = Future()
            pending.append((index, row, future))
            work.put((row, future))
            while len(pending) > 2 * concurrency:  # a bounded window: rows are read as the job goes
                index, row, future = pending.popleft()
                yield Mapped(index, row, future.result())
        while pending:
            index, row, future = pending.popleft()
            yield Mapped(index, row, future.result())
    finally:
        for _, _, future in pending:
            future.cancel()
        for _ in threads:
            work.put(None)


def _run_row(query: Any, row: Any, model: str | None, options: Mapping[str, Any]) -> Outcome:
    try:
        return query.run(model, **options, **row_inputs(query, row))
    except Exception as err:  # a row's failure is its outcome; the job goes on
        return err


def row_inputs(query: Any, row: Any) -> dict[str, Any]:
    """The inputs of ``query`` that ``row`` gives: the fields the query reads (the others, such as ``id`` or a
    label, are left out); an InputError when the row is not a mapping or lacks one."""
    if not isinstance(row, Mapping):
        raise InputError(None, f"a row is an object of the query's inputs, as in {{\"question\": \"...\"}}, "
                               f"not {type(row).__name__}")
    needed = query.compiled(()).missing_inputs({}, set())
    missing = [name for name in needed if name not in row]
    if missing:
        raise InputError(None, f"the row has no field {', '.join(missing)}: each row's fields are the query's "
                               f"inputs ({', '.join(needed)})")
    return query_inputs(query, row)


def query_inputs(query: Any, given: Mapping[str, Any]) -> dict[str, Any]:
    """The values of ``given`` that ``query`` reads as inputs."""
    needed = query.compiled(()).missing_inputs({}, set())
    clashing = [name for name in needed if name in _RUN_PARAMETERS]
    if clashing:
        raise InputError(None, f"an input called {clashing[0]} cannot be passed by name: rename it in the query")
    return {name: given[name] for name in needed if name in given}


def message_of(err: BaseException) -> str:
    """What the CLI would print for ``err``."""
    if isinstance(err, LmlangError):
        return err.render()
    return f"error: lmlang failed unexpectedly: {type(err).__name__}: {err}"


def result_json(outcome: Outcome) -> dict[str, Any]:
    """A run's ``--json`` output as one object (several results go under ``results``)."""
    if isinstance(outcome, BaseException):
        return {"error": message_of(outcome)}
    if isinstance(outcome, list):
        return {"results": [r.to_json() for r in outcome]}
    return outcome.to_json()


# ------------------------------------------------------------------------------------------------ files


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a ``.jsonl`` (one JSON object a line; blank lines skipped) or ``.csv`` (a header, then one row
    a line; values are text) file; a UsageError naming the line that is not a row."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8", newline="") as file:  # CSV fields may hold line breaks of their own
            text = file.read()
    except FileNotFoundError:
        raise UsageError(None, f"no such file: {path}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise UsageError(None, f"cannot read {path}: {err}") from None
    if _is_csv(path):
        reader = csv.DictReader(io.StringIO(text, newline=""))
        rows = []
        for row in reader:
            if None in row or None in row.values():
                raise UsageError(None, f"{path}:{reader.line_num}: the line has {'more' if None in row else 'fewer'} "
                                       f"fields than the header")
            rows.append(dict(row))
        return rows
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise UsageError(None, f"{path}:{number}: not a JSON object ({err.msg}): each line of the data is "
                                   "one row, as in {\"question\": \"...\"}") from None
        if not isinstance(row, dict):
            raise UsageError(None, f"{path}:{number}: a row is a JSON object of the query's inputs, "
                                   f"not {type(row).__name__}")
        rows.append(row)
    return rows


def _is_csv(path: Path) -> bool:
    return path.suffix.lower() == ".csv"


class _Output:
    """The results file: lines already there (read on resume), and the writing of new ones."""

    def __init__(self, path: Path, rows: list[dict[str, Any]], columns: list[str]) -> None:
        self.path = path
        self.csv = _is_csv(path)
        self.columns = ["index", "id", "error", "return", *columns, "prompt"]
        self.done: set[int] = set()
        self.failed = 0
        self._read_existing(rows)
        self.file = open(path, "a", encoding="utf-8", newline="")
        self._writer = csv.DictWriter(self.file, self.columns) if self.csv else None
        if self._writer is not None and self.file.tell() == 0:
            self._writer.writeheader()

    def _read_existing(self, rows: list[dict[str, Any]]) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        complete = data[: data.rfind(b"\n") + 1]  # a line cut short by a crash is dropped, and run again
        lines = complete.decode("utf-8", errors="replace").splitlines(keepends=True)
        if self.csv:
            records = list(csv.DictReader(lines)) if lines else []
            if lines and next(csv.reader(lines[:1]), []) != self.columns:
                raise UsageError(None, f"{self.path} is not the output of this query (other columns): "
                                       "choose another --out, or delete it to start again")
            entries = [(r.get("index"), r.get("id") or None, r.get("error")) for r in records]
        else:
            entries = []
            for number, line in enumerate(lines, 1):
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    raise UsageError(None, f"{self.path}:{number}: not a result line: choose another --out, or "
                                           "delete it to start again") from None
                entries.append((entry.get("index"), entry.get("id"), entry.get("error")))
        for index, row_id, error in entries:
            try:
                index = int(index)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                raise UsageError(None, f"{self.path} has a line without an index: choose another --out") from None
            expected = rows[index].get("id") if 0 <= index < len(rows) else None
            if not 0 <= index < len(rows) or (row_id is not None and str(row_id) != str(expected)):
                raise UsageError(None, f"{self.path} was written for other data (its row {index} is not this "
                                       "data's): choose another --out, or delete it to start again")
            self.done.add(index)
            self.failed += bool(error)
        if len(complete) < len(data):
            with open(self.path, "r+b") as file:
                file.truncate(len(complete))

    def write(self, item: Mapped) -> None:
        entry: dict[str, Any] = {"index": item.index}
        if isinstance(item.row, Mapping) and "id" in item.row:
            entry["id"] = item.row["id"]
        entry.update(result_json(item.outcome) if item.line is None else item.line)
        if self._writer is not None:
            self._writer.writerow(self._flat(entry))
        else:
            self.file.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self.file.flush()
        self.done.add(item.index)
        self.failed += item.failed

    def _flat(self, entry: dict[str, Any]) -> dict[str, Any]:
        best = entry["results"][0] if entry.get("results") else entry
        flat = {"index": entry["index"], "id": entry.get("id", ""), "error": entry.get("error", "")}
        if "error" not in entry:
            variables = best.get("variables", {})
            flat.update({k: _cell(variables.get(k)) for k in self.columns[4:-1]})
            flat["return"] = _cell(best.get("return"))
            flat["prompt"] = best.get("prompt", "")
        return flat

    def close(self) -> None:
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def hole_names(program: ast.Program) -> list[str]:
    """The names of the holes written in ``program``, in order of appearance, once each."""
    names: list[str] = []
    pending: list[Any] = [program]
    while pending:
        item = pending.pop(0)
        if isinstance(item, ast.Hole):
            if item.name not in names:
                names.append(item.name)
        elif isinstance(item, (list, tuple)):
            pending[:0] = list(item)
        elif hasattr(item, "__dataclass_fields__") and not isinstance(item, ast.Expr):
            pending[:0] = [getattr(item, name) for name in item.__dataclass_fields__]
    return names


def map_file(query: Any, data: str | Path, out: str | Path, model: str | None = None, *, concurrency: int = 1,
             progress: bool = True, on_line: Callable[[Mapped], None] | None = None, ray: bool | str | None = None,
             **options: Any) -> int:
    """``lmlang map``: run ``query`` on each row of ``data``, appending one line per row to ``out`` in the
    rows' order; rows ``out`` already has are skipped (a resumed job). ``ray``: on a Ray cluster, as
    :func:`map_rows` says. The number of rows that failed, in ``out`` as a whole."""
    if ray is not None and ray is not False:
        from lmlang.cluster import ray_module

        ray_module()  # without Ray, say how to install it before anything is written
    rows = read_rows(data)
    output = _Output(Path(out), rows, hole_names(query.program))
    bar = _progress(len(rows), len(output.done), output.failed, progress)
    try:
        for item in map_rows(query, rows, model, concurrency=concurrency, skip=output.done, ray=ray, **options):
            output.write(item)
            if on_line is not None:
                on_line(item)
            if bar is not None:
                bar.update(1)
                if item.failed:
                    bar.set_postfix(errors=output.failed, refresh=False)
    finally:
        output.close()
        if bar is not None:
            bar.close()
    return output.failed


def _progress(total: int, done: int, failed: int, shown: bool) -> Any:
    if not shown:
        return None
    from tqdm import tqdm

    bar = tqdm(total=total, initial=done, unit="row", file=sys.stderr, dynamic_ncols=True, smoothing=0.1)
    bar.set_postfix(errors=failed, refresh=False)
    return bar

