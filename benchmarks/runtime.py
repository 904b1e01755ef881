"""Runtime of lmlang's model backend: cold start and greedy decoding speed against plain llama-cpp-python.

Run from the repository root:  python benchmarks/runtime.py [--repeats 3] [--tokens 128]

1. Cold start: wall time of ``lmlang run examples/hello.lmq`` in a fresh process (while the CLI cannot run it,
   a fresh process that loads the model and greedily generates 16 tokens through lmlang's backend).
2. Decoding: a greedy loop of N tokens through lmlang's Sequence API (append one token, logits, argmax) against
   llama-cpp-python's high-level ``Llama.generate`` with greedy sampling, same model, prompt and threads, the two
   interleaved in each repeat; the median of the repeats is reported.
3. Whole query: the same greedy generation as one hole of a query run through the public API (``Query.run``:
   interpreter, prompt prefill, the decoder's token loop with log-probabilities and margins) against
   ``Llama.generate`` producing the same number of tokens, both timed from the unevaluated prompt to the last token.
4. A whole process: ``lmlang run`` of a query writing exactly 200 tokens after the story prompt, from process
   start to exit, against a Python process that loads the same file with llama-cpp-python and generates 200
   greedy tokens after the same prompt; the two alternate, median of the repeats.
5. Constrained against free decoding: the same 128-token hole with and without a constraint that keeps every
   token but a line break allowed (``REGEX(S, r"[^\n]*")``), run through ``Query.run``; tokens per second of each.
6. Extra buffer types: prefill and greedy decoding through lmlang's backend with llama.cpp's weight repacking
   allowed and not (``extra_buffer_types``), the model loaded anew for each, alternating, median of the repeats.
   Not measured with repacking on a CPU where llama.cpp's AMX kernels would run: they crash there.

Plain llama-cpp-python is loaded with the extra-buffer choice lmlang made on the machine, since its own default
crashes on CPUs with AMX.
"""

from __future__ import annotations

import argparse
import itertools
import os
import pathlib
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent  # the repository: its examples, and the CLI's cwd

import numpy

MODELS = ["smollm2", "gemma3-270m"]
PROMPT = "Write a short story about a lighthouse keeper who finds a message in a bottle."
STORY = PROMPT + "\nStory: Once upon a time,"  # a query whose hole goes on for the whole token budget
HELLO = ROOT / "examples" / "hello.lmq"
FALLBACK = (
    "import numpy; from lmlang.models.llama import load\n"
    "m = load({name!r}); s = m.new_sequence(); s.append(m.tokenize('The capital of France is', bos=True))\n"
    "for _ in range(16): s.append([int(numpy.argmax(s.logits()))])\n"
)


def cold_start(name: str, repeats: int) -> tuple[str, float]:
    """What was measured and its median wall time in seconds."""
    command = [sys.executable, "-m", "lmlang.cli", "run", str(HELLO), "--model", name]
    what = f"lmlang run {HELLO.relative_to(ROOT)} --model {name}"
    if not HELLO.exists() or _run(command) is None:
        command = [sys.executable, "-c", FALLBACK.format(name=name)]
        what = f"load({name!r}) + 16 greedy tokens (CLI not runnable)"
    times = [_run(command) for _ in range(repeats)]
    if None in times:
        raise SystemExit(f"cold start failed: {' '.join(command)}")
    return what, statistics.median(times)  # type: ignore[type-var]


