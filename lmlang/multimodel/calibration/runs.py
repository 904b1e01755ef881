"""Each model of the cascade run once on each labeled input: its answer, the score the threshold is compared
with, and what the run cost. Runs are cached on disk per model and query, since models are slow and
calibration is repeated with other targets.

The query runs whole through its own ``run``, on a session whose ``probe`` says which model's stage the cascade
it reaches runs alone, recording the score.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lmlang.multimodel import cost
from lmlang.multimodel.calibration.data import Item, Plan, normal
from lmlang.multimodel.cascade import Probe

DEFAULT_CACHE = Path.home() / ".cache" / "lmlang" / "calibrate"

# Bumped when a run of the same query can give another answer than before (every run starts from an empty KV
# cache), so that cached observations of older runs are not mixed with new ones.
_RUNS = 4
_SAVE_EVERY = 20


@dataclass(frozen=True)
class Observation:
    """One model's run on one item."""

    answer: Any
    score: float
    correct: bool
    cost: float
    work: cost.Work | None = None  # tokens and seconds of each kind, for prices that match the machine


def observe(query: Any, source: str, plan: Plan, items: list[Item], cache: Path | None,
            session: Any) -> dict[str, list[Observation]]:
    """Each model of the cascade run once on each item, on ``session`` (a ``lmlang.Session`` of calibration's
    own): its answer, score and cost (cached per model)."""
    observations: dict[str, list[Observation]] = {}
    for model in plan.models:
        stored = _load_cache(cache, source, model)
        rows, fresh = [], 0
        for item in items:
            key = json.dumps(item.inputs, sort_keys=True, ensure_ascii=False)
            if "prefill_seconds" not in stored.get(key, {}):
                probe = session.probe = Probe(model, plan.score)
                try:
                    result = query.run(model, session=session, **item.inputs)
                finally:
                    session.probe = None
                record = probe.records[0]
                stored[key] = {**record, "answer": result.variables.get(plan.answer)}
                fresh += 1
                if fresh % _SAVE_EVERY == 0:  # a long run stopped half way keeps what it did
                    _save_cache(cache, source, model, stored)
            record = stored[key]
            spent, _ = cost.cost(model, record["prefill_tokens"], record["generated_tokens"], record["seconds"])
            work = cost.Work(record["prefill_tokens"], record["generated_tokens"], record["prefill_seconds"],
                             record["seconds"])
            rows.append(Observation(record["answer"], record["score"], normal(record["answer"]) == normal(item.label),
                                    spent, work))
        _save_cache(cache, source, model, stored)
        observations[model] = rows
    return observations


def _cache_file(cache: Path, source: str, model: str) -> Path:
    digest = hashlib.sha256(f"{model}\0{source}\0{_RUNS}".encode()).hexdigest()[:20]
    return cache / f"{model}-{digest}.json"


def _load_cache(cache: Path | None, source: str, model: str) -> dict[str, Any]:
    if cache is None:
        return {}
    path = _cache_file(cache, source, model)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _save_cache(cache: Path | None, source: str, model: str, stored: dict[str, Any]) -> None:
    if cache is None:
        return
    cache.mkdir(parents=True, exist_ok=True)
    path = _cache_file(cache, source, model)
    # Written aside then renamed, so a run stopped while saving, or another reading meanwhile, never sees half a file.
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    partial.write_text(json.dumps(stored, ensure_ascii=False), encoding="utf-8")
    os.replace(partial, path)
