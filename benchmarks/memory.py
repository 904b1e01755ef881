"""Memory of a long-running process: many compiles and runs of distinct small queries in one process.

Each iteration compiles a query no earlier iteration compiled (its own regular expression, its own prompt) and
runs it on the model, as a server or a map job does. The resident memory is printed as it goes: with every cache
bounded, it levels off once the caches are full instead of growing with the number of queries.

    python benchmarks/memory.py                     # 10,000 iterations on SmolLM2
    python benchmarks/memory.py --iterations 300 --every 50
"""

from __future__ import annotations

import argparse
import gc
import resource
import sys
import time

import lmlang
from lmlang.caches import process_cache_sizes


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def source(i: int) -> str:
    """A small query of its own: a distinct regular expression, prompt and length bound per ``i``."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    first, second = letters[i % 26], letters[(i // 26) % 26]
    return (f'"Write a code for item {i}: [CODE]" where REGEX(CODE, r"[{first}-z]{{1,{1 + i % 7}}}{second}?[0-9]'
            f'{{0,{i % 5}}}") and len(TOKENS(CODE)) < 6')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iterations", type=int, default=10_000, help="queries compiled and run (default 10000)")
    parser.add_argument("--every", type=int, default=500, help="print the resident memory every this many")
    parser.add_argument("--model", default="smollm2")
    args = parser.parse_args(argv)
    lmlang.run(source(0), args.model)  # loads the model: the baseline is measured after it
    gc.collect()
    baseline = rss_mb()
    started = time.perf_counter()
    print(f"{'iterations':>10} {'RSS MB':>8} {'growth MB':>10} {'s/query':>8}", flush=True)
    print(f"{0:>10} {baseline:8.1f} {0.0:10.1f} {'':>8}", flush=True)
    peak_growth = 0.0
    for i in range(1, args.iterations + 1):
        lmlang.run(source(i), args.model)
        if i % args.every == 0 or i == args.iterations:
            gc.collect()
            now = rss_mb()
            peak_growth = max(peak_growth, now - baseline)
            per = (time.perf_counter() - started) / i
            print(f"{i:>10} {now:8.1f} {now - baseline:10.1f} {per:8.3f}", flush=True)
    queries = sum(1 for name in sys.modules if name.startswith("__lmlang_query_"))
    sizes = ", ".join(f"{name} {n}/{cap}" for name, (n, cap) in process_cache_sizes().items())
    session = lmlang.default_session()
    matchers = sum(len(d.matchers) for d in session.decoders())
    print(f"query modules alive: {queries}; caches: {sizes}; matchers {matchers}; "
          f"embeddings {len(session.embeddings)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
