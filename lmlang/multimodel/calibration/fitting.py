"""Fitting the thresholds: the target to reach, the dev/test split, and one threshold per stage but the last,
chosen jointly on the dev split (the search itself is :mod:`lmlang.multimodel.tiers`)."""

from __future__ import annotations

import random

from lmlang.errors import UsageError
from lmlang.multimodel import tiers
from lmlang.multimodel.calibration.data import Plan
from lmlang.multimodel.calibration.runs import Observation


def parse_target(text: str) -> tuple[str, float]:
    """``accuracy=A``, ``escalation=E`` or ``budget=B`` as ``(kind, value)``."""
    kind, sep, value = text.partition("=")
    if kind not in ("accuracy", "escalation", "budget") or not sep:
        raise UsageError(None, f"--target is accuracy=A, escalation=E or budget=B, not {text!r}")
    try:
        return kind, float(value)
    except ValueError:
        raise UsageError(None, f"--target {kind}= takes a number, not {value!r}") from None


def fit(obs: dict[str, list[Observation]], plan: Plan, rows: list[int],
        target: tuple[str, float]) -> tuple[tuple[float, ...], bool]:
    """One threshold per stage but the last, fitted jointly on ``rows`` for ``target`` (on the observations'
    cost), and whether the target is met."""
    found, met = tiers.choose(tiers.search(tiers.observed(obs, plan.models), rows, plan.at_least), target)
    return tuple(tiers.finite(t) for t in found), met


def split(n: int, dev_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """The rows of ``n`` inputs shuffled by ``seed`` into a dev split (about ``dev_fraction`` of them, at least
    one) and a test split (at least one)."""
    rows = list(range(n))
    random.Random(seed).shuffle(rows)
    cut = max(1, min(n - 1, round(n * dev_fraction)))
    return sorted(rows[:cut]), sorted(rows[cut:])
