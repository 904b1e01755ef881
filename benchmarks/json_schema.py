"""JSON Schema coverage on a fixed JSONSchemaBench sample (benchmarks/data/jsonschemabench, 100 schemas a subset).

    python benchmarks/json_schema.py [--model smollm2] [--limit N] [--max-tokens 256] [--cpu-budget 300]
                                     [--peers PATH/TO/peers/bin/python] [--strict-false | --compile-only]
                                     [--records FILE [--resume | --report]] [--only SUBSET/FILE,...]

For each schema: compile ``JSON(V, schema)`` (``plan_hole``); on success, generate one value greedily from a short
prompt and validate what comes back with jsonschema, apart from lmlang's own check. Per subset it prints:
*coverage* (compiled and returned a value the validator accepts), *unsupported* (a NotEnforcedError naming a
keyword), *compile errors* (other refusals: invalid or unsatisfiable schemas), *out of tokens* (the value was
still incomplete at ``--max-tokens``), *refused* (lmlang's final check rejected what the mask allowed: the value
is not returned), *failed* (anything else: an unexpected error, a crash, or more than ``--cpu-budget`` CPU seconds
on one schema), and *invalid outputs*: values returned that the validator rejects, which must be 0.
``--strict-false`` compiles with ``strict=False`` (unenforceable keywords checked on the value only);
``--compile-only`` generates nothing (the *compiled* column is then lmlang's compile coverage, as the peers').

Each schema runs in a worker process, so one schema that crashes or hangs is counted (*failed*) and the run goes
on with a new worker. ``--records FILE`` appends one JSON line per schema as it finishes; ``--resume`` skips the
schemas already there, ``--report`` prints the tables from the file alone, ``--only`` runs the named schemas.

``--peers``: the python of a separate venv with llguidance and XGrammar (peers are never lmlang dependencies:
``python -m venv peers && peers/bin/pip install llguidance xgrammar``); the share of the same schemas llguidance
(its default options) and XGrammar compile. They are not run on a model here, so that column is compile coverage,
an upper bound of theirs.
"""

from __future__ import annotations

import argparse
import collections
import json
import lzma
import os
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

SAMPLE = Path(__file__).parent / "data" / "jsonschemabench" / "sample.jsonl.xz"
PROMPT = "A JSON document:\n"
OUTCOMES = ("valid", "unsupported", "compile errors", "out of tokens", "refused", "failed", "invalid outputs")
_MARK = "@@json_schema@@ "  # a worker's result lines; anything else it prints is passed on