def _run(command: list[str]) -> float | None:
    start = time.perf_counter()
    done = subprocess.run(command, check=False, cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    return elapsed if done.returncode == 0 else None


def lmlang_greedy(model: object, prompt: list[int], count: int) -> tuple[float, float, list[int]]:
    """Seconds for `count` greedy tokens after the prompt, seconds of it spent in llama_decode or argmax (the
    rest is the backend's Python overhead), the tokens."""
    import lmlang.models.llama as backend

    decode = backend.llama.llama_decode
    inside = [0.0]

    def timed_decode(ctx: object, batch: object) -> int:
        start = time.perf_counter()
        status = decode(ctx, batch)
        inside[0] += time.perf_counter() - start
        return status

    seq = model.new_sequence()  # type: ignore[attr-defined]
    try:
        seq.append(prompt)
        backend.llama.llama_decode = timed_decode
        out: list[int] = []
        start = time.perf_counter()
        for _ in range(count):
            logits = seq.logits()
            before = time.perf_counter()
            out.append(int(numpy.argmax(logits)))
            inside[0] += time.perf_counter() - before
            seq.append(out[-1:])
        elapsed = time.perf_counter() - start
    finally:
        backend.llama.llama_decode = decode
        seq.release()
    return elapsed, inside[0], out


def reference_greedy(llm: object, prompt: list[int], count: int) -> tuple[float, list[int]]:
    """Seconds for `count` greedy tokens by llama-cpp-python after evaluating the prompt outside the clock."""
    llm.reset()  # type: ignore[attr-defined]
    tokens = llm.generate(prompt, top_k=1, temp=0.0, reset=True)  # type: ignore[attr-defined]
    first = next(tokens)  # the prompt is evaluated here, as lmlang's append(prompt) is outside its clock
    start = time.perf_counter()
    out = [first, *itertools.islice(tokens, count - 1)]
    elapsed = time.perf_counter() - start
    tokens.close()
    # `first` came with the prompt, so count-1 decodes were timed: scale to `count` for a fair per-token rate
    return elapsed * count / (count - 1), out


def decoding(name: str, repeats: int, count: int) -> dict[str, float]:
    from lmlang.models.llama import load, plain_llama

    threads = os.cpu_count() or 1
    model = load(name, n_threads=threads)
    prompt = model.tokenize(PROMPT, bos=True)
    llm = plain_llama(model, n_ctx=4096, n_threads=threads, n_threads_batch=threads)
    ours, inside, theirs = [], [], []
    try:
        lmlang_greedy(model, prompt, 8)  # warm both up
        reference_greedy(llm, prompt, 8)
        for _ in range(repeats):
            elapsed, in_decode, our_tokens = lmlang_greedy(model, prompt, count)
            ours.append(elapsed)
            inside.append(in_decode)
            elapsed, their_tokens = reference_greedy(llm, prompt, count)
            theirs.append(elapsed)
    finally:
        llm.close()
    ours_s, theirs_s = statistics.median(ours), statistics.median(theirs)
    return {
        "lmlang tok/s": count / ours_s,
        "llama-cpp-python tok/s": count / theirs_s,
        "ratio": theirs_s / ours_s,
        "overhead us/token": (ours_s - statistics.median(inside)) / count * 1e6,
        "same tokens": float(our_tokens == their_tokens),
    }


def extra_buffers(name: str, repeats: int, count: int) -> dict[str, dict[str, float]] | str:
    """Prefill and decode tokens/s with llama.cpp's extra buffer types on and off (or why they were not measured)."""
    from lmlang.models import hardware
    from lmlang.models.llama import load, system_info, unload

    evidence = hardware.amx_evidence(system_info(), hardware.cpu_flags())
    if evidence is not None:
        return f"not measured: {evidence}, where extra buffer types crash"
    threads = os.cpu_count() or 1
    timings: dict[bool, dict[str, list[float]]] = {True: {"prefill": [], "decode": []},
                                                   False: {"prefill": [], "decode": []}}
    buffers: dict[bool, str] = {}
    unload(name)
    for _ in range(repeats):
        for enabled in (True, False):
            model = load(name, n_threads=threads, extra_buffer_types=enabled)
            buffers[enabled] = "+".join(model.buffer_types)
            prompt = model.tokenize(STORY * 12, bos=True)[:512]
            seq = model.new_sequence()
            try:
                start = time.perf_counter()
                seq.append(prompt)
                seq.logits()
                timings[enabled]["prefill"].append(len(prompt) / (time.perf_counter() - start))
                start = time.perf_counter()
                for _ in range(count):
                    seq.append([int(numpy.argmax(seq.logits()))])
                timings[enabled]["decode"].append(count / (time.perf_counter() - start))
            finally:
                seq.release()
                unload(name)
    return {("on" if enabled else "off"): {"prefill tok/s": statistics.median(t["prefill"]),
                                           "decode tok/s": statistics.median(t["decode"]),
                                           "buffers": buffers[enabled]}  # type: ignore[dict-item]
            for enabled, t in timings.items()}


def reference_whole(llm: object, prompt: list[int], count: int) -> float:
    """Seconds for llama-cpp-python to evaluate the prompt and generate `count` greedy tokens."""
    llm.reset()  # type: ignore[attr-defined]
    start = time.perf_counter()
    tokens = llm.generate(prompt, top_k=1, temp=0.0, reset=True)  # type: ignore[attr-defined]
    list(itertools.islice(tokens, count))
    elapsed = time.perf_counter() - start
    tokens.close()
    return elapsed


def whole_query(name: str, repeats: int, count: int) -> dict[str, float]:
    import lmlang
    from lmlang.models.llama import load, plain_llama

    threads = os.cpu_count() or 1
    model = load(name, n_threads=threads)
    query = lmlang.compile('"{prompt}[X]"')
    llm = plain_llama(model, n_ctx=4096, n_threads=threads, n_threads_batch=threads)
    ours, theirs, generated = [], [], 0
    try:
        for _ in range(repeats + 1):  # the first round warms both up
            # A fresh cache each round: the prompt must be evaluated, as for the reference.
            lmlang.default_session().close()
            result = query.run(name, decoder_args={"max_tokens": count}, prompt=STORY)
            generated = result.stats.generated_tokens
            ours.append(result.stats.seconds)
            prompt = model.tokenize(STORY, bos=True)
            theirs.append(reference_whole(llm, prompt, generated))
    finally:
        llm.close()
    ours_s, theirs_s = statistics.median(ours[1:]), statistics.median(theirs[1:])
    return {"tokens": generated, "lmlang tok/s": generated / ours_s, "llama-cpp-python tok/s": generated / theirs_s,
            "ratio": theirs_s / ours_s}


PLAIN_PROCESS = (
    "import os, sys, llama_cpp\n"
    "threads = os.cpu_count()\n"
    "llm = llama_cpp.Llama(model_path=sys.argv[1], n_ctx=4096, n_threads=threads, n_threads_batch=threads,\n"
    "                      verbose=False)\n"
    "tokens = llm.generate(llm.tokenize(sys.argv[2].encode()), top_k=1, temp=0.0)\n"
    "out = [next(tokens) for _ in range(int(sys.argv[3]))]\n"
    "print(llm.detokenize(out).decode('utf-8', 'replace'))\n"
)


def whole_process(name: str, repeats: int, count: int) -> dict[str, float]:
    """Median wall seconds of a whole ``lmlang run`` writing ``count`` tokens and of a llama-cpp-python process
    writing as many, from process start to exit."""
    import tempfile

    from lmlang.models import hardware, llama
    from lmlang.models.registry import resolve

    if hardware.amx_evidence(llama.system_info(), hardware.cpu_flags()) is not None:
        return {}  # llama-cpp-python's default loading crashes on this CPU: nothing to compare with
    path = resolve(name)[1]
    with tempfile.TemporaryDirectory() as folder:
        query = pathlib.Path(folder) / "story.lmq"
        escaped = STORY.replace("\n", "\\n")
        query.write_text(f'"{escaped}[S]" where len(TOKENS(S)) == {count}\n', encoding="utf-8")
        ours_command = [sys.executable, "-m", "lmlang.cli", "run", str(query), "--model", name]
        theirs_command = [sys.executable, "-c", PLAIN_PROCESS, str(path), STORY, str(count)]
        ours, theirs = [], []
        for _ in range(repeats + 1):  # the first round reads the files into the page cache
            ours.append(_run(ours_command))
            theirs.append(_run(theirs_command))
    if None in ours or None in theirs:
        raise SystemExit("a whole-process run failed")
    ours_s, theirs_s = statistics.median(ours[1:]), statistics.median(theirs[1:])  # type: ignore[type-var]
    return {"lmlang s": ours_s, "llama-cpp-python s": theirs_s, "ratio": ours_s / theirs_s}


def constrained(name: str, repeats: int, count: int) -> dict[str, float]:
    """Tokens per second of a ``count``-token hole, free and under a constraint that masks every step."""
    import lmlang

    free = lmlang.compile(f'"{{prompt}}[S]" where len(TOKENS(S)) == {count}')
    masked = lmlang.compile(f'"{{prompt}}[S]" where len(TOKENS(S)) == {count} and REGEX(S, r"[^\\n]*")')
    rates: dict[str, list[float]] = {"free": [], "constrained": []}
    for round_ in range(repeats + 1):  # the first round builds the masks and warms the model up
        for label, query in (("free", free), ("constrained", masked)):
            result = query.run(name, prompt=STORY)
            decoding_seconds = result.stats.seconds - result.stats.prefill_seconds
            if round_:
                rates[label].append(result.stats.generated_tokens / decoding_seconds)
    free_rate, masked_rate = statistics.median(rates["free"]), statistics.median(rates["constrained"])
    return {"free tok/s": free_rate, "constrained tok/s": masked_rate, "ratio": masked_rate / free_rate}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--models", nargs="+", default=MODELS)
    parser.add_argument("--only", choices=["buffers", "process", "constrained"], default=None,
                        help="run one part: buffers = extra buffer types on and off; process = a whole 200-token "
                             "run against llama-cpp-python's; constrained = constrained against free decoding")
    args = parser.parse_args()
    if args.only == "buffers":
        print_extra_buffers(args)
        return
    if args.only == "process":
        print_whole_process(args)
        return
    if args.only == "constrained":
        print_constrained(args)
        return
    print(f"threads: {os.cpu_count()}, greedy tokens: {args.tokens}, repeats: {args.repeats} (medians)\n")
    print("| model | cold start | what was timed |")
    print("|---|---|---|")
    for name in args.models:
        what, seconds = cold_start(name, args.repeats)
        print(f"| {name} | {seconds:.2f} s | {what} |")
    print()
    print(
        "| model | lmlang tok/s | llama-cpp-python tok/s | speed ratio lmlang / llama-cpp-python "
        "| backend overhead outside llama_decode and argmax | same tokens |"
    )
    print("|---|---|---|---|---|---|")
    for name in args.models:
        row = decoding(name, args.repeats, args.tokens)
        print(
            f"| {name} | {row['lmlang tok/s']:.1f} | {row['llama-cpp-python tok/s']:.1f} | {row['ratio']:.2f}x "
            f"| {row['overhead us/token']:.0f} µs/token | {'yes' if row['same tokens'] else 'no'} |"
        )
    print()
    print("| model | whole query: generated tokens | lmlang tok/s | llama-cpp-python tok/s | ratio |")
    print("|---|---|---|---|---|")
    for name in args.models:
        row = whole_query(name, args.repeats, args.tokens)
        print(f"| {name} | {row['tokens']} | {row['lmlang tok/s']:.1f} | {row['llama-cpp-python tok/s']:.1f} "
              f"| {row['ratio']:.2f}x |")
    print()
    print_whole_process(args)
    print()
    print_constrained(args)
    print()
    print_extra_buffers(args)


def print_whole_process(args: argparse.Namespace) -> None:
    print("| model | whole `lmlang run`, 200 tokens | llama-cpp-python process, 200 tokens "
          "| lmlang ÷ llama-cpp-python |")
    print("|---|---|---|---|")
    for name in args.models:
        row = whole_process(name, args.repeats, 200)
        if not row:
            print(f"| {name} | not measured: llama-cpp-python's default loading crashes on this CPU (AMX) | | |")
            continue
        print(f"| {name} | {row['lmlang s']:.2f} s | {row['llama-cpp-python s']:.2f} s | {row['ratio']:.3f}x |")


def print_constrained(args: argparse.Namespace) -> None:
    print(f"| model | free decoding tok/s ({args.tokens} tokens) | constrained tok/s | constrained ÷ free |")
    print("|---|---|---|---|")
    for name in args.models:
        row = constrained(name, args.repeats, args.tokens)
        print(f"| {name} | {row['free tok/s']:.1f} | {row['constrained tok/s']:.1f} | {row['ratio']:.3f}x |")


def print_extra_buffers(args: argparse.Namespace) -> None:
    from lmlang.models.llama import system_info

    print(f"llama.cpp: {system_info().strip()}\n")
    print("| model | extra buffer types | weights in | prefill tok/s (512 tokens) | greedy decode tok/s |")
    print("|---|---|---|---|---|")
    for name in args.models:
        rows = extra_buffers(name, args.repeats, args.tokens)
        if isinstance(rows, str):
            print(f"| {name} | on | | {rows} | |")
            continue
        for setting, row in rows.items():
            print(f"| {name} | {setting} | {row['buffers']} | {row['prefill tok/s']:.0f} "
                  f"| {row['decode tok/s']:.1f} |")


if __name__ == "__main__":
    main()
