"""JSON Schema coverage on a fixed JSONSchemaBench sample (benchmarks/data/jsonschemabench, 100 schemas a subset).

    /work/venv/bin/python benchmarks/json_schema.py [--model smollm2] [--limit N] [--max-tokens 256]
                                                    [--peers /work/benchvenv/bin/python]

For each schema: compile ``JSON(V, schema)`` (``plan_hole``); on success, generate one value greedily from a short
prompt and validate what comes back with jsonschema, apart from lmlang's own check. Per subset it prints:
*coverage* (compiled and returned a value the validator accepts), *unsupported* (a NotEnforcedError naming a
keyword), *compile errors* (other refusals: invalid or unsatisfiable schemas), *out of tokens* (the value was
still incomplete at ``--max-tokens``), *refused* (lmlang's final check rejected what the mask allowed: the value
is not returned), and *invalid outputs*: values returned that the validator rejects, which must be 0.
``--strict-false`` compiles with ``strict=False`` (unenforceable keywords checked on the value only).

``--peers``: in a separate venv's python (peers are never lmlang dependencies), the share of the same schemas
llguidance (default options) and XGrammar compile; they are not run on a model here, so that column is compile
coverage, an upper bound of theirs.
"""

from __future__ import annotations

import argparse
import collections
import json
import lzma
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

SAMPLE = Path(__file__).parent / "data" / "jsonschemabench" / "sample.jsonl.xz"
PROMPT = "A JSON document:\n"


def load_sample(limit: int | None) -> list[dict]:
    rows, seen = [], collections.Counter()
    with lzma.open(SAMPLE, "rt", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            if limit is None or seen[row["subset"]] < limit:
                seen[row["subset"]] += 1
                rows.append(row)
    return rows


def peers(rows: list[dict]) -> dict:
    out: dict = {}
    try:
        import llguidance

        ok = collections.Counter()
        for row in rows:
            grammar = llguidance.LLMatcher.grammar_from_json_schema(row["schema"])
            failed, _ = llguidance.LLMatcher.validate_grammar_with_warnings(grammar)
            ok[row["subset"]] += not failed
        out["llguidance"] = dict(ok)
    except Exception as err:
        out["llguidance error"] = f"{type(err).__name__}: {err}"[:120]
    try:
        import xgrammar

        ok = collections.Counter()
        info = xgrammar.TokenizerInfo([bytes([b]) for b in range(256)])
        compiler = xgrammar.GrammarCompiler(info)
        for row in rows:
            try:
                compiler.compile_json_schema(json.dumps(row["schema"]))
                ok[row["subset"]] += 1
            except Exception:
                pass
        out["XGrammar"] = dict(ok)
    except Exception as err:
        out["XGrammar error"] = f"{type(err).__name__}: {err}"[:120]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--limit", type=int, help="schemas per subset (default: all 100)")
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--strict-false", action="store_true")
    parser.add_argument("--peers", help="python of a venv with llguidance (and XGrammar)")
    parser.add_argument("--peer-input", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.peer_input:
        with open(args.peer_input, encoding="utf-8") as f:
            print(json.dumps(peers(json.load(f))))
        return 0

    import lmlang
    from lmlang.constraints import plan_hole, structured
    from lmlang.errors import ConstraintError, LmlangWarning, NotEnforcedError
    from lmlang.source import Source
    from lmlang.syntax.ast import Expr

    rows = load_sample(args.limit)
    where = "JSON(V, S, strict=False)" if args.strict_false else "JSON(V, S)"
    query = lmlang.compile(f'"{{PROMPT}}[V]" where {where}', "<json_schema benchmark>")
    counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    keywords: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    invalid: list[tuple[str, str, str]] = []
    for i, row in enumerate(rows):
        subset, schema = row["subset"], row["schema"]
        c = counts[subset]
        c["schemas"] += 1
        source = Source("bench.lmq", where)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", LmlangWarning)
                plan_hole("V", [Expr(source.span(0, len(where)), where)], None, {"S": schema}, {})
        except NotEnforcedError as err:
            c["unsupported"] += 1
            keywords[subset][err.message.split(" uses ", 1)[-1].split(", which", 1)[0]] += 1
            continue
        except ConstraintError:
            c["compile errors"] += 1
            continue
        c["compiled"] += 1
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", LmlangWarning)
                result = query.run(args.model, PROMPT=PROMPT, S=schema, decoder_args={"max_tokens": args.max_tokens})
        except ConstraintError as err:
            c["out of tokens" if "still incomplete" in err.message else "refused"] += 1
            continue
        value = result.variables["V"]
        problem = structured.validation_problem(schema, value)
        if problem is None:
            c["valid"] += 1
        else:
            c["invalid outputs"] += 1
            invalid.append((subset, row["file"], problem))
        print(f"{i + 1}/{len(rows)} {subset}/{row['file']}: {'valid' if problem is None else 'INVALID'}",
              file=sys.stderr)

    peer: dict = {}
    if args.peers:
        with tempfile.NamedTemporaryFile("w", suffix=".json", encoding="utf-8") as f:
            json.dump(rows, f)
            f.flush()
            done = subprocess.run([args.peers, __file__, "--peer-input", f.name], capture_output=True, text=True)
        if done.returncode == 0:
            peer = json.loads(done.stdout.strip().splitlines()[-1])
        else:
            print(f"peers failed: {done.stderr[-400:]}", file=sys.stderr)
    for key in ("llguidance error", "XGrammar error"):
        if key in peer:
            print(f"{key}: {peer[key]}")

    names = [p for p in ("llguidance", "XGrammar") if p in peer]
    print(f"\n{args.model}, {where}, max {args.max_tokens} tokens, greedy")
    print("| subset | schemas | coverage | compiled | unsupported | compile errors | out of tokens | refused | "
          "invalid outputs |" + "".join(f" {p} compiles |" for p in names))
    print("|---|---|---|---|---|---|---|---|---|" + "---|" * len(names))
    total: collections.Counter = collections.Counter()
    for subset in sorted(counts):
        c = counts[subset]
        total.update(c)
        n = c["schemas"]
        print(f"| {subset} | {n} | {100 * c['valid'] / n:.0f}% | {c['compiled']} | {c['unsupported']} | "
              f"{c['compile errors']} | {c['out of tokens']} | {c['refused']} | {c['invalid outputs']} |"
              + "".join(f" {100 * peer[p].get(subset, 0) / n:.0f}% |" for p in names))
    n = max(total["schemas"], 1)
    print(f"| all | {total['schemas']} | {100 * total['valid'] / n:.0f}% | {total['compiled']} | "
          f"{total['unsupported']} | {total['compile errors']} | {total['out of tokens']} | {total['refused']} | "
          f"{total['invalid outputs']} |" + "".join(f" {100 * sum(peer[p].values()) / n:.0f}% |" for p in names))
    for subset, found in sorted(keywords.items()):
        print(f"unsupported in {subset}: " + ", ".join(f"{k} ({v})" for k, v in found.most_common(5)))
    for subset, file, problem in invalid:
        print(f"INVALID {subset}/{file}: {problem}")
    return 1 if invalid else 0


if __name__ == "__main__":
    sys.exit(main())