def load_sample(limit: int | None) -> list[dict]:
    """The first ``limit`` schemas of each subset, in turns (the first of each subset, then the second...), so that
    a run cut short has the same number of schemas from every subset, to report with ``--limit``."""
    by_subset: dict[str, list[dict]] = collections.defaultdict(list)
    with lzma.open(SAMPLE, "rt", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            if limit is None or len(by_subset[row["subset"]]) < limit:
                by_subset[row["subset"]].append(row)
    turns = max((len(v) for v in by_subset.values()), default=0)
    return [part[i] for i in range(turns) for _, part in sorted(by_subset.items()) if i < len(part)]


# ------------------------------------------------------------------------------------------ workers


def lmlang_worker(model: str, max_tokens: int, strict_false: bool, compile_only: bool):  # -> a function of a row
    import warnings

    import lmlang
    from lmlang.constraints import plan_hole, structured
    from lmlang.errors import ConstraintError, LmlangWarning, NotEnforcedError
    from lmlang.source import Source
    from lmlang.syntax.ast import Expr

    where = "JSON(V, S, strict=False)" if strict_false else "JSON(V, S)"
    query = lmlang.compile(f'"{{PROMPT}}[V]" where {where}', "<json_schema benchmark>")

    def one(row: dict) -> dict:
        schema = row["schema"]
        source = Source("bench.lmq", where)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", LmlangWarning)
                plan_hole("V", [Expr(source.span(0, len(where)), where)], None, {"S": schema}, {})
        except NotEnforcedError as err:
            keyword = err.message.split(" uses ", 1)[-1].split(", which", 1)[0]
            return {"outcome": "unsupported", "keyword": keyword, "detail": err.message[:300]}
        except ConstraintError as err:
            return {"outcome": "compile errors", "detail": err.message[:300]}
        if compile_only:
            return {"outcome": "compiled"}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", LmlangWarning)
                result = query.run(model, PROMPT=PROMPT, S=schema, decoder_args={"max_tokens": max_tokens})
        except ConstraintError as err:
            outcome = "out of tokens" if "still incomplete" in err.message else "refused"
            return {"outcome": outcome, "detail": err.message[:300]}
        value = result.variables["V"]
        problem = structured.validation_problem(schema, value)
        if problem is None:
            return {"outcome": "valid"}
        return {"outcome": "invalid outputs", "detail": problem[:300], "value": json.dumps(value)[:2000]}

    return one


def _without_torch() -> None:
    """XGrammar imports torch and transformers at import time, for its matcher and tokenizer helpers; its grammar
    compiler, all this measures, needs neither. Where they are not installed, empty stand-ins let it import."""
    import importlib.util
    import types

    os.environ.setdefault("TVM_FFI_DISABLE_TORCH_C_DLPACK", "1")

    def stand_in(name: str) -> type:
        def attribute(self: Any, key: str) -> Any:
            if key.startswith("__"):
                raise AttributeError(key)
            return stand_in(key)

        return _StandIn(name, (), {"__init__": lambda self, *a, **k: None, "__getattr__": attribute})

    class _StandIn(type):
        def __getattr__(cls, key: str) -> Any:
            if key.startswith("__"):
                raise AttributeError(key)
            return stand_in(key)

    class _Module(types.ModuleType):
        def __getattr__(self, key: str) -> Any:
            if key.startswith("__"):
                raise AttributeError(key)
            return stand_in(key)

    for name in ("torch", "transformers"):
        if importlib.util.find_spec(name) is None:
            sys.modules[name] = _Module(name)


def peer_worker():  # -> a function of a row; runs in the peers' venv
    import llguidance

    try:
        _without_torch()
        import xgrammar

        compiler = xgrammar.GrammarCompiler(xgrammar.TokenizerInfo([bytes([b]) for b in range(256)]))
    except Exception as err:  # noqa: BLE001 -- a peer that cannot load is reported, not fatal
        compiler, xgrammar_error = None, f"{type(err).__name__}: {err}"[:200]

    def one(row: dict) -> dict:
        out: dict[str, Any] = {}
        try:
            grammar = llguidance.LLMatcher.grammar_from_json_schema(row["schema"])
            failed, messages = llguidance.LLMatcher.validate_grammar_with_warnings(grammar)
            out["llguidance"] = not failed
            if failed:
                out["llguidance error"] = str(messages[:1])[:200]
        except Exception as err:  # noqa: BLE001
            out["llguidance"], out["llguidance error"] = False, f"{type(err).__name__}: {err}"[:200]
        if compiler is None:
            out["XGrammar"], out["XGrammar error"] = False, xgrammar_error
        else:
            try:
                compiler.compile_json_schema(json.dumps(row["schema"]))
                out["XGrammar"] = True
            except Exception as err:  # noqa: BLE001
                out["XGrammar"], out["XGrammar error"] = False, f"{type(err).__name__}: {err}"[:200]
        return out

    return one


def serve(one) -> int:
    """A worker's loop: a row a line on stdin, its result a marked line on stdout."""
    for line in sys.stdin:
        row = json.loads(line)
        try:
            result = one(row)
        except Exception as err:  # noqa: BLE001 -- one schema's failure is its result, not the run's end
            result = {"outcome": "failed", "detail": f"{type(err).__name__}: {err}"[:300]}
        sys.stdout.write(_MARK + json.dumps(result) + "\n")
        sys.stdout.flush()
    return 0


class Worker:
    """A worker process, restarted after a crash or when one row used more than ``budget`` CPU seconds (CPU, not
    wall time: the run shares the machine at idle priority, and waiting for a core is not the schema's fault)."""

    def __init__(self, argv: list[str], budget: float) -> None:
        self.argv, self.budget, self.proc = argv, budget, None

    def _start(self) -> None:
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)

    def _cpu(self) -> float:
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return 0.0

    def run(self, row: dict) -> dict:
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        assert self.proc is not None and self.proc.stdin and self.proc.stdout
        try:
            self.proc.stdin.write(json.dumps(row) + "\n")
            self.proc.stdin.flush()
        except OSError:
            self.stop()
            return {"outcome": "failed", "detail": "the worker died"}
        start, started = self._cpu(), time.monotonic()
        while True:
            ready, _, _ = select.select([self.proc.stdout], [], [], 1.0)
            if ready:
                line = self.proc.stdout.readline()
                if not line:
                    code = self.proc.wait()
                    self.proc = None
                    return {"outcome": "failed", "detail": f"the worker crashed (exit {code})"}
                if line.startswith(_MARK):
                    return json.loads(line[len(_MARK):])
                sys.stderr.write(line)
                continue
            # Without /proc, the budget counts wall time, ten times as much.
            used = self._cpu() - start if Path("/proc").exists() else (time.monotonic() - started) / 10
            if used > self.budget:
                self.stop()
                return {"outcome": "failed", "detail": f"more than {self.budget:.0f} CPU seconds"}

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


