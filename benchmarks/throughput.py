"""Throughput of many runs: ``Query.map`` (what ``lmlang map`` runs) at several concurrencies against a Python
loop over ``Query.run``, on a classification query and a 3-hole extraction query.

Run from the repository root (lmlang installed, e.g. ``pip install -e .``):

    python benchmarks/throughput.py [--rows 200] [--models smollm2,gemma3-270m] [--concurrency 1,4,8,16]
                                    [--json benchmarks/throughput.json]

For each model and query it reports rows per second, prompt tokens evaluated per second, and how many rows'
variables differ from the loop's (argmax: they should not, unless a near tie flips). Runs on one model take
turns today (one lock per model), so concurrency adds no speed until runs are batched together; this measures
where that leaves us. The rows are made up here, deterministically, so the benchmark needs no data set.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from typing import Any

import lmlang

CLASSIFY = ('"Review: {review}\\nIs this review positive or negative? Answer:[LABEL]" '
            'where LABEL in [" positive", " negative"]')
EXTRACT = ('"Text: {text}\\nName:[NAME]\\nAge:[AGE]\\nCity:[CITY]" '
           'where STOPS_BEFORE(NAME, "\\n") and len(TOKENS(NAME)) < 8 and INT(AGE) and len(TOKENS(AGE)) < 4 '
           'and STOPS_BEFORE(CITY, "\\n") and len(TOKENS(CITY)) < 8')

_GOOD = ["works perfectly", "arrived early and looks great", "is the best purchase I made this year",
         "exceeded my expectations", "is sturdy and well made"]
_BAD = ["broke after two days", "never arrived", "is a waste of money", "smells strange and leaks",
        "stopped working within a week"]
_THINGS = ["The kettle", "This lamp", "The backpack", "My new phone case", "The blender", "This chair"]
_NAMES = ["Alice Moreau", "Bob Tanaka", "Carla Diaz", "Dmitri Ivanov", "Emma Stone", "Farid Haddad", "Grace Lee"]
_CITIES = ["Lyon", "Osaka", "Seville", "Kazan", "Leeds", "Beirut", "Busan", "Porto"]


def make_rows(n: int, seed: int = 0) -> dict[str, list[dict[str, Any]]]:
    """``n`` rows for each query, the same for every run of the benchmark."""
    rng = random.Random(seed)
    reviews = [{"review": f"{rng.choice(_THINGS)} {rng.choice(_GOOD if rng.random() < 0.5 else _BAD)}."}
               for _ in range(n)]
    texts = [{"text": f"{name} is {rng.randint(18, 90)} years old and lives in {rng.choice(_CITIES)}."}
             for name in (rng.choice(_NAMES) for _ in range(n))]
    return {"classification": reviews, "extraction": texts}


def measure(query: lmlang.Query, rows: list[dict[str, Any]], model: str, concurrency: int | None) -> dict[str, Any]:
    """One pass over the rows: a loop over ``Query.run`` when ``concurrency`` is None, else ``Query.map``."""
    started = time.perf_counter()
    if concurrency is None:
        results = [query.run(model, **row) for row in rows]
    else:
        results = list(query.map(rows, model, concurrency=concurrency, errors="raise"))
    seconds = time.perf_counter() - started
    prefill = sum(r.stats.prefill_tokens for r in results)
    return {"seconds": seconds, "rows_per_s": len(rows) / seconds, "prefill_tokens_per_s": prefill / seconds,
            "variables": [r.variables for r in results]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--models", default="smollm2,gemma3-270m")
    parser.add_argument("--concurrency", default="1,4,8,16")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    levels = [int(c) for c in args.concurrency.split(",")]
    rows = make_rows(args.rows)
    queries = {"classification": lmlang.compile(CLASSIFY), "extraction": lmlang.compile(EXTRACT)}
    report: list[dict[str, Any]] = []
    print("| model | query | runner | rows/s | prompt tokens/s | x loop | rows differing from the loop |")
    print("|---|---|---|---:|---:|---:|---:|")
    for model in args.models.split(","):
        for name, query in queries.items():
            query.run(model, **rows[name][0])  # load the model and warm the caches before timing
            loop = measure(query, rows[name], model, None)
            for label, concurrency in [("loop", None)] + [(f"map c={c}", c) for c in levels]:
                figures = loop if concurrency is None else measure(query, rows[name], model, concurrency)
                differing = sum(a != b for a, b in zip(figures["variables"], loop["variables"]))
                entry = {"model": model, "query": name, "runner": label, "rows": args.rows,
                         "rows_per_s": round(figures["rows_per_s"], 3),
                         "prefill_tokens_per_s": round(figures["prefill_tokens_per_s"], 1),
                         "speedup": round(figures["rows_per_s"] / loop["rows_per_s"], 3), "differing": differing}
                report.append(entry)
                print(f"| {model} | {name} | {label} | {entry['rows_per_s']:.2f} | {entry['prefill_tokens_per_s']:.0f} "
                      f"| {entry['speedup']:.2f} | {differing} |", flush=True)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as file:
            json.dump(report, file, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
