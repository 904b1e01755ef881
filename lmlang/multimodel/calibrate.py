"""``lmlang calibrate QUERY --data labeled.jsonl --target accuracy=0.9``: fit a cascade's named threshold.

The query's cascade compares a score with a named threshold (``until margin(CLS) >= threshold("sentiment")``).
Each model of the cascade runs once over the data (cached on disk); one threshold per stage but the last is
fitted jointly on a dev split for the target (``accuracy=A``: the cheapest thresholds reaching A;
``escalation=E``: the most accurate escalating at most E of the inputs; ``budget=B``: the most accurate costing
at most B per input), and the held-out split reports the cascade, each model alone, random mixing at the
cascade's price, and the oracle, each costed in measured seconds and in price (configured per 1k tokens, or the
rates measured on this machine, prefill and decode apart). The thresholds go to the calibration file queries
read by name (one number for two models, one per model for more); the accuracy-cost curve is printed and drawn
as a PNG.

This module is the command; the work is done by :mod:`lmlang.multimodel.calibration`, whose names it gives too.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lmlang.errors import LmlangError, UsageError
from lmlang.multimodel import cost, plot, thresholds, tiers
from lmlang.multimodel.calibration.data import Item, Plan, check_labels, normal, plan_for, read_data
from lmlang.multimodel.calibration.fitting import fit, parse_target, split
from lmlang.multimodel.calibration.metrics import (Metrics, auroc, cascade_metrics, mix_at_cost, oracle_metrics,
                                                   random_mix, single_metrics)
from lmlang.multimodel.calibration import runs
from lmlang.multimodel.calibration.runs import DEFAULT_CACHE, Observation
from lmlang.session import Session
from lmlang.multimodel.calibration.tables import CURVE_ROWS, curve_rows, stage_rows, table

__all__ = ["CURVE_ROWS", "DEFAULT_CACHE", "Item", "Metrics", "Observation", "Plan", "auroc", "calibrate_main",
           "cascade_metrics", "check_labels", "fit", "mix_at_cost", "normal", "observe", "oracle_metrics",
           "parse_target", "plan_for", "random_mix", "read_data", "single_metrics", "split", "stage_rows", "table"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # a usage error like the rest of the CLI's, not argparse's exit
        raise UsageError(None, f"lmlang calibrate: {message}")


def observe(query: Any, source: str, plan: Plan, items: list[Item], cache: Path | None,
            session: Session | None = None) -> dict[str, list[Observation]]:
    """Each model of the cascade run once on each item: its answer, score and cost (cached per model). The runs go
    to ``session`` (default: a new one), whose cascades run only the observed model's stage."""
    return runs.observe(query, source, plan, items, cache, session if session is not None else Session())


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="lmlang calibrate", description=__doc__.split("\n")[0])
    parser.add_argument("query", help="the .lmq file whose cascade compares a score with threshold(\"NAME\")")
    parser.add_argument("--data", required=True, help="labeled inputs, JSON lines: the inputs and \"label\"")
    parser.add_argument("--target", required=True, help="accuracy=A, escalation=E or budget=B (cost per input)")
    parser.add_argument("--out", default=thresholds.DEFAULT_FILE, help="calibration file to write (or update)")
    parser.add_argument("--answer", help="the hole holding the answer (default: the cascade's only hole)")
    parser.add_argument("--label", default="label", help="the data's label field (default: label)")
    parser.add_argument("--dev-fraction", type=float, default=0.5, help="share of the data to fit on")
    parser.add_argument("--seed", type=int, default=0, help="seed of the dev/test split")
    parser.add_argument("--plot", help="PNG of the accuracy-cost curve (default: the --out file with .png)")
    parser.add_argument("--cache", default=str(DEFAULT_CACHE), help="where the models' runs are cached")
    parser.add_argument("--no-cache", action="store_true", help="run every model again")
    parser.add_argument("--prices", help="price per 1k tokens per model, model=price or model=prefill/decode, "
                                         "comma-separated (default: $LMLANG_PRICES, else the measured rates)")
    parser.add_argument("--cost", choices=["seconds", "price"],
                        help="what the fit minimizes (default: price when prices are set, else seconds)")
    return parser


