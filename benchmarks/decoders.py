"""Decoders: batched sampling and batched scoring against doing the same work one run at a time.

Run from the repository root:  python benchmarks/decoders.py [--model smollm2] [--repeats 5]

1. ``sample(n=4)``: one run of the decoder, whose four runs advance together (one llama_decode per step for all
   four), against four separate ``sample`` runs of n=1 with the same seeds; same query and token budget.
2. ``distribution`` over 10 candidates: all scored in one batched evaluation (``Decoder.score_continuations``),
   against 10 separate scorings of one candidate each, after the same cached prompt.
3. The hole loop's own Python cost per token (logits from a stand-in sequence, so no model time).
4. One sampled choice on SmolLM2's and Gemma 3's real next-token logits (after a story's first words):
   lmlang's ``Sampler.choose`` against the textbook way (float64 softmax of the whole row, then ``numpy.random.Generator.choice``), which is
   what it did before.

The two sides of each comparison run interleaved in every repeat; medians are reported.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy

import lmlang
from lmlang.decoding.hole import HoleRequest, decode_hole
from lmlang.decoding.sampler import Sampler
from lmlang.interpret.prompt import Prompt
from lmlang.models import llama

SAMPLE = 'sample(temperature=0.8, max_tokens=32)\n    "Write a short story about a lighthouse keeper.\\n[STORY]"\n'
PROMPT = "Review: The battery died after a day. Total waste of money.\nThe reviewer's mood, in a few words:"
CANDIDATES = [" angry about the battery", " disappointed and annoyed", " happy with the purchase",
              " very satisfied with it", " neutral, neither good nor bad", " frustrated with the seller",
              " amused by the whole thing", " sad but hopeful", " indifferent to the product",
              " furious about the short battery life"]


def timed(work) -> tuple[float, object]:
    start = time.perf_counter()
    value = work()
    return time.perf_counter() - start, value


def sampling(model: str, repeats: int) -> dict[str, float]:
    query = lmlang.compile(SAMPLE)
    together, apart, tokens = [], [], []
    for r in range(repeats):
        seed = 100 + r
        seconds, results = timed(lambda: query.run(model, decoder_args={"n": 4, "seed": seed}))
        together.append(seconds)
        tokens.append(sum(x.stats.generated_tokens for x in results))
        seconds, _ = timed(lambda: [query.run(model, decoder_args={"seed": seed + i}) for i in range(4)])
        apart.append(seconds)
    return {"together": statistics.median(together), "apart": statistics.median(apart),
            "tokens": statistics.median(tokens)}


def scoring(model: str, repeats: int) -> dict[str, float]:
    decoder = lmlang.default_session().decoder(llama.load(model))
    prompt = Prompt(decoder.model, decoder.pool)
    prompt.add_text(PROMPT)
    seq = prompt.flush()
    together, apart = [], []
    lengths = [len(decoder.model.tokenize(c)) for c in CANDIDATES]
    try:
        for _ in range(repeats):
            seconds, batched = timed(lambda: decoder.score_continuations(seq, CANDIDATES))
            together.append(seconds)
            seconds, single = timed(lambda: [decoder.score_continuation(seq, c) for c in CANDIDATES])
            apart.append(seconds)
            # llama.cpp's logits for a token depend on what else is in its batch (reproduced with bare
            # llama_decode calls: up to 0.6 in one logit on SmolLM2), so the two agree to within the 0.1 nats a
            # token that tests/decoding allow, not exactly.
            assert all(abs(b - s) <= 0.1 * n for b, s, n in zip(batched, single, lengths)), (batched, single)
    finally:
        prompt.close()
    tokens = sum(len(decoder.model.tokenize(c)) - 1 for c in CANDIDATES)
    return {"together": statistics.median(together), "apart": statistics.median(apart), "tokens": tokens}


class _StandIn:
    """A sequence whose logits never change and whose appends cost nothing: what is left is the loop."""

    def __init__(self, model: llama.Model) -> None:
        self.model = model
        self.tokens: list[int] = []
        logits = numpy.random.default_rng(0).normal(size=model.n_vocab).astype(numpy.float32)
        logits[1000] = 30.0  # a plain text token, never an end of text
        logits.flags.writeable = False
        self._logits = logits

    def logits(self) -> numpy.ndarray:
        return self._logits

    def append(self, tokens: list[int]) -> None:
        self.tokens.extend(tokens)


def loop_overhead(model: str, repeats: int) -> float:
    loaded = llama.load(model)
    per_token = []
    for _ in range(max(repeats, 10)):
        seq = _StandIn(loaded)
        seconds, outcome = timed(lambda: decode_hole(seq, HoleRequest("X", None, (), 256, None), Sampler()))
        per_token.append(seconds / outcome.sampled)
    return min(per_token)


def textbook_choice(logits: numpy.ndarray, temperature: float, top_p: float, rng: numpy.random.Generator) -> int:
    """Softmax of the whole row in float64, a full sort for top-p, ``Generator.choice``."""
    scaled = logits.astype(numpy.float64) / temperature
    probs = numpy.exp(scaled - scaled.max())
    probs /= probs.sum()
    candidates = numpy.arange(len(probs))
    if top_p < 1.0:
        order = numpy.argsort(-probs)
        cut = int(numpy.searchsorted(numpy.cumsum(probs[order]), top_p)) + 1
        candidates, probs = order[:cut], probs[order[:cut]] / probs[order[:cut]].sum()
    return int(candidates[rng.choice(len(candidates), p=probs)])


def sampler_costs(repeats: int) -> list[tuple[str, str, float, float]]:
    """Median µs of one sampled choice, lmlang's and the textbook one, on each model's real next-token logits."""
    rows = []
    for name in ("smollm2", "gemma3-270m"):
        model = llama.load(name)
        with model.new_sequence() as seq:
            seq.append(model.tokenize("Here is a long story about a cat. Once upon a time", bos=model.add_bos))
            logits = seq.logits().copy()
        rng = numpy.random.default_rng(0)
        for setting, top_p in (("temperature 0.8", 1.0), ("temperature 0.8, top_p 0.9", 0.9)):
            sampler = Sampler(0.8, top_p=top_p, seed=0)
            ours = [timed(lambda: sampler.choose(logits))[0] for _ in range(max(repeats, 20))]
            theirs = [timed(lambda: textbook_choice(logits, 0.8, top_p, rng))[0] for _ in range(max(repeats, 20))]
            rows.append((f"{name} ({len(logits)})", setting, statistics.median(ours) * 1e6,
                         statistics.median(theirs) * 1e6))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    s = sampling(args.model, args.repeats)
    d = scoring(args.model, args.repeats)
    overhead = loop_overhead(args.model, args.repeats)
    print(f"model {args.model}, {args.repeats} repeats, medians\n")
    print("| comparison | batched | separately | speed-up |")
    print("|---|---|---|---|")
    print(f"| sample(n=4), 32-token budget ({s['tokens']:.0f} tokens in all) | {s['together']:.3f} s "
          f"| {s['apart']:.3f} s (4 runs) | {s['apart'] / s['together']:.2f}x |")
    print(f"| distribution over 10 candidates ({d['tokens']} tokens to evaluate) | {d['together'] * 1e3:.1f} ms "
          f"| {d['apart'] * 1e3:.1f} ms (10 scorings) | {d['apart'] / d['together']:.2f}x |")
    print(f"\nhole loop, Python cost per token without the model (argmax, unconstrained): {overhead * 1e6:.0f} µs")
    print("\n| model (vocabulary) | sampling | lmlang Sampler.choose µs | textbook (float64 softmax, Generator.choice) µs | ratio |")
    print("|---|---|---|---|---|")
    for size, name, ours, theirs in sampler_costs(args.repeats):
        print(f"| {size} | {name} | {ours:.0f} | {theirs:.0f} | {theirs / ours:.1f}x |")


if __name__ == "__main__":
    main()
