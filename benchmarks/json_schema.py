"""JSON Schema coverage on a fixed JSONSchemaBench sample (benchmarks/data/jsonschemabench, 100 schemas a subset).

    python benchmarks/json_schema.py [--model smollm2] [--limit N] [--max-tokens 256] [--cpu-budget 300]
                                     [--peers PATH/TO/peers/bin/python] [--strict-false | --compile-only]
                                     [--records FILE [--resume | --report]] [--only SUBSET/FILE,...]
                                     [--whitespace flexible] [--llguidance-options JSON]

For each schema: compile ``JSON(V, schema)`` (``plan_hole``); on success, generate one value greedily from a short
prompt and validate what comes back with jsonschema, apart from lmlang's own check. Per subset it prints:
*coverage* (compiled and returned a value the validator accepts), *unsupported* (a NotEnforcedError naming a
keyword), *compile errors* (other refusals: invalid or unsatisfiable schemas), *out of tokens* (the value was
still incomplete at ``--max-tokens``), *refused* (lmlang's final check rejected what the mask allowed: the value
is not returned), *failed* (anything else: an unexpected error, a crash, or more than ``--cpu-budget`` CPU seconds
on one schema), and *invalid outputs*: values returned that the validator rejects, which must be 0.
``--strict-false`` compiles with ``strict=False`` (unenforceable keywords checked on the value only);
``--whitespace`` sets ``JSON(V, S, whitespace=...)``; ``--compile-only`` generates nothing (the *compiled* column
is then lmlang's compile coverage, as the peers').

Each schema runs in a worker process, so one schema that crashes or hangs is counted (*failed*) and the run goes
on with a new worker. ``--records FILE`` appends one JSON line per schema as it finishes; ``--resume`` skips the
schemas already there, ``--report`` prints the tables from the file alone, ``--only`` runs the named schemas.

``--peers``: the python of a separate venv with llguidance, XGrammar and llama-cpp-python (peers are never lmlang
dependencies: ``python -m venv peers && peers/bin/pip install llguidance xgrammar llama-cpp-python jsonschema``).
First, the share of the schemas llguidance (its default options) and XGrammar compile: compile coverage, an upper
bound of theirs. Then, unless ``--compile-only``, llguidance runs end to end beside lmlang, schema by schema (each
schema through lmlang, then through llguidance, so a run cut short has compared the same schemas): in the peers'
venv, never importing lmlang, on the GGUF file lmlang resolves ``--model`` to (llama-cpp-python, one thread, no
flash attention, lmlang's extra-buffer choice), with llguidance's tokenizer for llama.cpp's vocabulary and its JSON
Schema compiler with its default options (any white space between tokens, ``oneOf`` refused where it cannot show the
branches disjoint). The prompt is the same token for token: ``PROMPT`` as plain text, no chat template, BOS only
where the model adds one (SmolLM2 adds none), no token healing (lmlang heals only a last token ending in a space or
tab). Each step takes the likeliest token llguidance's mask allows; where the mask allows llguidance's end token,
every end-of-generation token of the model is allowed (lmlang's set), and taking one ends the value, as does a state
nothing may extend. At most ``--max-tokens`` tokens of the value; one still incomplete then is *out of tokens*. What
llguidance wrote is parsed and validated in this process with lmlang's jsonschema check, as lmlang's values are.
Plain masking is llguidance's own use (as in llama.cpp's llguidance sampler); lmlang's decoder also gives the mass
of forbidden tokens to ending a complete value, which is part of what lmlang is measured on. A second table puts the
two coverages side by side per subset (records of engine ``llguidance``) and names the subsets where lmlang is
below.
``--llguidance-options JSON`` gives llguidance's end-to-end run other JsonCompileOptions (e.g. lmlang's spacing,
``{"item_separator": ", ", "key_separator": ": ", "whitespace_flexible": false}``); its records then go in a
``--records`` file of their own.
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


def json_where(strict_false: bool, whitespace: str | None) -> str:
    """The where clause each schema runs under."""
    return "JSON(V, S" + (", strict=False" if strict_false else "") + (
        f', whitespace="{whitespace}"' if whitespace else "") + ")"


def lmlang_worker(model: str, max_tokens: int, strict_false: bool, compile_only: bool,
                  whitespace: str | None = None):  # -> a function of a row
    import warnings

    import lmlang
    from lmlang.constraints import plan_hole, structured
    from lmlang.errors import ConstraintError, LmlangWarning, NotEnforcedError
    from lmlang.source import Source
    from lmlang.syntax.ast import Expr

    where = json_where(strict_false, whitespace)
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


def _llguidance_refusal(message: str) -> dict:
    """llguidance's compile error as an outcome: *unsupported* where it names what it does not implement."""
    for lead in ("Unimplemented keys: ", "Unknown format: "):
        if lead in message:
            keyword = message.split(lead, 1)[1].split("\n", 1)[0].strip()
            keyword = keyword if lead.startswith("Unimpl") else f"the format {keyword!r}"
            return {"outcome": "unsupported", "keyword": keyword, "detail": message[:300]}
    if "oneOf constraints are not supported" in message:
        return {"outcome": "unsupported", "keyword": "'oneOf'", "detail": message[:300]}
    return {"outcome": "compile errors", "detail": message[:300]}


