"""Token-mask benchmark: lmlang's constraint compiler next to llguidance and outlines-core, same vocabularies.

    python benchmarks/masks.py [--peers PATH/TO/peers/bin/python] [--models smollm2 gemma3-270m]
    python benchmarks/masks.py --throughput [--tokens 96] [--rounds 5]

For each constraint and vocabulary: the time to compile (plan_hole + matcher, caches emptied first), to mask the
logits in a state never seen (first visit of each state along a valid value), and in a state seen before
(p50, p99 over repeated calls): both the mask itself (the state's allowed-token row, what the peers compute) and
the decoder's step that applies it. Peers run in a subprocess of a separate venv (they are not lmlang
dependencies): they get the same token bytes and the same regular expressions. The floor of any step that needs
the whole row -- one read of it, one write of it -- is measured in the same run.

``--throughput`` times whole generations through the public API instead: the same query with and without a
constraint that masks every step (argmax, a fixed max_tokens), interleaved rounds, tokens per second and ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from lmlang.caches import clear_process_caches
from lmlang.constraints import plan_hole
from lmlang.decoding import hole
from lmlang.masks import Vocabulary, matcher
from lmlang.masks.utf8 import category_ranges
from lmlang.models import llama
from lmlang.source import Source
from lmlang.syntax.ast import Expr

OPTIONS = [f"option number {i}" for i in range(200)]
EMAIL = r"[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}"
DATE = r"[0-9]{2}/[0-9]{2}/[0-9]{4}"

# name, where clause, a valid value to walk through, the same language as a regex for the peers
CASES = [
    ("INT", "INT(V)", "123456", r" ?(?:0|-?[1-9][0-9]*)"),
    ("FLOAT", "FLOAT(V)", "-3.14159", r" ?-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?"),
    ("date", f'REGEX(V, r"{DATE}")', "24/11/2026", DATE),
    ("email", f'REGEX(V, r"{EMAIL}")', "john.doe@example.com", EMAIL),
    # Longest first: the same language for every engine, and the order outlines-core's leftmost-first index needs
    # to keep "option number 13" reachable after "option number 1".
    ("set of 200", "V in OPTIONS", "option number 137", "(?:" + "|".join(sorted(OPTIONS, key=len, reverse=True)) + ")"),
    ("len(V) < 100", "len(V) < 100", "The quick brown fox jumps over the lazy dog.", r"(?s:.{0,99})"),
    (
        "combination",
        'REGEX(V, r"[A-Za-z ,.]+") and len(V) < 60 and not "  " in V',
        "The quick brown fox jumps over the lazy dog.",
        None,
    ),
]


def vocabulary(model: llama.Model) -> Vocabulary:
    return model.vocabulary()


def lmlang_case(model: llama.Model, vocab: Vocabulary, where: str, value: str, repeats: int) -> dict:
    clear_process_caches()
    source = Source("bench.lmq", where)
    expr = Expr(source.span(0, len(where)), where)
    started = time.perf_counter()
    hole = plan_hole("V", [expr], None, {"OPTIONS": OPTIONS}, {})
    tm = hole.matcher(vocab)
    compile_s = time.perf_counter() - started
    assert tm is not None
    logits = np.random.default_rng(0).standard_normal(vocab.size).astype(np.float32)
    states, state = [], tm.start()
    for token in model.tokenize(value):
        states.append(state)
        state = tm.advance(state, token)
        assert state >= 0, (where, value, token)
    view = logits.copy()
    view.flags.writeable = False  # as the backend's row is
    out = np.empty_like(logits)
    fresh = []
    for s in dict.fromkeys(states):
        t = time.perf_counter()
        tm.choices(s, view, out)
        fresh.append(time.perf_counter() - t)
    for s in states:
        tm.allowed(s)
    # Cached states: the mask (the allowed-token row, as the peers' bitmask), the decoder's step (choices: sparse where few tokens are allowed), and for comparison the
    # whole masked row written into a buffer (what every step cost before the sparse way), interleaved.
    cached, whole, lookup = [], [], []
    for _ in range(repeats):
        for s in states:
            t = time.perf_counter()
            tm.allowed(s)
            lookup.append(time.perf_counter() - t)
            t = time.perf_counter()
            tm.choices(s, view, out)
            cached.append(time.perf_counter() - t)
            t = time.perf_counter()
            tm.masked_copy(s, view, out)
            whole.append(time.perf_counter() - t)
    sparse = sum(tm.choices(s, view, out)[0] is not None for s in states)
    hole.finish(value)
    return {
        "compile_ms": compile_s * 1e3,
        "new_ms": statistics.median(fresh) * 1e3,
        "new_max_ms": max(fresh) * 1e3,
        "mask_p50_us": float(np.percentile(lookup, 50)) * 1e6,
        "mask_p99_us": float(np.percentile(lookup, 99)) * 1e6,
        "p50_us": float(np.percentile(cached, 50)) * 1e6,
        "p99_us": float(np.percentile(cached, 99)) * 1e6,
        "sparse_steps": f"{sparse}/{len(states)}",
        "whole_p50_us": float(np.percentile(whole, 50)) * 1e6,
        "tokens": [int(t) for t in model.tokenize(value)],
    }


def row_floor(size: int, repeats: int = 200) -> tuple[float, float]:
    """Medians, in µs, of one read (``max``) and one write (``fill``) of a float32 row of ``size`` logits: no
    step that needs the whole row can cost less, masked or not."""
    row = np.random.default_rng(0).standard_normal(size).astype(np.float32)
    reads, writes = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        row.max()
        reads.append(time.perf_counter() - t)
        t = time.perf_counter()
        row.fill(0.0)
        writes.append(time.perf_counter() - t)
    return statistics.median(reads) * 1e6, statistics.median(writes) * 1e6


def run_peers(python: str, model: llama.Model, rows: list[dict]) -> dict:
    """Runs benchmarks/masks_peers.py in the peers' venv on the same token bytes, regexes and token paths."""
    with tempfile.NamedTemporaryFile(suffix=".pkl", delete=False) as f:
        pickle.dump(
            {
                "token_bytes": model.token_bytes,
                "eog": sorted(model.eog_tokens),
                "special": sorted(model.special_tokens),
                "cases": [(r["case"], r["regex"], r["tokens"]) for r in rows if r["regex"]],
            },
            f,
        )
    script = os.path.join(os.path.dirname(__file__), "masks_peers.py")
    done = subprocess.run([python, script, f.name], capture_output=True, text=True, timeout=1800)
    os.unlink(f.name)
    if done.returncode != 0:
        print(done.stderr[-2000:], file=sys.stderr)
        return {}
    return json.loads(done.stdout.strip().splitlines()[-1])


