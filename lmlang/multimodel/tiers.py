"""Cascades of any number of stages, one threshold per stage, fitted jointly on labeled observations.

A cascade of n models has n - 1 thresholds (the last model always answers). Fitting searches the grid of
per-stage thresholds: each stage's candidates are the scores its model gave on the fitting rows (thinned to
quantiles when there are many, so the grid stays small), and the search keeps the cheapest combination meeting
the target, or the most accurate within a budget. Random mixing, the baseline a cascade must beat, is the best
accuracy that sending each input to a model picked at random (with fixed shares) reaches at a given cost: the
upper hull of the single models' (cost, accuracy) points.

Everything here works on plain lists (per stage, per row) so that it does not depend on how observations are
gathered (``lmlang.multimodel.calibrate``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lmlang.errors import UsageError
from lmlang.multimodel.cost import Price

GRID_SIZE = 2000  # at most about this many threshold combinations are tried


@dataclass(frozen=True)
class Observed:
    """n stages' observations on the same rows: ``scores[stage][row]``, whether right, and what it cost."""

    scores: Sequence[Sequence[float]]
    correct: Sequence[Sequence[bool]]
    costs: Sequence[Sequence[float]]

    @property
    def stages(self) -> int:
        return len(self.scores)


@dataclass(frozen=True)
class Outcome:
    """A cascade's result on some rows: accuracy, share of inputs past the first stage, mean cost per input,
    and the share answered at each stage."""

    accuracy: float
    escalation: float
    cost: float
    answered: tuple[float, ...]


def passes(score: float, threshold: float, at_least: bool) -> bool:
    return score >= threshold if at_least else score <= threshold


def outcome(observed: Observed, rows: Sequence[int], thresholds: Sequence[float], at_least: bool) -> Outcome:
    """The cascade on ``rows`` with ``thresholds[i]`` for stage i: each input is answered by the first stage whose
    score passes, or by the last."""
    return _walk(observed, rows, lambda stage, row: passes(observed.scores[stage][row], thresholds[stage], at_least))


def _walk(observed: Observed, rows: Sequence[int], stops: Callable[[int, int], bool]) -> Outcome:
    """Each input goes through the stages in order, paying each one's cost, until ``stops(stage, row)`` or the
    last stage answers it."""
    last = observed.stages - 1
    correct = 0
    spent = 0.0
    answered = [0] * observed.stages
    for row in rows:
        for stage in range(observed.stages):
            spent += observed.costs[stage][row]
            if stage == last or stops(stage, row):
                correct += observed.correct[stage][row]
                answered[stage] += 1
                break
    n = len(rows)
    return Outcome(correct / n, 1 - answered[0] / n, spent / n, tuple(a / n for a in answered))


def candidates(observed: Observed, rows: Sequence[int], size: int | None = None) -> list[list[float]]:
    """Each non-last stage's candidate thresholds: accept nothing, each distinct score (thinned to ``size``
    quantiles), accept everything. Which end means "accept everything" depends on the comparison, so both
    infinities are always there."""
    size = size or max(4, int(GRID_SIZE ** (1 / max(observed.stages - 1, 1))))
    out = []
    for stage in range(observed.stages - 1):
        scores = sorted({observed.scores[stage][r] for r in rows})
        if len(scores) > size:
            scores = sorted({scores[round(i * (len(scores) - 1) / (size - 1))] for i in range(size)})
        out.append([float("-inf"), *scores, float("inf")])
    return out


def search(observed: Observed, rows: Sequence[int], at_least: bool,
           size: int | None = None) -> list[tuple[tuple[float, ...], Outcome]]:
    """Every combination of the stages' candidate thresholds, with its outcome on ``rows``."""
    return [(combo, outcome(observed, rows, combo, at_least))
            for combo in itertools.product(*candidates(observed, rows, size))]


def choose(options: Sequence[tuple[tuple[float, ...], Outcome]],
           target: tuple[str, float]) -> tuple[tuple[float, ...], bool]:
    """The option best meeting ``target`` (``accuracy``: cheapest reaching it; ``escalation``: most accurate
    escalating at most that share; ``budget``: most accurate costing at most that), and whether it is met; when
    none meets it, the closest: most accurate, least escalating or cheapest."""
    kind, goal = target
    if kind == "accuracy":
        meeting = [(o.cost, -o.accuracy, t) for t, o in options if o.accuracy >= goal]
        fallback = max(options, key=lambda x: (x[1].accuracy, -x[1].cost))[0]
    elif kind == "escalation":
        meeting = [(-o.accuracy, o.cost, t) for t, o in options if o.escalation <= goal]
        fallback = min(options, key=lambda x: (x[1].escalation, x[1].cost))[0]
    else:
        meeting = [(-o.accuracy, o.cost, t) for t, o in options if o.cost <= goal]
        fallback = min(options, key=lambda x: (x[1].cost, -x[1].accuracy))[0]
    if meeting:
        return min(meeting)[2], True
    return fallback, False


