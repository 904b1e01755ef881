"""The peers' side of benchmarks/masks.py, run in a separate venv with llguidance and outlines-core installed.

    <venv>/bin/python benchmarks/masks_peers.py <input.pkl>    (written by benchmarks/masks.py)

Prints one JSON line: per case, per engine, compile time and the time to compute a token mask per step along the
same token path (neither engine keeps masks per state, so every step is a "new" one; both write a bitmask,
which is timed, not its application to logits).
"""

from __future__ import annotations

import json
import pickle
import sys
import time

import numpy as np


def percentiles(times: list[float]) -> dict:
    return {
        "new_ms": float(np.median(times)) * 1e3,
        "new_max_ms": max(times) * 1e3,
        "p50_us": float(np.percentile(times, 50)) * 1e6,
        "p99_us": float(np.percentile(times, 99)) * 1e6,
    }


class Tokens:
    """What llguidance's TokenizerWrapper needs: token bytes, EOS, and a tokenizer (greedy, only for its checks)."""

    def __init__(self, token_bytes: list[bytes], eos: int, special: list[int]) -> None:
        self.tokens = [b if b else b"\xff<special_%d>" % i for i, b in enumerate(token_bytes)]
        self.eos_token_id = eos
        self.bos_token_id = None
        self.special_token_ids = special
        self._ids = {b: i for i, b in enumerate(token_bytes) if b and i not in set(special)}
        self._longest = max(len(b) for b in token_bytes)

    def __call__(self, data: bytes) -> list[int]:
        out, i = [], 0
        while i < len(data):
            for j in range(min(len(data), i + self._longest), i, -1):
                if data[i:j] in self._ids:
                    out.append(self._ids[data[i:j]])
                    i = j
                    break
            else:
                i += 1
        return out


def llguidance_case(tokenizer, regex: str, path: list[int], repeats: int) -> dict:
    import llguidance
    import llguidance.numpy as lnp

    t = time.perf_counter()
    matcher = llguidance.LLMatcher(tokenizer, llguidance.LLMatcher.grammar_from_regex(regex), log_level=0)
    compile_s = time.perf_counter() - t
    if matcher.is_error():
        return {"error": matcher.get_error()}
    bitmask = lnp.allocate_token_bitmask(1, tokenizer.vocab_size)
    times = []
    for _ in range(repeats):
        matcher.reset()
        for token in path:
            t = time.perf_counter()
            lnp.fill_next_token_bitmask(matcher, bitmask)
            times.append(time.perf_counter() - t)
            if not matcher.consume_token(token):
                return {"error": f"token {token} rejected: {matcher.get_error()}"}
    return {"compile_ms": compile_s * 1e3, **percentiles(times)}


def outlines_case(vocabulary, n_vocab: int, regex: str, path: list[int], repeats: int) -> dict:
    import outlines_core

    t = time.perf_counter()
    index = outlines_core.Index(regex, vocabulary)
    compile_s = time.perf_counter() - t
    guide = outlines_core.Guide(index)
    bitmask = np.zeros((n_vocab + 31) // 32, dtype=np.int32)
    times = []
    for _ in range(repeats):
        guide.reset()
        for token in path:
            t = time.perf_counter()
            guide.write_mask_into(bitmask.ctypes.data, bitmask.size, bitmask.itemsize)
            times.append(time.perf_counter() - t)
            guide.advance(token)
    return {"compile_ms": compile_s * 1e3, **percentiles(times)}


def main() -> None:
    with open(sys.argv[1], "rb") as f:
        data = pickle.load(f)
    token_bytes, eog, special = data["token_bytes"], data["eog"], data["special"]
    repeats = 20
    results: dict[str, dict] = {}
    import llguidance
    import outlines_core

    wrapped = llguidance.TokenizerWrapper(Tokens(token_bytes, eog[0], special))
    tokenizer = llguidance.LLTokenizer(wrapped, n_vocab=len(token_bytes), eos_token=eog)
    by_bytes: dict[bytes, list[int]] = {}
    for i, b in enumerate(token_bytes):
        if b and i not in set(eog):
            by_bytes.setdefault(b, []).append(i)
    vocabulary = outlines_core.Vocabulary(eog[0], by_bytes)
    for name, regex, path in data["cases"]:
        row = results[name] = {}
        for engine, run in (
            ("llguidance", lambda: llguidance_case(tokenizer, regex, path, repeats)),
            ("outlines-core", lambda: outlines_case(vocabulary, len(token_bytes), regex, path, repeats)),
        ):
            try:
                row[engine] = run()
            except Exception as e:  # a peer's failure is a result to report, not a reason to stop
                row[engine] = {"error": f"{type(e).__name__}: {e}"}
    print(json.dumps(results))


if __name__ == "__main__":
    main()