# ------------------------------------------------------------------------------------------ tables


def report(rows: list[dict], records: dict[tuple[str, str, str], dict], model: str, where: str,
           max_tokens: int) -> int:
    counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    keywords: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    peer: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    peer_done: collections.Counter = collections.Counter()
    invalid, failed = [], []
    for row in rows:
        subset, file = row["subset"], row["file"]
        found = records.get(("lmlang", subset, file))
        if found is not None:
            c = counts[subset]
            c["schemas"] += 1
            if found["outcome"] != "compiled":  # with --compile-only, the only other outcomes are refusals
                c[found["outcome"]] += 1
            if found["outcome"] not in ("unsupported", "compile errors", "failed"):
                c["compiled"] += 1
            if found["outcome"] == "unsupported":
                keywords[subset][found.get("keyword", "?")] += 1
            if found["outcome"] == "invalid outputs":
                invalid.append((subset, file, found.get("detail", "")))
            if found["outcome"] == "failed":
                failed.append((subset, file, found.get("detail", "")))
        found = records.get(("peers", subset, file))
        if found is not None:
            peer_done[subset] += 1
            for name in ("llguidance", "XGrammar"):
                peer[name][subset] += bool(found.get(name))
    names = [p for p in ("llguidance", "XGrammar") if peer_done]
    print(f"\n{model}, {where}, max {max_tokens} tokens, greedy")
    print("| subset | schemas | coverage | compiled | unsupported | compile errors | out of tokens | refused | failed | "
          "invalid outputs |" + "".join(f" {p} compiles |" for p in names))
    print("|---|---|---|---|---|---|---|---|---|---|" + "---|" * len(names))
    total: collections.Counter = collections.Counter()
    subsets = sorted({r["subset"] for r in rows})
    for subset in subsets + ["all"]:
        c = counts[subset] if subset != "all" else total
        if subset != "all":
            total.update(c)
        n = max(c["schemas"], 1)
        p_n = max(peer_done[subset] if subset != "all" else sum(peer_done.values()), 1)
        print(f"| {subset} | {c['schemas']} | {100 * c['valid'] / n:.0f}% | {c['compiled']} | {c['unsupported']} | "
              f"{c['compile errors']} | {c['out of tokens']} | {c['refused']} | {c['failed']} | "
              f"{c['invalid outputs']} |"
              + "".join(f" {100 * (peer[p][subset] if subset != 'all' else sum(peer[p].values())) / p_n:.0f}% |"
                        for p in names))
    for subset, found in sorted(keywords.items()):
        print(f"unsupported in {subset}: " + ", ".join(f"{k} ({v})" for k, v in found.most_common(5)))
    for subset, file, problem in failed:
        print(f"FAILED {subset}/{file}: {problem}")
    for subset, file, problem in invalid:
        print(f"INVALID {subset}/{file}: {problem}")
    return 1 if invalid else 0