def calibrate_main(argv: Sequence[str] | None = None) -> int:
    """The ``lmlang calibrate`` command; prints the report, writes the calibration file and the plot."""
    from lmlang.query import compile_file

    args = _parser().parse_args(list(argv) if argv is not None else None)
    target = parse_target(args.target)
    configured = cost.parse_prices(args.prices, "--prices") if args.prices else cost.prices()
    query = compile_file(args.query)
    source = Path(args.query).read_text(encoding="utf-8")
    plan = plan_for(query.program, args.answer)
    data = Path(args.data)
    items = read_data(data, args.label)
    check_labels(plan, items, data)
    obs = observe(query, source, plan, items, None if args.no_cache else Path(args.cache))
    dev, test = split(len(items), args.dev_fraction, args.seed)
    rates = cost.measured_prices({m: [o.work for o in obs[m] if o.work is not None] for m in plan.models})
    unit = args.cost or ("price" if configured else "seconds")
    fitted = tiers.observed(obs, plan.models, unit, configured or rates)
    found, met = tiers.choose(tiers.search(fitted, dev, plan.at_least), target)
    on_dev = tiers.outcome(fitted, dev, found, plan.at_least)
    named = tiers.per_model(plan.models, found, plan.at_least)
    shown = ", ".join(f"{m} {named[m]:.4g}" for m in plan.models[:-1])
    print(f"thresholds {plan.name}: {shown} ({'meet' if met else 'do not meet'} {args.target} on the dev split, "
          f"cost in {unit}: accuracy {on_dev.accuracy:.3f}, escalation {on_dev.escalation:.3f}, "
          f"cost {on_dev.cost:.4g})")
    print("\nmeasured on this machine, seconds per 1,000 tokens (prefill/decode), as --prices and $LMLANG_PRICES "
          f"read them:\n  {cost.format_prices(rates)}")
    views = {"seconds": tiers.observed(obs, plan.models, "seconds"),
             "price": tiers.observed(obs, plan.models, "price", configured or rates)}
    priced = "price" if configured else "price at the measured rates"
    print(f"\nheld-out split ({len(test)} inputs), cost per input in measured seconds and in {priced}:")
    print(table(["system", "accuracy", "escalation", "seconds", "price"], stage_rows(views, plan, test, found)))
    bound, largest = tiers.oracle(views["price"], test), tiers.single(views["price"], len(plan.models) - 1, test)
    print(f"\noracle bound: escalating exactly the inputs each model gets wrong costs {bound.cost:.4g} per input "
          f"({bound.cost / largest.cost:.0%} of {plan.models[-1]} alone) for accuracy {bound.accuracy:.3f}")
    points = tiers.frontier(tiers.search(views[unit], test, plan.at_least))
    singles = [(o.cost, o.accuracy) for o in (tiers.single(views[unit], i, test) for i in range(len(plan.models)))]
    print(f"\naccuracy-cost curve on the held-out split (cost in {unit}; the best thresholds at each cost):")
    print(table(["thresholds", "escalation", "accuracy", "cost", "random mixing at that cost"],
                curve_rows(points, singles)))
    out = Path(args.out)
    value: float | dict[str, float] = named[plan.models[0]] if len(plan.models) == 2 else named
    details = {"lmlang_calibration": thresholds.FORMAT,
               "fitted": {plan.name: {"query": args.query, "data": args.data, "target": args.target, "met": met,
                                      "cost": unit, "dev": vars(on_dev), "score": plan.score.source,
                                      "measured_prices": cost.format_prices(rates)}}}
    thresholds.write_calibration(out, {plan.name: value}, details)
    picture = Path(args.plot) if args.plot else out.with_suffix(".png")
    plot.accuracy_cost(picture, [(o.cost, o.accuracy) for _, o in points], singles)
    print(f"\nwrote {out} and {picture}")
    return 0 if met else 1


def main() -> int:  # pragma: no cover - `python -m lmlang.multimodel.calibrate`
    try:
        return calibrate_main()
    except LmlangError as err:
        print(err.render())
        return 2


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
