"""The tables of the calibration report, as Markdown."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lmlang.multimodel import tiers
from lmlang.multimodel.calibration.data import Plan

CURVE_ROWS = 12  # rows of the printed accuracy-cost curve (the plot has every point)


def table(headers: list[str], rows: list[list[Any]]) -> str:
    def cell(v: Any) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def stage_rows(views: dict[str, tiers.Observed], plan: Plan, rows: list[int],
               found: Sequence[float]) -> list[list[Any]]:
    """The held-out table: the cascade, each model alone, random mixing at the cascade's cost and the oracle,
    each costed in seconds and in price."""
    seconds, price = views["seconds"], views["price"]
    n = len(plan.models)

    def both(of: Any) -> tuple[tiers.Outcome, tiers.Outcome]:
        return of(seconds), of(price)

    casc_s, casc_p = both(lambda v: tiers.outcome(v, rows, found, plan.at_least))
    out = [[f"cascade ({plan.name})", casc_p.accuracy, casc_p.escalation, casc_s.cost, casc_p.cost]]
    for i, model in enumerate(plan.models):
        alone_s, alone_p = both(lambda v: tiers.single(v, i, rows))
        out.append([f"{model} alone", alone_p.accuracy, 0.0, alone_s.cost, alone_p.cost])
    singles = [(o.cost, o.accuracy) for o in (tiers.single(price, i, rows) for i in range(n))]
    out.append(["random mixing at the cascade's price", tiers.mixing_accuracy(singles, casc_p.cost), "", "",
                casc_p.cost])
    oracle_s, oracle_p = both(lambda v: tiers.oracle(v, rows))
    out.append(["oracle", oracle_p.accuracy, oracle_p.escalation, oracle_s.cost, oracle_p.cost])
    return out


def curve_rows(points: list[tuple[tuple[float, ...], tiers.Outcome]],
               singles: list[tuple[float, float]]) -> list[list[Any]]:
    """The accuracy-cost curve's rows as printed: at most about ``CURVE_ROWS`` of its points, the last always."""
    listed = points[:: max(1, len(points) // CURVE_ROWS)] + ([points[-1]] if len(points) > CURVE_ROWS else [])
    return [[" ".join(f"{t:.3g}" for t in ts), o.escalation, o.accuracy, o.cost, tiers.mixing_accuracy(singles, o.cost)]
            for ts, o in listed]
