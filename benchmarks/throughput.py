"""Throughput of many runs: ``Query.map`` (what ``lmlang map`` runs) at several concurrencies against a Python
loop over ``Query.run`` and against guidance looping over the same rows, on a classification query and a 3-hole
extraction query.

Run from the repository root (lmlang installed, e.g. ``pip install -e .``), on a quiet machine:

    python benchmarks/throughput.py [--rows 200] [--models smollm2,gemma3-270m] [--concurrency 1,4,8,16]
                                    [--peers PEERS_PYTHON] [--json throughput.json] [--svg throughput.svg]

``--peers`` is the Python of a separate venv with guidance (never an lmlang dependency), as for
benchmarks/end_to_end.py: ``python3 -m venv peers && peers/bin/pip install llama-cpp-python==0.3.36 guidance``.

For each model and query it reports rows per second, prompt tokens evaluated per second (next to llama.cpp's own
prefill rate of one long prompt, measured through the same backend), and how many rows' values differ from the
loop's (argmax: concurrent runs share decode steps, whose arithmetic differs very slightly from a run alone, so a
near tie can turn). The rows are made up here, deterministically, so the benchmark needs no data set.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import random
import subprocess
import sys
import tempfile
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
    # Every row is different, as in a real data set: a repeated row would find its whole prompt saved, logits
    # included, and cost nothing, which is not what a data set of distinct rows costs.
    reviews = [{"review": f"{rng.choice(_THINGS)} {rng.choice(_GOOD if rng.random() < 0.5 else _BAD)}. "
                          f"Order {1000 + i}, {rng.choice(_CITIES)}."}
               for i in range(n)]
    texts: list[dict[str, Any]] = []
    while len(texts) < n:
        text = f"{rng.choice(_NAMES)} is {rng.randint(18, 90)} years old and lives in {rng.choice(_CITIES)}."
        if {"text": text} not in texts:
            texts.append({"text": text})
    return {"classification": reviews, "extraction": texts}


def measure(query: lmlang.Query, rows: list[dict[str, Any]], model: str, concurrency: int | None) -> dict[str, Any]:
    """One pass over the rows: a loop over ``Query.run`` when ``concurrency`` is None, else ``Query.map``."""
    # Every pass starts without saved prompts: a pass must not find the very prompts of the pass before it.
    lmlang.default_session().clear()
    started = time.perf_counter()
    if concurrency is None:
        results = [query.run(model, **row) for row in rows]
    else:
        results = list(query.map(rows, model, concurrency=concurrency, errors="raise"))
    seconds = time.perf_counter() - started
    prefill = sum(r.stats.prefill_tokens for r in results)
    return {"seconds": seconds, "rows_per_s": len(rows) / seconds, "prefill_tokens_per_s": prefill / seconds,
            "variables": [r.variables for r in results]}


PEERS_SCRIPT = pathlib.Path(__file__).resolve().parent / "throughput_peers.py"


def prefill_rate(model_name: str) -> float:
    """llama.cpp's prefill in tokens per second: one 512-token prompt evaluated alone, through lmlang's backend."""
    from lmlang.models import llama

    model = llama.load(model_name)
    tokens = model.tokenize(" ".join(["The quick brown fox jumps over the lazy dog."] * 60))[:512]
    best = 0.0
    for _ in range(2):
        with model.new_sequence() as seq:
            started = time.perf_counter()
            seq.append(tokens)
            best = max(best, len(tokens) / (time.perf_counter() - started))
    return best


def decode_rates(model_name: str, sizes: list[int]) -> dict[int, float]:
    """llama.cpp's decode in milliseconds per token when ``n`` sequences each add one token per llama_decode: the
    ceiling of what sharing decode steps can gain (a step of n tokens against n steps of one)."""
    from lmlang.models import llama

    model = llama.load(model_name)
    prompt = model.tokenize("The quick brown fox jumps over the lazy dog, and then")
    rates = {}
    for n in sizes:
        seqs = [model.new_sequence() for _ in range(n)]
        try:
            for seq in seqs:
                seq.append(prompt)
            model.decode_step(seqs, [prompt[-1]] * n)  # warm
            started = time.perf_counter()
            for _ in range(8):
                model.decode_step(seqs, [prompt[-1]] * n)
            rates[n] = (time.perf_counter() - started) / 8 / n * 1e3
        finally:
            for seq in seqs:
                seq.release()
    return rates


def peers(python: str, model_name: str, rows: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """guidance looping over ``rows`` on the same GGUF file, in the peers' own venv."""
    from lmlang.models import llama

    model = llama.load(model_name)
    job = {"model": str(model.path), "threads": llama.threads_from_environment(),
           "extra_buffer_types": model.extra_buffer_types.enabled, "rows": rows}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(job, handle)
    done = subprocess.run([python, str(PEERS_SCRIPT), handle.name], capture_output=True, text=True,
                          cwd=PEERS_SCRIPT.parent)
    pathlib.Path(handle.name).unlink()
    if done.returncode != 0:
        raise SystemExit(f"the peers' script failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def svg(report: list[dict[str, Any]], levels: list[int]) -> str:
    """Rows per second against concurrency, one line per model and query, the loop's rate at concurrency 1."""
    lines = sorted({(e["model"], e["query"]) for e in report})
    top = max(e["rows_per_s"] for e in report) * 1.1
    width, height, left, bottom = 640, 400, 60, 50
    colors = ["#1f77b4", "#2ca02c", "#9467bd", "#d62728", "#ff7f0e", "#8c564b"]

    def at(level: float, rate: float) -> tuple[float, float]:
        x = left + (levels.index(level) if level in levels else 0) / max(1, len(levels) - 1) * (width - left - 20)
        return x, height - bottom - rate / top * (height - bottom - 20)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
             f'font-size="12"><rect width="100%" height="100%" fill="white"/>',
             f'<line x1="{left}" y1="{height - bottom}" x2="{width - 20}" y2="{height - bottom}" stroke="black"/>',
             f'<line x1="{left}" y1="20" x2="{left}" y2="{height - bottom}" stroke="black"/>',
             f'<text x="{(width + left) / 2}" y="{height - 12}" text-anchor="middle">rows at once (lmlang map '
             f'--concurrency)</text>',
             f'<text x="14" y="{(height - bottom) / 2}" transform="rotate(-90 14 {(height - bottom) / 2})" '
             f'text-anchor="middle">rows per second</text>']
    for level in levels:
        x, _ = at(level, 0)
        parts.append(f'<text x="{x}" y="{height - bottom + 16}" text-anchor="middle">{level}</text>')
    for step in range(5):
        rate = top * step / 4
        _, y = at(levels[0], rate)
        parts.append(f'<text x="{left - 6}" y="{y + 4}" text-anchor="end">{rate:.0f}</text>')
    for i, (model, query) in enumerate(lines):
        color = colors[i % len(colors)]
        points = [at(int(e["runner"].split("=")[1]), e["rows_per_s"]) for e in report
                  if (e["model"], e["query"]) == (model, query) and e["runner"].startswith("map")]
        loop = next(e["rows_per_s"] for e in report if (e["model"], e["query"], e["runner"]) == (model, query, "loop"))
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="'
                     + " ".join(f"{x:.1f},{y:.1f}" for x, y in points) + '"/>')
        x, y = at(levels[0], loop)
        parts.append(f'<circle cx="{x}" cy="{y}" r="4" fill="none" stroke="{color}"/>')
        parts.append(f'<text x="{width - 200}" y="{30 + 16 * i}" fill="{color}">{model} {query}</text>')
    parts.append(f'<text x="{width - 200}" y="{30 + 16 * len(lines)}">circle: a loop over Query.run</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def _plain(values: dict[str, Any]) -> dict[str, str]:
    """Values as text without surrounding spaces: guidance gives strings, lmlang typed values (``INT`` an int)."""
    return {name: str(value).strip() for name, value in values.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--models", default="smollm2,gemma3-270m")
    parser.add_argument("--concurrency", default="1,4,8,16")
    parser.add_argument("--peers", help="python of a venv with guidance, to loop guidance over the same rows")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--svg", help="also draw rows/s against concurrency into this SVG file")
    args = parser.parse_args(argv)
    levels = [int(c) for c in args.concurrency.split(",")]
    rows = make_rows(args.rows)
    queries = {"classification": lmlang.compile(CLASSIFY), "extraction": lmlang.compile(EXTRACT)}
    report: list[dict[str, Any]] = []
    loops: dict[tuple[str, str], dict[str, Any]] = {}
    rates: dict[str, float] = {}
    steps: dict[str, dict[int, float]] = {}
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
            loops[(model, name)] = loop
        rates[model] = prefill_rate(model)
        steps[model] = decode_rates(model, sorted({1, *levels}))
        if args.peers:
            for name, outcome in peers(args.peers, model, rows).items():
                loop = loops[(model, name)]
                if "error" in outcome:
                    print(f"| {model} | {name} | guidance loop | {outcome['error']} | | | |", flush=True)
                    continue
                rate = args.rows / outcome["seconds"]
                differing = sum(_plain(a) != _plain(b) for a, b in zip(outcome["values"], loop["variables"]))
                entry = {"model": model, "query": name, "runner": "guidance loop", "rows": args.rows,
                         "rows_per_s": round(rate, 3), "speedup": round(rate / loop["rows_per_s"], 3),
                         "differing": differing}
                report.append(entry)
                print(f"| {model} | {name} | guidance loop | {rate:.2f} | | {entry['speedup']:.2f} | {differing} |",
                      flush=True)
    print()
    for model, rate in rates.items():
        print(f"llama.cpp's own prefill of one 512-token prompt, {model}: {rate:.0f} tokens/s")
        per = ", ".join(f"{n} at once {ms:.2f}" for n, ms in steps[model].items())
        print(f"llama.cpp's decode, ms per token when sequences add one token each per step, {model}: {per}")
    if args.svg:
        with open(args.svg, "w", encoding="utf-8") as file:
            file.write(svg([e for e in report if e["runner"] != "guidance loop"], levels))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as file:
            json.dump({"runs": report, "prefill_tokens_per_s": rates, "decode_ms_per_token": steps}, file, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
