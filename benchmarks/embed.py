"""Embeddings for the nearest-example route: `Model.embed` against the same tokens through the generation context.

For each model: the median time of `Model.embed` on a short question (after a warm-up), next to appending the same
tokens to a fresh sequence of the generation context and reading its logits, in the same run and interleaved;
the time of the first `embed` (which creates the embedding context); and the resident memory the embedding context
adds after a 500-token text.

    python benchmarks/embed.py [--repeats 20]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

from lmlang.models import llama

QUESTION = "How much salt do I put in the water when I boil pasta for four people?"
LONG = " ".join(["The cat walked slowly along the old stone wall, looking for a warm place to sleep."] * 27)


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def generation_pass(model: llama.Model, tokens: list[int]) -> None:
    seq = model.new_sequence()
    try:
        seq.append(tokens)
        seq.logits()
    finally:
        seq.release()


def timed(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="+", default=["smollm2", "gemma3-270m"])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    print("| model | tokens | embed ms (median) | same tokens through the generation context ms | first embed ms "
          "| memory added after a text of about 490 tokens |")
    print("|---|---|---|---|---|---|")
    for name in args.models:
        model = llama.load(name)
        tokens = model.tokenize(QUESTION, bos=True)
        generation_pass(model, tokens)
        before = rss_mb()
        first = timed(lambda: model.embed(QUESTION))
        embeds, passes = [], []
        for _ in range(args.repeats):
            embeds.append(timed(lambda: model.embed(QUESTION)))
            passes.append(timed(lambda: generation_pass(model, tokens)))
        model.embed(LONG)
        added = rss_mb() - before
        print(f"| {name} | {len(tokens)} | {statistics.median(embeds) * 1e3:.1f} | "
              f"{statistics.median(passes) * 1e3:.1f} | {first * 1e3:.0f} | +{added:.0f} MB |")


if __name__ == "__main__":
    main()