def read_records(path: str | None) -> dict[tuple[str, str, str], dict]:
    found: dict[tuple[str, str, str], dict] = {}
    if path and Path(path).exists():
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    r = json.loads(line)
                    found[(r["engine"], r["subset"], r["file"])] = r
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--limit", type=int, help="schemas per subset, the first in the sample (default: all 100)")
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--strict-false", action="store_true")
    parser.add_argument("--compile-only", action="store_true", help="compile each schema, generate nothing")
    parser.add_argument("--peers", help="python of a venv with llguidance and XGrammar")
    parser.add_argument("--cpu-budget", type=float, default=300.0, help="CPU seconds one schema may take")
    parser.add_argument("--records", help="append one JSON line per schema to this file")
    parser.add_argument("--resume", action="store_true", help="skip the schemas already in --records")
    parser.add_argument("--report", action="store_true", help="print the tables from --records, run nothing")
    parser.add_argument("--only", help="comma-separated SUBSET/FILE names to run")
    parser.add_argument("--worker", choices=("lmlang", "peers"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker == "peers":
        return serve(peer_worker())
    if args.worker == "lmlang":
        return serve(lmlang_worker(args.model, args.max_tokens, args.strict_false, args.compile_only))

    rows = load_sample(args.limit)
    if args.only:
        wanted = set(args.only.split(","))
        rows = [r for r in rows if f"{r['subset']}/{r['file']}" in wanted]
    where = "JSON(V, S, strict=False)" if args.strict_false else "JSON(V, S)"
    records = read_records(args.records) if (args.resume or args.report) else {}
    if args.report:
        return report(rows, records, args.model, where, args.max_tokens)
    out = open(args.records, "a", encoding="utf-8") if args.records else None  # noqa: SIM115

    def run(engine: str, worker: Worker) -> None:
        todo = [r for r in rows if (engine, r["subset"], r["file"]) not in records]
        try:
            for i, row in enumerate(todo):
                result = worker.run({"subset": row["subset"], "file": row["file"], "schema": row["schema"]})
                record = {"engine": engine, "subset": row["subset"], "file": row["file"], **result}
                records[(engine, row["subset"], row["file"])] = record
                if out is not None:
                    out.write(json.dumps(record) + "\n")
                    out.flush()
                shown = result.get("outcome") or " ".join(f"{p}={result.get(p)}" for p in ("llguidance", "XGrammar"))
                print(f"{engine} {i + 1}/{len(todo)} {row['subset']}/{row['file']}: {shown}", file=sys.stderr,
                      flush=True)
        finally:
            worker.stop()

    me = [sys.executable, __file__]
    if args.peers:  # first: seconds, and the comparison is there even if the model run is cut short
        run("peers", Worker([args.peers, __file__, "--worker", "peers"], args.cpu_budget))
    run("lmlang", Worker([*me, "--worker", "lmlang", "--model", args.model, "--max-tokens", str(args.max_tokens)]
                         + (["--strict-false"] if args.strict_false else [])
                         + (["--compile-only"] if args.compile_only else []), args.cpu_budget))
    if out is not None:
        out.close()
    return report(rows, records, args.model, where, args.max_tokens)


if __name__ == "__main__":
    sys.exit(main())
