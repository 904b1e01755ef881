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
"""

from __future__ import annotations

import argparse
import ast as pyast
import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lmlang.errors import InputError, LmlangError, UsageError
from lmlang.multimodel import cost, plot, thresholds, tiers
from lmlang.syntax import ast

DEFAULT_CACHE = Path.home() / ".cache" / "lmlang" / "calibrate"
CURVE_ROWS = 12  # rows of the printed curve (the plot has every point)


@dataclass(frozen=True)
class Item:
    inputs: dict[str, Any]
    label: Any
    line: int


@dataclass(frozen=True)
class Observation:
    """One model's run on one item."""

    answer: Any
    score: float
    correct: bool
    cost: float
    work: cost.Work | None = None  # tokens and seconds of each kind, for prices that match the machine


@dataclass(frozen=True)
class Plan:
    """What calibration needs from the query's cascade."""

    cascade: ast.Cascade
    models: list[str]
    name: str  # of the threshold
    score: ast.Expr  # what is compared with it
    at_least: bool  # accepted when score >= threshold (else <=)
    answer: str
    candidates: list[str] | None


@dataclass(frozen=True)
class Metrics:
    accuracy: float
    escalation: float
    cost: float  # mean per input


# ---------------------------------------------------------------------------------------------------- reading


def read_data(path: Path, label_field: str = "label") -> list[Item]:
    """Labeled inputs, one JSON object a line: the query's inputs and ``label_field``."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise UsageError(None, f"cannot read the data file {path}: {err}") from None
    items = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as err:
            raise InputError(None, f"{path}:{number}: not a JSON object: {err}") from None
        if not isinstance(record, dict) or label_field not in record:
            raise InputError(None, f"{path}:{number}: each line needs a \"{label_field}\" field next to the inputs")
        label = record.pop(label_field)
        items.append(Item(record, label, number))
    if len(items) < 4:
        raise InputError(None, f"{path} has {len(items)} labeled inputs: calibration needs at least 4")
    return items


def plan_for(program: ast.Program, answer: str | None) -> Plan:
    """The first cascade of the program whose condition names a threshold, and how to calibrate it."""
    for statement in ast.walk(program.body):
        if isinstance(statement, ast.Cascade) and statement.condition is not None:
            found = _threshold_comparison(statement.condition)
            if found is not None:
                name, score, at_least = found
                models = [_literal_model(m) for m in statement.models]
                var = answer or _only_hole(statement)
                return Plan(statement, models, name, score, at_least, var, _candidates(statement, var))
    raise UsageError(None, "the query has no cascade comparing a score with a named threshold, such as "
                           "cascade \"smollm2\", \"gemma3-270m\" until margin(CLS) >= threshold(\"sentiment\"):")


def _threshold_comparison(condition: ast.Expr) -> tuple[str, ast.Expr, bool] | None:
    for node in pyast.walk(condition.python()):
        if not (isinstance(node, pyast.Compare) and len(node.comparators) == 1):
            continue
        left, right, op = node.left, node.comparators[0], node.ops[0]
        for score, named, flipped in ((left, right, False), (right, left, True)):
            if _is_threshold_call(named):
                at_least = isinstance(op, (pyast.GtE, pyast.Gt)) != flipped
                name = named.args[0].value  # type: ignore[attr-defined]
                span = condition.span_of(score)
                return name, ast.Expr(span, pyast.unparse(score)), at_least
    return None


def _is_threshold_call(node: pyast.expr) -> bool:
    return (isinstance(node, pyast.Call) and isinstance(node.func, pyast.Name) and node.func.id == "threshold"
            and bool(node.args) and isinstance(node.args[0], pyast.Constant) and isinstance(node.args[0].value, str))


def _literal_model(expr: ast.Expr) -> str:
    node = expr.python().body
    if not (isinstance(node, pyast.Constant) and isinstance(node.value, str)):
        raise UsageError(expr.span, "calibration needs the cascade's models written as strings")
    return node.value


def _only_hole(cascade: ast.Cascade) -> str:
    names = [h.name for s in ast.walk(cascade.body) if isinstance(s, ast.QueryStmt) for h in s.string.holes]
    if len(names) != 1:
        raise UsageError(cascade.span, f"the cascade has {len(names)} holes: say which one is the answer "
                                       f"with --answer (one of {', '.join(names)})")
    return names[0]


def _candidates(cascade: ast.Cascade, var: str) -> list[str] | None:
    """The values ``where VAR in [...]`` allows the answer, when the block says so with a literal list."""
    for statement in ast.walk(cascade.body):
        if not isinstance(statement, ast.QueryStmt) or statement.where is None:
            continue
        for node in pyast.walk(statement.where.python()):
            if (isinstance(node, pyast.Compare) and isinstance(node.left, pyast.Name) and node.left.id == var
                    and isinstance(node.ops[0], pyast.In)):
                try:
                    return [str(v) for v in pyast.literal_eval(node.comparators[0])]
                except ValueError:
                    return None
    return None


def normal(value: Any) -> str:
    return str(value).strip().casefold()


def check_labels(plan: Plan, items: list[Item], data: Path) -> None:
    """Every label must be an answer the query can give, when the query lists its answers."""
    if plan.candidates is None:
        return
    allowed = {normal(c) for c in plan.candidates}
    for item in items:
        if normal(item.label) not in allowed:
            raise InputError(None, f"{data}:{item.line}: the label {item.label!r} is not an answer the query can "
                                   f"give: {plan.answer} is one of {', '.join(map(repr, plan.candidates))}")


# ---------------------------------------------------------------------------------------------------- observing


def observe(query: Any, source: str, plan: Plan, items: list[Item], cache: Path | None) -> dict[str, list[Observation]]:
    """Each model of the cascade run once on each item: its answer, score and cost (cached per model)."""
    from lmlang.multimodel.cascade import PROBE, Probe

    observations: dict[str, list[Observation]] = {}
    for model in plan.models:
        stored = _load_cache(cache, source, model)
        rows = []
        for item in items:
            key = json.dumps(item.inputs, sort_keys=True, ensure_ascii=False)
            if "prefill_seconds" not in stored.get(key, {}):
                probe = Probe(model, plan.score)
                token = PROBE.set(probe)
                try:
                    result = query.run(model, **item.inputs)
                finally:
                    PROBE.reset(token)
                record = probe.records[0]
                stored[key] = {**record, "answer": result.variables.get(plan.answer)}
            record = stored[key]
            spent, _ = cost.cost(model, record["prefill_tokens"], record["generated_tokens"], record["seconds"])
            work = cost.Work(record["prefill_tokens"], record["generated_tokens"], record["prefill_seconds"],
                             record["seconds"])
            rows.append(Observation(record["answer"], record["score"], normal(record["answer"]) == normal(item.label),
                                    spent, work))
        _save_cache(cache, source, model, stored)
        observations[model] = rows
    return observations


# Bumped when a run of the same query can give another answer than before (stop 9: every run starts from an empty
# KV cache), so that cached observations of older runs are not mixed with new ones.
_RUNS = 2


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
    _cache_file(cache, source, model).write_text(json.dumps(stored, ensure_ascii=False), encoding="utf-8")


# ---------------------------------------------------------------------------------------------------- metrics


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


# ---------------------------------------------------------------------------------------------------- fitting


def parse_target(text: str) -> tuple[str, float]:
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
    rows = list(range(n))
    random.Random(seed).shuffle(rows)
    cut = max(1, min(n - 1, round(n * dev_fraction)))
    return sorted(rows[:cut]), sorted(rows[cut:])


# ---------------------------------------------------------------------------------------------------- reporting


def table(headers: list[str], rows: list[list[Any]]) -> str:
    def cell(v: Any) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # a usage error like the rest of the CLI's, not argparse's exit
        raise UsageError(None, f"lmlang calibrate: {message}")


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
    listed = points[:: max(1, len(points) // CURVE_ROWS)] + ([points[-1]] if len(points) > CURVE_ROWS else [])
    print(f"\naccuracy-cost curve on the held-out split (cost in {unit}; the best thresholds at each cost):")
    print(table(["thresholds", "escalation", "accuracy", "cost", "random mixing at that cost"],
                [[" ".join(f"{t:.3g}" for t in ts), o.escalation, o.accuracy, o.cost,
                  tiers.mixing_accuracy(singles, o.cost)] for ts, o in listed]))
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


def main() -> int:  # pragma: no cover - `python -m lmlang.multimodel.calibrate` until the CLI has the subcommand
    try:
        return calibrate_main()
    except LmlangError as err:
        print(err.render())
        return 2


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
