"""Cascades of SmolLM2, Gemma 3 270M and Qwen2.5-Coder-1.5B on labeled tasks: accuracy against measured price.

Three tasks (benchmarks/data/README.md says where each one's data comes from), each split in half, dev and test:

* ``capitals``: a country's capital, chosen between it and another country's capital (GeoNames).
* ``word_sentiment``: the sentiment of single English words (the VADER lexicon's human ratings).
* ``arithmetic``: two-step arithmetic word problems, generated (``make_arithmetic.py``), answered by choosing
  between the result and a near miss: the task where the 1.5B model should be far stronger.

Each model runs once per input (through ``lmlang calibrate``'s observation cache); prices are what this machine
measured: seconds per 1,000 prompt tokens evaluated and per 1,000 tokens generated, per model, times each run's
tokens of each kind (so a stage's price does not move with the machine's load from one input to the next). By
default the rates come from the same runs, whose raw seconds are reported too. Answers, margins and token counts
do not depend on the machine's load, but seconds do, so a long run made in the background prices with rates timed
apart on the quiet machine: ``--measure-rates FILE`` runs a fixed sample of each task's inputs (every model, no
cache, after one warm-up run) and writes the rates per task to FILE; ``--rates FILE`` prices with them.

On the test split the script reports each model alone, every two-tier cascade and the three-tier one with
thresholds fitted on the dev split (the cheapest reaching the largest model's dev accuracy less one point), random
mixing of the same models at the same price, and the oracle (escalating exactly the inputs each model gets wrong);
whether a cascade reaches the largest model's test accuracy within a point at no more than half its price; and
whether it is above random mixing at every escalation rate. The plot of accuracy against price is an SVG written
next to the data.

    python benchmarks/cascade.py [--task capitals|word_sentiment|arithmetic ...] [--limit N] [--no-cache]
                                 [--rates FILE | --measure-rates FILE [--sample N]]

Without ``lmlang[qwen]`` installed, it runs the two small models only.
"""

from __future__ import annotations

import argparse
import datetime
import html
import json
import math
import os
import re
from collections.abc import Sequence
from pathlib import Path

import lmlang
from lmlang.models import registry
from lmlang.models.llama import threads_from_environment
from lmlang.multimodel import calibrate, cost, tiers

