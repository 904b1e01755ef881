"""How a cascade, a model alone, random mixing and the oracle do on observed runs: accuracy, the share of inputs
escalated, and the mean cost per input; and how well a score separates right answers from wrong ones."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lmlang.multimodel import tiers
from lmlang.multimodel.calibration.runs import Observation


@dataclass(frozen=True)
class Metrics:
    accuracy: float
    escalation: float
    cost: float  # mean per input


def cascade_metrics(obs: dict[str, list[Observation]], models: list[str], rows: list[int],
                    threshold: float | Sequence[float], at_least: bool) -> Metrics:
    """The cascade on ``rows``: each input is answered by the first model whose score passes its threshold (one
    for every stage, or one per stage), or the last."""
    per_stage = [threshold] * len(models) if isinstance(threshold, (int, float)) else list(threshold)
    correct = escalated = 0
    spent = 0.0
    for row in rows:
        for position, model in enumerate(models):
            o = obs[model][row]
            spent += o.cost
            last = position == len(models) - 1
            if last or tiers.passes(o.score, per_stage[position], at_least):
                correct += o.correct
                escalated += position > 0
                break
    n = len(rows)
    return Metrics(correct / n, escalated / n, spent / n)


def single_metrics(obs: list[Observation], rows: list[int]) -> Metrics:
    return Metrics(sum(obs[r].correct for r in rows) / len(rows), 0.0, sum(obs[r].cost for r in rows) / len(rows))


def oracle_metrics(obs: dict[str, list[Observation]], models: list[str], rows: list[int]) -> Metrics:
    """Models run in order until one is right (as if the cascade knew the label)."""
    correct = escalated = 0
    spent = 0.0
    for row in rows:
        for position, model in enumerate(models):
            spent += obs[model][row].cost
            if obs[model][row].correct:
                correct += 1
                escalated += position > 0
                break
        else:
            escalated += 1
    n = len(rows)
    return Metrics(correct / n, escalated / n, spent / n)


def random_mix(small: Metrics, large: Metrics, share: float) -> Metrics:
    """Expected metrics of sending a random ``share`` of the inputs to the large model, the rest to the small."""
    share = min(max(share, 0.0), 1.0)
    return Metrics(small.accuracy + share * (large.accuracy - small.accuracy), share,
                   small.cost + share * (large.cost - small.cost))


def mix_at_cost(small: Metrics, large: Metrics, budget: float) -> Metrics:
    """Random mixing spending ``budget`` per input."""
    gap = large.cost - small.cost
    return random_mix(small, large, (budget - small.cost) / gap if gap > 0 else 0.0)


def auroc(scores: list[float], positives: list[bool]) -> float | None:
    """Probability that a right answer scores above a wrong one (ties count half)."""
    pos = [s for s, p in zip(scores, positives) if p]
    neg = [s for s, p in zip(scores, positives) if not p]
    if not pos or not neg:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))