def llguidance_worker(model_path: str, max_tokens: int, extra_buffer_types: bool,
                      options: dict | None = None):  # -> a function of a row
    """llguidance end to end, in the peers' venv: its JSON Schema compiler with its default options, its token
    mask on each step of greedy decoding with llama-cpp-python, from the prompt lmlang's worker evaluates.

    The prompt's tokens are lmlang's: BOS where the model adds one, then ``PROMPT`` tokenized as plain text (no
    chat template; lmlang's token healing takes back only a last token ending in a space or tab, which this
    prompt's is not). A step takes the likeliest token the mask allows; the model's end-of-generation tokens
    (all of them, as lmlang's) are allowed where llguidance allows its end token, and taking one ends the value,
    as does a state llguidance says nothing may extend. The token budget is ``max_tokens`` tokens of the value;
    a value still incomplete then is *out of tokens*. What was written goes back to the main process, which
    validates it with the same jsonschema check as lmlang's values."""
    import llama_cpp
    import llguidance
    import llguidance.llamacpp
    import numpy as np

    # The end-to-end peers' loader (beside this script): one thread, no flash attention (lmlang turns it off: it
    # drifts from plain llama.cpp), and lmlang's extra-buffer choice (llama.cpp's default crashes on AMX CPUs).
    from end_to_end_peers import plain_llama

    llm = plain_llama(model_path, 1, extra_buffer_types)
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    n_vocab = llm.n_vocab()
    tokenizer = llguidance.llamacpp.lltokenizer_from_vocab(vocab)
    eos = llama_cpp.llama_vocab_eos(vocab)
    eog = np.array([t for t in range(n_vocab) if llama_cpp.llama_vocab_is_eog(vocab, t)], dtype=np.intp)
    prompt = llm.tokenize(PROMPT.encode("utf-8"), add_bos=True, special=False)
    words = (n_vocab + 31) // 32
    mask = np.zeros(words, dtype=np.int32)

    from importlib.metadata import version

    release = version("llguidance")

    def one(row: dict) -> dict:
        found = {**outcome(row), "version": release}
        return {**found, "options": options} if options else found

    def outcome(row: dict) -> dict:
        try:
            grammar = llguidance.LLMatcher.grammar_from_json_schema(row["schema"], overrides=options)
        except ValueError as err:
            return {"outcome": "compile errors", "detail": str(err)[:300]}
        matcher = llguidance.LLMatcher(tokenizer, grammar, log_level=0)
        if matcher.is_error():
            return _llguidance_refusal(matcher.get_error())
        llm.reset()
        llm.eval(prompt)
        tokens: list[int] = []
        ended = False
        while len(tokens) < max_tokens:
            if matcher.is_stopped():  # nothing may extend the value: it ends without asking the model
                ended = True
                break
            matcher.unsafe_compute_mask_ptr(mask.ctypes.data, mask.nbytes)
            if matcher.is_error():
                return {"outcome": "failed", "detail": matcher.get_error()[:300]}
            allowed = np.unpackbits(mask.view(np.uint8), bitorder="little")[:n_vocab].astype(bool)
            if allowed[eos]:
                allowed[eog] = True
            if llm.n_tokens < len(prompt) + len(tokens):
                llm.eval(tokens[-1:])
            raw = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), shape=(n_vocab,))
            logits = np.where(allowed, raw, -np.inf)
            token = int(np.argmax(logits))
            if not np.isfinite(logits[token]):
                return {"outcome": "failed", "detail": "the mask allows no token"}
            if token in eog:
                ended = True
                break
            if not matcher.consume_token(token):
                return {"outcome": "failed", "detail": f"llguidance refused its own token: {matcher.get_error()}"[:300]}
            tokens.append(token)
        text = tokenizer.decode_bytes(tokens).decode("utf-8", "replace")
        if not ended and not matcher.is_accepting():
            return {"outcome": "out of tokens", "tokens": len(tokens), "detail": text[-300:]}
        return {"outcome": "generated", "tokens": len(tokens), "text": text}

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
    side_by_side(rows, records, subsets)
    return 1 if invalid else 0