def frontier(options: Sequence[tuple[tuple[float, ...], Outcome]]) -> list[tuple[tuple[float, ...], Outcome]]:
    """The options no other beats on both cost and accuracy, cheapest first."""
    best: list[tuple[tuple[float, ...], Outcome]] = []
    for t, o in sorted(options, key=lambda x: (x[1].cost, -x[1].accuracy)):
        if not best or o.accuracy > best[-1][1].accuracy:
            best.append((t, o))
    return best


def mixing_accuracy(singles: Sequence[tuple[float, float]], budget: float) -> float:
    """The best accuracy random mixing of the single models reaches spending ``budget`` per input.

    ``singles`` are (cost, accuracy) points. Mixing two models with shares s and 1 - s lands on the segment
    between them, so the best mixing is the upper hull of the points; below the cheapest model's cost nothing
    can be spent less, so that model's accuracy is the answer there.
    """
    points = sorted(singles)
    hull: list[tuple[float, float]] = []
    for p in points:
        if hull and p[1] <= hull[-1][1]:
            continue  # costlier and no more accurate: never worth mixing in
        while len(hull) >= 2 and _cross(hull[-2], hull[-1], p) >= 0:
            hull.pop()
        hull.append(p)
    if budget <= hull[0][0]:
        return hull[0][1]
    for a, b in itertools.pairwise(hull):
        if budget <= b[0]:
            return a[1] + (budget - a[0]) / (b[0] - a[0]) * (b[1] - a[1])
    return hull[-1][1]


def _cross(o: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def oracle(observed: Observed, rows: Sequence[int]) -> Outcome:
    """Stages run in order until one is right, as if the cascade knew the label: the bound no confidence
    measure can beat (escalating exactly the inputs each stage gets wrong)."""
    return _walk(observed, rows, lambda stage, row: bool(observed.correct[stage][row]))


# ---------------------------------------------------------------------------------------------------- observations


def observed(obs: Mapping[str, Sequence[Any]], models: Sequence[str], unit: str = "cost",
             table: Mapping[str, Price] | None = None) -> Observed:
    """The stages of a cascade over ``models`` from observations (objects with ``score``, ``correct``, ``cost``
    and ``work``), costed by ``unit``: "cost" as observed, "seconds" as measured, "price" at ``table``."""

    def spent(model: str, o: Any) -> float:
        if unit == "seconds":
            return o.work.seconds
        if unit == "price":
            if table is None or model not in table:
                raise UsageError(None, f"no price for the model {model}")
            return table[model].of(o.work.prefill_tokens, o.work.generated_tokens)
        return o.cost

    return Observed([[o.score for o in obs[m]] for m in models], [[o.correct for o in obs[m]] for m in models],
                    [[spent(m, o) for o in obs[m]] for m in models])


def single(observed: Observed, stage: int, rows: Sequence[int]) -> Outcome:
    """One stage's model answering every input alone."""
    n = len(rows)
    return Outcome(sum(observed.correct[stage][r] for r in rows) / n, 0.0,
                   sum(observed.costs[stage][r] for r in rows) / n, ())


def per_model(models: Sequence[str], found: Sequence[float], at_least: bool) -> dict[str, float]:
    """Per-stage thresholds as the calibration file keeps them, one per model (a stage finds its own by its
    model's name). The last model always answers; it gets a threshold only when it has no other, one that
    accepts everything, since its condition is still evaluated for the trace."""
    named: dict[str, float] = {}
    for model, value in zip(models[:-1], found):
        if model in named:
            raise UsageError(None, f"the cascade names {model} at two stages before the last: per-stage "
                                   "thresholds are kept per model, so give each stage its own model")
        named[model] = finite(value)
    named.setdefault(models[-1], finite(float("-inf") if at_least else float("inf")))
    return named


def finite(t: float) -> float:
    """JSON has no infinities: a threshold no score reaches (or every score passes) becomes a large number."""
    return max(min(t, 1e9), -1e9)