HERE = Path(__file__).parent
TASKS = ("capitals", "word_sentiment", "arithmetic")
SMALL = ("smollm2", "gemma3-270m")
QWEN = registry.QWEN.alias
HEADER = re.compile(r'cascade "smollm2", "gemma3-270m"')
SHORT = {"smollm2": "S", "gemma3-270m": "G", QWEN: "Q"}
SAMPLE = 40  # inputs per task and model timed by --measure-rates: three tasks take about two minutes on 2 cores
COLORS = ["#1f77b4", "#2ca02c", "#9467bd", "#d62728", "#ff7f0e"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", choices=TASKS, action="append", help="the task(s) to run (default: all)")
    parser.add_argument("--limit", type=int, help="use the first N labeled inputs of each task only")
    parser.add_argument("--no-cache", action="store_true", help="run every model again")
    parser.add_argument("--small-only", action="store_true", help="leave Qwen out even when it is installed")
    timing = parser.add_mutually_exclusive_group()
    timing.add_argument("--rates", type=Path, help="price with the rates --measure-rates wrote to this file "
                                                   "(default: rates measured from the same runs)")
    timing.add_argument("--measure-rates", type=Path, metavar="FILE",
                        help="time a sample of each task on every model (quiet machine) and write the rates to FILE")
    parser.add_argument("--sample", type=int, default=SAMPLE, help=f"inputs per task and model that "
                                                                    f"--measure-rates times (default {SAMPLE})")
    args = parser.parse_args()
    os.environ.pop("LMLANG_PRICES", None)  # observations are costed in measured seconds, priced below
    models = list(SMALL) if args.small_only or not registry.installed(registry.QWEN) else [*SMALL, QWEN]
    if QWEN not in models:
        print(f"({QWEN} is not installed: pip install 'lmlang[qwen]'; running the two small models only)\n")
    tasks = args.task or list(TASKS)
    if args.measure_rates:
        measure_rates(tasks, models, args.sample, args.measure_rates)
        return
    quiet = read_rates(args.rates, tasks, models) if args.rates else None
    for task in tasks:
        print(f"## {task}\n")
        report(task, models, args.limit, None if args.no_cache else calibrate.DEFAULT_CACHE,
               None if quiet is None else quiet[task])
        print()


def load(task: str, models: list[str]) -> tuple[lmlang.Query, str, calibrate.Plan, list[calibrate.Item]]:
    """The task's query with ``models`` as its cascade, and its labeled inputs."""
    query_path, data = HERE / "data" / f"{task}.lmq", HERE / "data" / f"{task}.jsonl"
    source = HEADER.sub("cascade " + ", ".join(f'"{m}"' for m in models), query_path.read_text(encoding="utf-8"))
    query = lmlang.compile(source, str(query_path))
    return query, source, calibrate.plan_for(query.program, None), calibrate.read_data(data)


def sample_of(items: list[calibrate.Item], size: int) -> list[calibrate.Item]:
    """``size`` inputs spread evenly over the data, so the sample's prompts are as long as the task's."""
    step = max(len(items) // size, 1)
    return items[::step][:size]


def measure_rates(tasks: list[str], models: list[str], size: int, out: Path) -> None:
    """Seconds per 1,000 prompt and generated tokens of each model on each task, timed on a sample of its inputs.

    Per task, since evaluating a prompt costs more per token the longer it is. Each model first answers one input
    untimed: the first run after loading allocates what the later ones reuse.
    """
    threads = threads_from_environment()
    print(f"timing {size} inputs per task and model on {threads} thread(s), no cache", flush=True)
    rates, seconds = {}, {}
    for task in tasks:
        query, source, plan, items = load(task, models)
        # The warm-up goes in the same call as the sample, so that it warms the very models the sample runs on.
        every = calibrate.observe(query, source, plan, [items[-1], *sample_of(items, size)], None)
        obs = {m: rows[1:] for m, rows in every.items()}
        measured = cost.measured_prices({m: [o.work for o in obs[m]] for m in models})
        rates[task] = cost.format_prices(measured)
        seconds[task] = {m: round(sum(o.work.seconds for o in obs[m]) / len(obs[m]), 4) for m in models}
        print(f"{task}: {rates[task]}; seconds per input {seconds[task]}", flush=True)
    record = {"lmlang_cascade_rates": 1, "unit": "seconds per 1,000 tokens, prefill/decode",
              "measured": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "threads": threads, "cpus": os.cpu_count(), "inputs_per_task_and_model": size,
              "rates": rates, "seconds_per_input": seconds}
    out.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out}")


def read_rates(path: Path, tasks: list[str], models: list[str]) -> dict[str, tuple[dict[str, cost.Price], str]]:
    """Each task's rates from a --measure-rates file, and a line saying where they come from."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        table = record["rates"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise SystemExit(f"cannot read the rates file {path} ({err}): write it with --measure-rates {path}")
    out = {}
    for task in tasks:
        if task not in table:
            raise SystemExit(f"{path} has no rates for {task}: measure them with --measure-rates {path} --task {task}")
        prices = cost.parse_prices(table[task], str(path))
        missing = [m for m in models if m not in prices]
        if missing:
            raise SystemExit(f"{path} has no rates for {', '.join(missing)} on {task}: measure them again")
        where = (f"timed apart by --measure-rates on {record.get('threads')} thread(s), {record.get('measured')}, "
                 f"{record.get('inputs_per_task_and_model')} inputs per model")
        out[task] = ({m: prices[m] for m in models}, where)
    return out


def report(task: str, models: list[str], limit: int | None, cache: Path | None,
           quiet: tuple[dict[str, cost.Price], str] | None) -> None:
    query, source, plan, items = load(task, models)
    items = items[:limit]
    obs = calibrate.observe(query, source, plan, items, cache)
    own = quiet is None
    rates = cost.measured_prices({m: [o.work for o in obs[m]] for m in models}) if own else quiet[0]
    price = tiers.observed(obs, models, "price", rates)
    # Seconds measured in a run made in the background say nothing: with rates timed apart, the price (seconds at
    # the quiet rates) stands for them.
    seconds = tiers.observed(obs, models, "seconds") if own else price
    dev, test = calibrate.split(len(items), 0.5, 0)
    where = "measured from these runs" if own else quiet[1]
    print(f"{len(items)} inputs: {len(dev)} dev, {len(test)} test. Prices: seconds per 1,000 tokens "
          f"(prefill/decode), {where}: `{cost.format_prices(rates)}`\n")

    rows = []
    for i, model in enumerate(models):
        p, s = tiers.single(price, i, test), tiers.single(seconds, i, test)
        area = calibrate.auroc([price.scores[i][r] for r in test], [price.correct[i][r] for r in test])
        rows.append([f"{model} alone", p.accuracy, 0.0, p.cost, s.cost,
                     "" if area is None else f"margin AUROC {area:.3f}"])
    largest = tiers.single(price, len(models) - 1, test)
    curves, goals, picks = [], [], []
    for chain in chains(models):
        stages = [models.index(m) for m in chain]
        sub_p, sub_s = pick(price, stages), pick(seconds, stages)
        target = ("accuracy", tiers.single(sub_p, len(chain) - 1, dev).accuracy - 0.01)
        found, met = tiers.choose(tiers.search(sub_p, dev, plan.at_least), target)
        fitted = tiers.outcome(sub_p, test, found, plan.at_least)
        timed = tiers.outcome(sub_s, test, found, plan.at_least)
        label = " → ".join(SHORT[m] for m in chain)
        singles = [(o.cost, o.accuracy) for o in (tiers.single(sub_p, j, test) for j in range(len(chain)))]
        mixed = tiers.mixing_accuracy(singles, fitted.cost)
        top = tiers.single(sub_p, len(chain) - 1, test)
        close = fitted.accuracy >= top.accuracy - 0.01 and fitted.cost <= 0.5 * top.cost
        every = tiers.search(sub_p, test, plan.at_least)
        frontier = tiers.frontier(every)
        # Two tiers: every threshold, so every escalation rate; three: the best thresholds at each price (the grid
        # also holds combinations no one would pick, such as escalating the inputs the middle model is sure of).
        inner = [o for _, o in (every if len(chain) == 2 else frontier) if 0 < o.escalation < 1]
        gaps = sorted((o.escalation, o.accuracy - tiers.mixing_accuracy(singles, o.cost)) for o in inner)
        above = sum(gap > 0 for _, gap in gaps)
        # Thresholds chosen on the test split itself: not a result, the bound on what fitting could have found.
        hindsight = min((o.cost for _, o in every if o.accuracy >= top.accuracy - 0.01), default=None)
        shown = ", ".join(f"{t:.3g}" if abs(t) < 1e9 else
                          ("escalate all" if (t > 0) == plan.at_least else "accept all")
                          for t in map(tiers.finite, found))
        rows.append([f"cascade {label} (thresholds {shown}{'' if met else ', dev target missed'})", fitted.accuracy,
                     fitted.escalation, fitted.cost, timed.cost,
                     f"{fitted.cost / top.cost:.0%} of {SHORT[chain[-1]]}'s price; random mixing there {mixed:.3f}"])
        oracle_p, oracle_s = tiers.oracle(sub_p, test), tiers.oracle(sub_s, test)
        rows.append([f"oracle {label}", oracle_p.accuracy, oracle_p.escalation, oracle_p.cost, oracle_s.cost,
                     f"{oracle_p.cost / top.cost:.0%} of {SHORT[chain[-1]]}'s price"])
        goals.append(f"- {label}: {'reaches' if close else 'does not reach'} {chain[-1]}'s accuracy "
                     f"({top.accuracy:.3f}) within one point at no more than half its price (cascade "
                     f"{fitted.accuracy:.3f} at {fitted.cost / top.cost:.0%}); above random mixing at equal price "
                     f"at {above} of {len(gaps)} "
                     f"{'thresholds' if len(chain) == 2 else 'points of its best-thresholds curve'} that escalate "
                     f"some inputs{behind(gaps)}. With hindsight, the cheapest thresholds within a point on test "
                     f"itself cost " + ("nothing reaches it" if hindsight is None else f"{hindsight / top.cost:.0%}"))
        if chain[-1] == models[-1]:
            on_dev = tiers.outcome(sub_p, dev, found, plan.at_least)
            picks.append(((not met, on_dev.cost if met else -on_dev.accuracy), label, fitted, top))
        curves.append((label, [(o.cost, o.accuracy) for _, o in frontier], (fitted.cost, fitted.accuracy),
                       (oracle_p.cost, oracle_p.accuracy)))
    if not own:
        rows = [row[:4] + row[5:] for row in rows]
    print(calibrate.table(["system (test split)", "accuracy", "escalation", "price/input (measured rates)",
                           *(["seconds/input (measured)"] if own else []), "note"], rows))
    print("\n" + "\n".join(goals))
    if picks:
        _, label, fitted, top = min(picks, key=lambda p: p[0])
        print(f"\nThe dev split picks {label} (of the cascades ending with {models[-1]}, the cheapest on dev meeting "
              f"its dev target, else the most accurate there): on test {fitted.accuracy:.3f} against "
              f"{top.accuracy:.3f} alone, at {fitted.cost / top.cost:.0%} of its price, escalating "
              f"{fitted.escalation:.0%}.")
    singles = [(tiers.single(price, i, test).cost, tiers.single(price, i, test).accuracy, m)
               for i, m in enumerate(models)]
    picture = HERE / "data" / f"{task}.cascade.svg"
    picture.write_text(svg(task, curves, singles, largest.cost), encoding="utf-8")
    print(f"\nplot: {picture.relative_to(HERE.parent)}")


def behind(gaps: list[tuple[float, float]]) -> str:
    """Where a cascade is not above random mixing: the escalation ranges, and by how much at worst."""
    if all(gap > 0 for _, gap in gaps):
        return ""
    ranges, start, end = [], None, None
    for escalation, gap in [*gaps, (None, 1.0)]:
        if escalation is not None and gap <= 0:
            start, end = (escalation if start is None else start), escalation
        elif start is not None:
            first, last = f"{start:.0%}", f"{end:.0%}"
            ranges.append(first if first == last else f"{first}-{last}")
            start = None
    worst = -min(gap for _, gap in gaps)
    return (f" (not above at escalation {', '.join(ranges)}; "
            + (f"at worst {worst * 100:.1f} points below)" if worst > 0 else "equal there, never below)"))


def chains(models: Sequence[str]) -> list[tuple[str, ...]]:
    """Every cascade of two models in the given order (cheapest first), then all of them."""
    out = [(a, b) for i, a in enumerate(models) for b in models[i + 1:]]
    if len(models) > 2:
        out.append(tuple(models))
    return out


def pick(observed: tiers.Observed, stages: list[int]) -> tiers.Observed:
    return tiers.Observed([observed.scores[i] for i in stages], [observed.correct[i] for i in stages],
                          [observed.costs[i] for i in stages])


def svg(task: str, curves: list, singles: list[tuple[float, float, str]], largest: float) -> str:
    """Accuracy against price: each cascade's best thresholds at every price (line), its fitted thresholds
    (square), its oracle (ring), the single models (black) and random mixing of them (dashed)."""
    width, height, left, bottom, pad, top = 640, 420, 60, 50, 20, 34
    xs = [p[0] for _, line, f, o in curves for p in (*line, f, o)] + [s[0] for s in singles]
    ys = [p[1] for _, line, f, o in curves for p in (*line, f, o)] + [s[1] for s in singles]
    # Round ticks: the price axis in steps of a quarter of the largest model's price, accuracy in steps of 0.05.
    share = max(max(xs) / largest, 0.25)
    x_step = 0.25 if share <= 2 else 0.5
    x_ticks = [k * x_step for k in range(math.ceil(share / x_step) + 1)]
    x0, x1 = 0.0, x_ticks[-1] * largest
    y0 = max(0.0, math.floor((min(ys) - 0.02) / 0.05) * 0.05)
    y1 = min(1.0, math.ceil((max(ys) + 0.005) / 0.05) * 0.05)
    y1 = y1 if y1 > y0 else y0 + 0.05
    y_ticks = [y0 + 0.05 * k for k in range(round((y1 - y0) / 0.05) + 1)]

    def at(x: float, y: float) -> tuple[float, float]:
        return (left + (x - x0) / (x1 - x0) * (width - left - pad),
                height - bottom - (y - y0) / (y1 - y0) * (height - bottom - top))

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
             f'font-size="11"><rect width="100%" height="100%" fill="white"/>',
             f'<text x="{width / 2}" y="16" text-anchor="middle" font-size="13">{html.escape(task)}: accuracy '
             f'against measured price (test split)</text>']
    ax, ay = at(x0, y0)
    parts.append(f'<line x1="{ax}" y1="{ay}" x2="{width - pad}" y2="{ay}" stroke="black"/>'
                 f'<line x1="{ax}" y1="{ay}" x2="{ax}" y2="{top - 6}" stroke="black"/>')
    for share_tick in x_ticks:
        px, _ = at(share_tick * largest, y0)
        parts.append(f'<text x="{px:.1f}" y="{ay + 14}" text-anchor="middle">{share_tick:.0%}</text>')
    for y in y_ticks:
        _, py = at(x0, y)
        parts.append(f'<text x="{ax - 4}" y="{py + 4:.1f}" text-anchor="end">{y:.2f}</text>')
    parts.append(f'<text x="{(left + width) / 2}" y="{height - 12}" text-anchor="middle">price per input, share of '
                 f'the largest model\'s</text><text x="14" y="{height / 2}" transform="rotate(-90 14 {height / 2})" '
                 f'text-anchor="middle">accuracy</text>')
    hull = sorted((c, a) for c, a, _ in singles)
    steps = [x0 + (x1 - x0) * k / 100 for k in range(101)]
    dashed = " ".join("{:.1f},{:.1f}".format(*at(x, tiers.mixing_accuracy(hull, x))) for x in steps if x >= hull[0][0])
    parts.append(f'<polyline points="{dashed}" fill="none" stroke="grey" stroke-dasharray="5,4"/>')
    legend = height - bottom - 14 * (len(curves) + 2)  # bottom right: costly and inaccurate, where nothing lies
    for i, (label, line, fitted, oracle) in enumerate(curves):
        color = COLORS[i % len(COLORS)]
        points = " ".join("{:.1f},{:.1f}".format(*at(*p)) for p in line)
        fx, fy = at(*fitted)
        ox, oy = at(*oracle)
        parts.append(f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="1.5"/>'
                     f'<rect x="{fx - 4:.1f}" y="{fy - 4:.1f}" width="8" height="8" fill="{color}"/>'
                     f'<circle cx="{ox:.1f}" cy="{oy:.1f}" r="5" fill="none" stroke="{color}"/>'
                     f'<text x="{width - pad - 150}" y="{legend + 14 * i}" fill="{color}">'
                     f'{html.escape(label)}</text>')
    for c, a, name in singles:
        px, py = at(c, a)
        right = px > width - 160  # a name near the right edge is written to the left of its point
        parts.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="4" fill="black"/>'
                     f'<text x="{px + (-6 if right else 6):.1f}" y="{py - 6:.1f}" '
                     f'text-anchor="{"end" if right else "start"}">{html.escape(name)}</text>')
    parts.append(f'<text x="{width - pad - 150}" y="{legend + 14 * len(curves)}" fill="grey">random mixing</text>'
                 f'<text x="{width - pad - 150}" y="{legend + 14 + 14 * len(curves)}">'
                 '■ fitted on dev, ○ oracle</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    main()