def side_by_side(rows: list[dict], records: dict[tuple[str, str, str], dict], subsets: list[str]) -> None:
    """End-to-end coverage of lmlang and llguidance on the schemas both ran, with llguidance's outcomes."""
    both: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    keywords: collections.Counter = collections.Counter()
    options: set[str] = set()
    for row in rows:
        mine = records.get(("lmlang", row["subset"], row["file"]))
        theirs = records.get(("llguidance", row["subset"], row["file"]))
        if mine is None or theirs is None or mine["outcome"] == "compiled":
            continue
        options.add(" ".join(filter(None, ("llguidance", theirs.get("version")))) + " with "
                    + (json.dumps(theirs["options"]) if theirs.get("options") else "its default JSON options"))
        for key in (row["subset"], "all"):
            c = both[key]
            c["schemas"] += 1
            c["lmlang"] += mine["outcome"] == "valid"
            c["llguidance " + theirs["outcome"]] += 1
            c["only lmlang"] += mine["outcome"] == "valid" and theirs["outcome"] != "valid"
            c["only llguidance"] += mine["outcome"] != "valid" and theirs["outcome"] == "valid"
        if theirs["outcome"] == "unsupported":  # llguidance names keys as a JSON list: ["uniqueItems"]
            keywords[theirs.get("keyword", "?").strip("[]").replace('"', "'")] += 1
    if not both:
        return
    print("\nEnd to end, the same schemas, prompt, model, greedy decoding and token budget; "
          + " and ".join(sorted(options)))
    print("| subset | schemas | lmlang coverage | llguidance coverage | valid only with lmlang | valid only with "
          "llguidance | llguidance unsupported | llguidance compile errors | llguidance out of tokens | "
          "llguidance failed | llguidance invalid outputs |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    below = []
    for subset in [s for s in subsets if s in both] + ["all"]:
        c = both[subset]
        n = c["schemas"]
        print(f"| {subset} | {n} | {100 * c['lmlang'] / n:.0f}% | {100 * c['llguidance valid'] / n:.0f}% | "
              f"{c['only lmlang']} | {c['only llguidance']} | {c['llguidance unsupported']} | "
              f"{c['llguidance compile errors']} | {c['llguidance out of tokens']} | {c['llguidance failed']} | "
              f"{c['llguidance invalid outputs']} |")
        if subset != "all" and c["lmlang"] < c["llguidance valid"]:
            below.append(f"{subset} ({c['lmlang']} against {c['llguidance valid']} of {n})")
    if keywords:
        print("llguidance unsupported: " + ", ".join(f"{k} ({v})" for k, v in keywords.most_common(6)))
    print("lmlang below llguidance on: " + ", ".join(below) if below else
          "lmlang at or above llguidance on every subset")


def peer_model(model: str) -> list[str]:
    """The peers' worker's arguments for the GGUF file lmlang runs as ``model``, with lmlang's extra-buffer
    choice (its AMX rule, or LMLANG_EXTRA_BUFFER_TYPES)."""
    from lmlang.models import hardware
    from lmlang.models.llama import system_info
    from lmlang.models.registry import resolve

    extra = hardware.choose(system_info()).enabled
    return ["--model-path", str(resolve(model)[1]), "--extra-buffer-types", str(int(extra))]


def judged(schema: Any, result: dict) -> dict:
    """A peer's finished text, validated as lmlang's values are: parsed, then checked with lmlang's jsonschema
    check (its validator class, format checker, and no reference fetched)."""
    from lmlang.constraints.structured import validation_problem

    text = result.pop("text")
    try:
        value = json.loads(text)
    except ValueError as err:
        return {**result, "outcome": "invalid outputs", "detail": f"not JSON: {err}"[:300], "value": text[:2000]}
    problem = validation_problem(schema, value)
    if problem is None:
        return {**result, "outcome": "valid", "value": text[:300]}
    return {**result, "outcome": "invalid outputs", "detail": problem[:300], "value": text[:2000]}


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
    parser.add_argument("--whitespace", choices=("compact", "none", "flexible"),
                        help="lmlang's JSON(V, S, whitespace=...) (default: lmlang's default, compact)")
    parser.add_argument("--compile-only", action="store_true", help="compile each schema, generate nothing")
    parser.add_argument("--peers", help="python of a venv with llguidance and XGrammar")
    parser.add_argument("--llguidance-options", help="JSON of llguidance's JsonCompileOptions for its end-to-end "
                        "run (default: its defaults); record it in a --records file of its own")
    parser.add_argument("--cpu-budget", type=float, default=300.0, help="CPU seconds one schema may take")
    parser.add_argument("--records", help="append one JSON line per schema to this file")
    parser.add_argument("--resume", action="store_true", help="skip the schemas already in --records")
    parser.add_argument("--report", action="store_true", help="print the tables from --records, run nothing")
    parser.add_argument("--only", help="comma-separated SUBSET/FILE names to run")
    parser.add_argument("--worker", choices=("lmlang", "peers", "llguidance"), help=argparse.SUPPRESS)
    parser.add_argument("--model-path", help=argparse.SUPPRESS)
    parser.add_argument("--extra-buffer-types", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker == "peers":
        return serve(peer_worker())
    if args.worker == "llguidance":
        return serve(llguidance_worker(args.model_path, args.max_tokens, bool(args.extra_buffer_types),
                                       json.loads(args.llguidance_options) if args.llguidance_options else None))
    if args.worker == "lmlang":
        return serve(lmlang_worker(args.model, args.max_tokens, args.strict_false, args.compile_only,
                                   args.whitespace))

    rows = load_sample(args.limit)
    if args.only:
        wanted = set(args.only.split(","))
        rows = [r for r in rows if f"{r['subset']}/{r['file']}" in wanted]
    where = json_where(args.strict_false, args.whitespace)
    records = read_records(args.records) if (args.resume or args.report) else {}
    if args.report:
        return report(rows, records, args.model, where, args.max_tokens)
    out = open(args.records, "a", encoding="utf-8") if args.records else None  # noqa: SIM115

    def run(workers: dict[str, Worker]) -> None:
        """Each row through each engine in turn (so a run cut short has compared the same schemas)."""
        todo = [r for r in rows if any((e, r["subset"], r["file"]) not in records for e in workers)]
        try:
            for i, row in enumerate(todo):
                for engine, worker in workers.items():
                    if (engine, row["subset"], row["file"]) in records:
                        continue
                    result = worker.run({"subset": row["subset"], "file": row["file"], "schema": row["schema"]})
                    if result.get("outcome") == "generated":
                        result = judged(row["schema"], result)
                    record = {"engine": engine, "subset": row["subset"], "file": row["file"], **result}
                    records[(engine, row["subset"], row["file"])] = record
                    if out is not None:
                        out.write(json.dumps(record) + "\n")
                        out.flush()
                    shown = result.get("outcome") or " ".join(f"{p}={result.get(p)}"
                                                              for p in ("llguidance", "XGrammar"))
                    print(f"{engine} {i + 1}/{len(todo)} {row['subset']}/{row['file']}: {shown}", file=sys.stderr,
                          flush=True)
        finally:
            for worker in workers.values():
                worker.stop()

    me = [sys.executable, __file__]
    if args.peers:  # first: seconds, and the comparison is there even if the model run is cut short
        run({"peers": Worker([args.peers, __file__, "--worker", "peers"], args.cpu_budget)})
    workers = {"lmlang": Worker([*me, "--worker", "lmlang", "--model", args.model, "--max-tokens",
                                 str(args.max_tokens)] + (["--strict-false"] if args.strict_false else [])
                                + (["--whitespace", args.whitespace] if args.whitespace else [])
                                + (["--compile-only"] if args.compile_only else []), args.cpu_budget)}
    if args.peers and not args.compile_only:
        workers["llguidance"] = Worker([args.peers, __file__, "--worker", "llguidance", "--max-tokens",
                                        str(args.max_tokens), *peer_model(args.model)]
                                       + (["--llguidance-options", args.llguidance_options]
                                          if args.llguidance_options else []), args.cpu_budget)
    run(workers)
    if out is not None:
        out.close()
    return report(rows, records, args.model, where, args.max_tokens)


if __name__ == "__main__":
    sys.exit(main())