THROUGHPUT_PROMPT = '"Here is a long story about a cat who travels around the world.\\n\\nOnce upon a time[X]"'
THROUGHPUT_CASES = [
    ("no constraint", ""),
    ("len(X) < 4000", " where len(X) < 4000"),
    ("REGEX [A-Za-z ,.'\\n]+", " where REGEX(X, r\"[A-Za-z ,.'\\n]+\")"),
    ("not \"@\" in X", ' where not "@" in X'),
]


def throughput(models: list[str], tokens: int, rounds: int) -> None:
    """Tokens per second of whole generations through ``lmlang.compile(...).run``, with and without a mask.

    Beside the end-to-end rate (noisy on a shared machine), the time spent masking is measured inside the runs
    (``TokenMatcher.choices``, the decoder's one call into the masks, wrapped with a timer; greedy steps whose
    likeliest token is allowed write no mask at all, and their share is counted): the ratio it implies,
    unconstrained time per token over that plus the mask's, does not depend on the noise.
    """
    import lmlang

    spent: list[float] = []
    original = matcher.TokenMatcher.choices

    def timed(self, state, logits, out):
        t = time.perf_counter()
        chosen = original(self, state, logits, out)
        spent.append(time.perf_counter() - t)
        return chosen

    matcher.TokenMatcher.choices = timed  # type: ignore[method-assign]
    shortcut = hole.HoleCursor._top_if_allowed
    skipped: list[bool] = []

    def counted(self, *step):
        found = shortcut(self, *step)
        skipped.append(found[0] is not None)
        return found

    hole.HoleCursor._top_if_allowed = counted  # type: ignore[method-assign]
    for name in models:
        queries = [(case, lmlang.compile(THROUGHPUT_PROMPT + where + "\n")) for case, where in THROUGHPUT_CASES]
        for _, q in queries:  # warm up: vocabulary layout, automata, the states this text visits
            q.run(name, decoder_args={"max_tokens": tokens})
        rates: dict[str, list[float]] = {case: [] for case, _ in queries}
        masks: dict[str, list[float]] = {case: [] for case, _ in queries}
        counts: dict[str, set[int]] = {case: set() for case, _ in queries}
        unmasked: dict[str, list[float]] = {case: [] for case, _ in queries}
        for r in range(rounds):
            for case, q in queries if r % 2 == 0 else queries[::-1]:
                spent.clear()
                skipped.clear()
                result = q.run(name, decoder_args={"max_tokens": tokens})
                generated = result.stats.generated_tokens
                rates[case].append(generated / result.stats.seconds)
                masks[case].append(sum(spent) / generated)
                unmasked[case].append(sum(skipped) / generated)
                counts[case].add(generated)
        base = statistics.median(rates["no constraint"])
        print(f"\n## {name}: {tokens} greedy tokens, {rounds} interleaved rounds, medians")
        print("| constraint | tokens generated | tokens/s | ratio to unconstrained | steps with no mask written "
              "| mask µs/token | ratio implied by the mask's time |")
        print("|---|---|---|---|---|---|---|")
        for case, _ in queries:
            rate = statistics.median(rates[case])
            mask_s = statistics.median(masks[case])
            share = statistics.median(unmasked[case])
            print(f"| {case} | {', '.join(map(str, sorted(counts[case])))} | {rate:.1f} | {rate / base:.3f} "
                  f"| {share:.0%} | {mask_s * 1e6:.1f} | {1 / (1 + mask_s * base):.4f} |")
    matcher.TokenMatcher.choices = original  # type: ignore[method-assign]
    hole.HoleCursor._top_if_allowed = shortcut  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="+", default=["smollm2", "gemma3-270m"])
    parser.add_argument("--peers", default=None, help="python of a venv with llguidance and outlines-core")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--throughput", action="store_true", help="time whole generations instead of single masks")
    parser.add_argument("--tokens", type=int, default=96)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if args.throughput:
        throughput(args.models, args.tokens, args.rounds)
        return
    started = time.perf_counter()
    for category in "dsw":
        category_ranges(category)  # one-time per process (Unicode tables), not per constraint
    print(f"unicode class tables (once per process): {(time.perf_counter() - started) * 1e3:.0f} ms")
    for name in args.models:
        model = llama.load(name)
        t = time.perf_counter()
        vocab = vocabulary(model)
        print(f"\n## {name}: {vocab.size} tokens (vocabulary layout, once per model: {(time.perf_counter() - t) * 1e3:.0f} ms)")
        rows = []
        for case, where, value, regex in CASES:
            row = lmlang_case(model, vocab, where, value, args.repeats)
            rows.append({"case": case, "regex": regex, **row})
        peers = run_peers(args.peers, model, rows) if args.peers else {}
        read_us, write_us = row_floor(vocab.size)
        print(f"one read of a {vocab.size}-logit row (max): {read_us:.1f} µs; one write (fill): {write_us:.1f} µs")
        header = ("| constraint | engine | compile ms | new state ms (median / max) | cached mask p50 µs "
                  "| cached mask p99 µs | decoder step, cached, p50 µs | p99 µs | steps choosing among few tokens "
                  "| whole masked row p50 µs |")
        print(header)
        print("|" + "---|" * 10)
        for r in rows:
            print(
                f"| {r['case']} | lmlang | {r['compile_ms']:.1f} | {r['new_ms']:.2f} / {r['new_max_ms']:.2f} "
                f"| {r['mask_p50_us']:.1f} | {r['mask_p99_us']:.1f} | {r['p50_us']:.1f} | {r['p99_us']:.1f} "
                f"| {r['sparse_steps']} | {r['whole_p50_us']:.1f} |"
            )
            for engine, p in sorted(peers.get(r["case"], {}).items()):
                if "error" in p:
                    print(f"| {r['case']} | {engine} | error: {p['error'][:60]} | | | | | | | |")
                    continue
                print(
                    f"| {r['case']} | {engine} | {p['compile_ms']:.1f} | {p['new_ms']:.2f} / {p['new_max_ms']:.2f} "
                    f"| {p['p50_us']:.1f} | {p['p99_us']:.1f} | | | | |"
                )
        del model


if __name__ == "__main__":
    main()
