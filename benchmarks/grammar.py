"""Grammar-mask benchmark: lmlang's GRAMMAR/JSON masks next to llguidance and XGrammar, same vocabularies.

    python benchmarks/grammar.py [--peers PATH/TO/peers/bin/python] [--models smollm2 gemma3-270m]
                                 [--repeats 30]

Cases: nested JSON (``JSON(V)``), arithmetic (a Lark grammar), and a small programming language (a Lark grammar
with statements, blocks and expressions). For each case and vocabulary, along the tokens of one valid value:
*compile* = ``plan_hole`` + ``matcher(vocab)`` (the model's llguidance tokenizer, built once per model, is timed
apart); *new state* = the decoder's call (``choices``) on a state visited for the first time (median / max);
*cached* = the same call on a state seen before (p50 / p99 over ``--repeats`` passes). Peers run in a subprocess
of a separate venv (``--peers``; they are never lmlang dependencies) on the same token bytes and grammars and
the same token path: llguidance's ``LLMatcher`` (its own bitmask per step, kept for no state: new and cached time
the same computation), XGrammar's ``GrammarMatcher`` when it imports (it needs torch).
"""

from __future__ import annotations

import argparse
import json
import pickle
import subprocess
import sys
import tempfile
import time

import numpy as np

ARITHMETIC = r"""
start: expr
?expr: term (("+" | "-") term)*
?term: atom (("*" | "/") atom)*
?atom: NUMBER | "(" expr ")"
NUMBER: /[0-9]+/
"""
ARITHMETIC_GBNF = r"""
root ::= expr
expr ::= term (("+" | "-") term)*
term ::= atom (("*" | "/") atom)*
atom ::= [0-9]+ | "(" expr ")"
"""
PROGRAM = r"""
start: stmt+
?stmt: "let " NAME " = " expr ";" WS
     | "print(" expr ");" WS
     | "while (" expr ") {" WS stmt* "}" WS
     | "if (" expr ") {" WS stmt* "}" (" else {" WS stmt* "}")? WS
?expr: sum ((" < " | " == ") sum)?
?sum: atom ((" + " | " - " | " * ") atom)*
?atom: NAME | NUMBER | "(" expr ")"
NAME: /[a-z][a-z0-9_]*/
NUMBER: /[0-9]+/
WS: /[ \n]*/
"""
PROGRAM_GBNF = r"""
root ::= stmt+
stmt ::= "let " name " = " expr ";" ws | "print(" expr ");" ws | "while (" expr ") {" ws stmt* "}" ws | "if (" expr ") {" ws stmt* "}" (" else {" ws stmt* "}")? ws
expr ::= sum ((" < " | " == ") sum)?
sum ::= atom ((" + " | " - " | " * ") atom)*
atom ::= name | [0-9]+ | "(" expr ")"
name ::= [a-z] [a-z0-9_]*
ws ::= [ \n]*
"""
NESTED_JSON = '{"a": [1, {"b": [true, null, {"c": "x"}]}], "d": {"e": {"f": [[[1, 2]]]}}}'
PROGRAM_TEXT = "let n = 10;\nlet total = 0;\nwhile (0 < n) {\nlet total = total + n;\nlet n = n - 1;\n}\nprint(total);\n"

# name, where clause, value, peers' grammar: (llguidance grammar kind, text), XGrammar EBNF or "json"
CASES = [
    ("nested JSON", "JSON(V)", NESTED_JSON, ("json", "{}"), "json"),
    ("arithmetic", "GRAMMAR(V, G)", "((12+3)*(4-5))/6+7*(8+9)", ("lark", ARITHMETIC), ARITHMETIC_GBNF),
    ("small language", "GRAMMAR(V, P)", PROGRAM_TEXT, ("lark", PROGRAM), PROGRAM_GBNF),
]


def stats(times: list[float]) -> dict:
    return {"median_ms": float(np.median(times)) * 1e3, "max_ms": max(times) * 1e3,
            "p50_us": float(np.percentile(times, 50)) * 1e6, "p99_us": float(np.percentile(times, 99)) * 1e6}


# ------------------------------------------------------------------------------------------ lmlang side


def lmlang_case(vocab, where: str, path: list[int], repeats: int) -> dict:
    from lmlang.constraints import plan_hole, structured
    from lmlang.source import Source
    from lmlang.syntax.ast import Expr

    structured._WRAPPED.clear()
    source = Source("bench.lmq", where)
    started = time.perf_counter()
    hole = plan_hole("V", [Expr(source.span(0, len(where)), where)], None, {"G": ARITHMETIC, "P": PROGRAM}, {})
    tm = hole.matcher(vocab)
    compile_s = time.perf_counter() - started
    logits = np.random.default_rng(0).standard_normal(vocab.size).astype(np.float32)
    out = np.empty_like(logits)
    states, state, new = [], tm.start(), []
    for token in path:
        t = time.perf_counter()
        tm.choices(state, logits, out)
        new.append(time.perf_counter() - t)
        states.append(state)
        state = tm.advance(state, token)
        assert state > 0, "the benchmark's value left the grammar"
    assert tm.accepts(state)
    cached = []
    for _ in range(repeats):
        for s in states:
            t = time.perf_counter()
            tm.choices(s, logits, out)
            cached.append(time.perf_counter() - t)
    n = stats(new)
    c = stats(cached)
    return {"compile_ms": compile_s * 1e3, "new_median_ms": n["median_ms"], "new_max_ms": n["max_ms"],
            "cached_p50_us": c["p50_us"], "cached_p99_us": c["p99_us"], "steps": len(path)}


# ------------------------------------------------------------------------------------------ peers side


def peers(data: dict) -> dict:
    from masks_peers import Tokens  # beside this script: the masks benchmark's view of a vocabulary for llguidance

    results: dict = {}
    special = data["special"]
    eos = data["eos"]
    try:
        import llguidance

        t = time.perf_counter()
        tok = llguidance.LLTokenizer(llguidance.TokenizerWrapper(Tokens(data["tokens"], eos, special)), eos_token=eos)
        results["llguidance tokenizer ms"] = (time.perf_counter() - t) * 1e3
        for name, (kind, text), path in data["cases"]:
            grammar = (llguidance.LLMatcher.grammar_from_json_schema(text) if kind == "json"
                       else llguidance.LLMatcher.grammar_from_lark(text))
            t = time.perf_counter()
            m = llguidance.LLMatcher(tok, grammar, log_level=0)
            compile_s = time.perf_counter() - t
            steps = []
            for _ in range(max(1, data["repeats"] // 5)):
                m.reset()
                for token in path:
                    t = time.perf_counter()
                    m.compute_bitmask()
                    steps.append(time.perf_counter() - t)
                    assert m.consume_token(token), m.get_error()
            s = stats(steps)
            results[f"{name}|llguidance"] = {"compile_ms": compile_s * 1e3, "new_median_ms": s["median_ms"],
                                             "new_max_ms": s["max_ms"], "cached_p50_us": s["p50_us"],
                                             "cached_p99_us": s["p99_us"]}
    except Exception as err:  # a peer that fails is reported, not fatal
        results["llguidance error"] = f"{type(err).__name__}: {err}"[:120]
    try:
        import xgrammar

        info = xgrammar.TokenizerInfo([t if t else b"\xff" for t in data["tokens"]], stop_token_ids=[eos])
        compiler = xgrammar.GrammarCompiler(info)
        for name, _, path in data["cases"]:
            ebnf = data["xgrammar"][name]
            t = time.perf_counter()
            compiled = compiler.compile_builtin_json_grammar() if ebnf == "json" else compiler.compile_grammar(ebnf)
            compile_s = time.perf_counter() - t
            matcher = xgrammar.GrammarMatcher(compiled)
            bitmask = xgrammar.allocate_token_bitmask(1, info.vocab_size)
            steps = []
            for token in path:
                t = time.perf_counter()
                matcher.fill_next_token_bitmask(bitmask)
                steps.append(time.perf_counter() - t)
                assert matcher.accept_token(token)
            s = stats(steps)
            results[f"{name}|XGrammar"] = {"compile_ms": compile_s * 1e3, "new_median_ms": s["median_ms"],
                                           "new_max_ms": s["max_ms"], "cached_p50_us": s["p50_us"],
                                           "cached_p99_us": s["p99_us"]}
    except Exception as err:
        results["XGrammar error"] = f"{type(err).__name__}: {err}"[:120]
    return results


# ------------------------------------------------------------------------------------------ driver


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["smollm2", "gemma3-270m"])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--peers", help="python of a venv with llguidance (and XGrammar) installed")
    parser.add_argument("--peer-input", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.peer_input:
        with open(args.peer_input, "rb") as f:
            print(json.dumps(peers(pickle.load(f))))
        return 0

    from lmlang.masks import Vocabulary
    from lmlang.masks import grammar as engine
    from lmlang.models import llama

    for name in args.models:
        model = llama.load(name)
        vocab = Vocabulary(model.token_bytes, model.special_tokens, model.eog_tokens, str(model.path))
        t = time.perf_counter()
        engine.tokenizer(vocab)
        tokenizer_ms = (time.perf_counter() - t) * 1e3
        rows, paths = [], []
        for case, where, value, peer_grammar, _ in CASES:
            path = model.tokenize(value)
            paths.append((case, peer_grammar, path))
            rows.append((case, "lmlang", lmlang_case(vocab, where, path, args.repeats)))
        peer = {}
        if args.peers:
            data = {"tokens": model.token_bytes, "eos": min(model.eog_tokens), "special": sorted(model.special_tokens),
                    "cases": paths, "xgrammar": {c[0]: c[4] for c in CASES}, "repeats": args.repeats}
            with tempfile.NamedTemporaryFile(suffix=".pkl") as f:
                pickle.dump(data, f)
                f.flush()
                done = subprocess.run([args.peers, __file__, "--peer-input", f.name], capture_output=True, text=True)
            if done.returncode != 0:
                print(f"peers failed: {done.stderr[-400:]}", file=sys.stderr)
            else:
                peer = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"\n### {name}: {vocab.size} tokens (llguidance tokenizer from the vocabulary, once per model: "
              f"{tokenizer_ms:.0f} ms)")
        for key in ("llguidance error", "XGrammar error"):
            if key in peer:
                print(f"{key}: {peer[key]}")
        print("| grammar | engine | compile ms | new state ms (median / max) | cached step p50 µs | p99 µs | steps |")
        print("|---|---|---|---|---|---|---|")
        for case, engine_name, r in rows:
            for label, res in [(engine_name, r)] + [(p, peer[f"{case}|{p}"]) for p in ("llguidance", "XGrammar")
                                                    if f"{case}|{p}" in peer]:
                print(f"| {case} | {label} | {res['compile_ms']:.1f} | {res['new_median_ms']:.2f} / "
                      f"{res['new_max_ms']:.2f} | {res['cached_p50_us']:.1f} | {res['cached_p99_us']:.1f} | "
                      f"{res.get('steps', '')} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
