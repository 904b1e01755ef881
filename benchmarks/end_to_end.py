"""End to end: the same constrained-generation tasks through lmlang, guidance and outlines, in one run.

    python benchmarks/end_to_end.py [--peers PEERS_PYTHON] [--models smollm2 gemma3-270m] [--repeats 3]

``--peers`` is the Python of a separate venv holding the peers (never lmlang dependencies)::

    python3 -m venv peers && peers/bin/pip install llama-cpp-python==0.3.36 guidance==0.3.1 outlines numba jsonschema

The peers' side is ``benchmarks/end_to_end_peers.py``, run in that venv on the same GGUF file with the same thread
count and the same extra-buffer choice as lmlang (llama.cpp's AMX kernels crash: see the README). Each task is timed
as a whole call, prompt evaluation included, warm (one untimed call first), the median of ``--repeats`` calls;
every output is checked here, the same way for every engine, and a table row says how many were valid.

Tasks (as issue 13 lists them): a phone-number regex after a prompt; 128 free greedy tokens; a choice among
`` yes``/`` no``/`` maybe`` on the same prompt each call; a JSON template with 3 holes; a 10-item list with a stop
phrase per item; a JSON-schema object; a classification of 50 different inputs sharing a few-shot prefix; a
10-turn chat.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable

DATA = pathlib.Path(__file__).resolve().parent / "data"
PEERS_SCRIPT = pathlib.Path(__file__).resolve().parent / "end_to_end_peers.py"

PHONE = r"[0-9]{3}-[0-9]{3}-[0-9]{4}"
CHOICES = [" yes", " no", " maybe"]
SENTIMENTS = [" positive", " negative"]
SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer", "minimum": 0, "maximum": 120},
        "hobbies": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
    },
    "required": ["name", "age", "hobbies"],
}
FEW_SHOT = ("Decide whether each word is positive or negative.\n"
            "Word: wonderful\nSentiment: positive\n"
            "Word: disaster\nSentiment: negative\n"
            "Word: cheerful\nSentiment: positive\n"
            "Word: rotten\nSentiment: negative\n")
CHAT_TURNS = ["Hi! Who are you?", "Name a fruit.", "What colour is it?", "Name an animal.", "Where does it live?",
              "Name a country.", "What is its capital?", "Name a number below ten.", "Double it.", "Thanks, bye!"]


def task_spec() -> dict[str, Any]:
    """What every engine is asked to do: prompts, limits and options, shared with the peers' script."""
    words = [json.loads(line)["word"] for line in (DATA / "word_sentiment.jsonl").read_text().splitlines()[:50]]
    return {
        "regex": {"prompt": "Call the front desk of the hotel at this phone number: ", "pattern": PHONE},
        "free": {"prompt": "Write a short story about a lighthouse keeper.\nStory: Once upon a time,", "tokens": 128},
        "choice": {"prompt": "Question: Is the sky blue on a clear day?\nAnswer:", "options": CHOICES},
        "json_template": {"prompt": "A person described as JSON:\n", "max_tokens": 12},
        "list": {"prompt": "A list of ten fruits:\n", "items": 10, "max_tokens": 12},
        "schema": {"prompt": "A person described as JSON:\n", "schema": SCHEMA, "max_tokens": 64},
        "classify": {"prefix": FEW_SHOT, "words": words, "options": SENTIMENTS},
        "chat": {"system": "You are a concise assistant. Answer in a few words.", "turns": CHAT_TURNS,
                 "max_tokens": 16},
    }


# -- validity: one check per task, applied to every engine's output ---------------------------------------------

def valid(task: str, output: Any, spec: dict[str, Any]) -> bool:
    try:
        return CHECKS[task](output, spec[task])
    except (TypeError, ValueError, KeyError, AttributeError):
        return False


def _check_json_template(output: Any, spec: dict[str, Any]) -> bool:
    value = json.loads(output)
    return (set(value) == {"name", "age", "city"} and isinstance(value["name"], str)
            and isinstance(value["age"], int) and isinstance(value["city"], str))


def _check_schema(output: Any, spec: dict[str, Any]) -> bool:
    import jsonschema

    value = json.loads(output) if isinstance(output, str) else output
    return jsonschema.Draft202012Validator(spec["schema"]).is_valid(value)


CHECKS: dict[str, Callable[[Any, dict[str, Any]], bool]] = {
    "regex": lambda out, spec: re.fullmatch(spec["pattern"], out) is not None,
    "free": lambda out, spec: isinstance(out, str) and len(out) > 0,
    "choice": lambda out, spec: out in spec["options"],
    "json_template": _check_json_template,
    "list": lambda out, spec: len(out) == spec["items"] and all(item.strip() and "\n" not in item for item in out),
    "schema": _check_schema,
    "classify": lambda out, spec: len(out) == len(spec["words"]) and all(o in spec["options"] for o in out),
    "chat": lambda out, spec: len(out) == len(spec["turns"]) and all(isinstance(r, str) for r in out),
}


# -- lmlang's side ------------------------------------------------------------------------------------------------

def lmlang_tasks(model: str, spec: dict[str, Any]) -> dict[str, Callable[[], Any]]:
    import lmlang

    s = spec
    regex = lmlang.compile('"{prompt}[PHONE]" where REGEX(PHONE, pattern)')
    free = lmlang.compile('argmax(max_tokens=128)\n"{prompt}[STORY]"')
    choice = lmlang.compile('"{prompt}[ANSWER]" where ANSWER in options')
    template = lmlang.compile(
        'argmax(max_tokens=12)\n'
        '"{prompt}{{\\"name\\": \\"[NAME]\\", \\"age\\": [AGE], \\"city\\": \\"[CITY]\\"}}" '
        'where STOPS_BEFORE(NAME, \'"\') and "\\n" not in NAME and INT(AGE) '
        'and STOPS_BEFORE(CITY, \'"\') and "\\n" not in CITY\n'
        'return "{\\"name\\": \\"" + NAME + "\\", \\"age\\": " + str(AGE) + ", \\"city\\": \\"" + CITY + "\\"}"')
    items = lmlang.compile(
        'argmax(max_tokens=12)\n"{prompt}"\nout = []\nfor i in range(count):\n'
        '    "-[ITEM]" where STOPS_BEFORE(ITEM, "\\n")\n    "\\n"\n    out.append(ITEM)\nreturn out')
    schema = lmlang.compile('argmax(max_tokens=64)\n"{prompt}[INFO]" where JSON(INFO, schema)\nreturn INFO')
    classify = lmlang.compile('"{prefix}Word: {word}\\nSentiment:[LABEL]" where LABEL in options')
    chat = lmlang.compile(
        'argmax(max_tokens=16)\n"{{:system}}{system}"\nreplies = []\nfor turn in turns:\n'
        '    "{{:user}}{turn}"\n    "{{:assistant}}[REPLY]" where STOPS_BEFORE(REPLY, "\\n")\n'
        '    replies.append(REPLY)\nreturn replies')

    return {
        "regex": lambda: regex.run(model, prompt=s["regex"]["prompt"], pattern=s["regex"]["pattern"]).variables["PHONE"],
        "free": lambda: free.run(model, prompt=s["free"]["prompt"]).variables["STORY"],
        "choice": lambda: choice.run(model, prompt=s["choice"]["prompt"],
                                     options=s["choice"]["options"]).variables["ANSWER"],
        "json_template": lambda: template.run(model, prompt=s["json_template"]["prompt"]).return_value,
        "list": lambda: items.run(model, prompt=s["list"]["prompt"], count=s["list"]["items"]).return_value,
        "schema": lambda: schema.run(model, prompt=s["schema"]["prompt"], schema=s["schema"]["schema"]).return_value,
        "classify": lambda: [classify.run(model, prefix=s["classify"]["prefix"], word=word,
                                          options=s["classify"]["options"]).variables["LABEL"]
                             for word in s["classify"]["words"]],
        "chat": lambda: chat.run(model, system=s["chat"]["system"], turns=s["chat"]["turns"]).return_value,
    }


def timed(calls: dict[str, Callable[[], Any]], repeats: int, only: list[str] | None) -> dict[str, Any]:
    """Per task: median seconds of ``repeats`` warm calls and the last output (or the error)."""
    rows: dict[str, Any] = {}
    for task, call in calls.items():
        if only and task not in only:
            continue
        try:
            output = call()  # warm: the model, compiled masks, the engine's caches
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                output = call()
                times.append(time.perf_counter() - start)
            rows[task] = {"seconds": statistics.median(times), "output": output}
        except Exception as exc:  # a peer or lmlang failing a task is a result to print, not a crash
            rows[task] = {"error": f"{type(exc).__name__}: {exc}"[:200]}
    return rows


def peers(python: str, path: str, spec: dict[str, Any], repeats: int, only: list[str] | None,
          extra_buffer_types: bool) -> dict[str, dict[str, Any]]:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump({"model": path, "spec": spec, "repeats": repeats, "only": only, "threads": os.cpu_count() or 1,
                   "extra_buffer_types": extra_buffer_types}, handle)
    try:
        done = subprocess.run([python, str(PEERS_SCRIPT), handle.name], capture_output=True, text=True,
                              timeout=3600)
    finally:
        os.unlink(handle.name)
    if done.returncode != 0:
        raise SystemExit(f"the peers' script failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", default=None, help="python of a venv with guidance and outlines")
    parser.add_argument("--models", nargs="+", default=["smollm2", "gemma3-270m"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", nargs="+", default=None, help="run only these tasks")
    args = parser.parse_args()

    from lmlang.models.llama import load
    from lmlang.models.registry import resolve

    spec = task_spec()
    print(f"threads: {os.cpu_count()}, warm, median of {args.repeats} calls per task\n")
    for name in args.models:
        path = str(resolve(name)[1])
        model = load(name)
        results = {"lmlang": timed(lmlang_tasks(name, spec), args.repeats, args.only)}
        if args.peers:
            results.update(peers(args.peers, path, spec, args.repeats, args.only, model.extra_buffer_types.enabled))
        engines = list(results)
        print(f"### {name}\n")
        print("| task | " + " | ".join(f"{e} ms (valid)" for e in engines) + " | "
              + " | ".join(f"lmlang ÷ {e}" for e in engines[1:]) + " |")
        print("|---" * (1 + 2 * len(engines) - 1) + "|")
        for task in spec:
            if args.only and task not in args.only:
                continue
            cells, ratios = [], []
            for engine in engines:
                row = results[engine].get(task, {"error": "not run"})
                if "error" in row:
                    cells.append(f"error: {row['error']}")
                else:
                    cells.append(f"{row['seconds'] * 1000:.0f} ({'yes' if valid(task, row['output'], spec) else 'NO'})")
            ours = results["lmlang"].get(task, {})
            for engine in engines[1:]:
                theirs = results[engine].get(task, {})
                ratios.append(f"{ours['seconds'] / theirs['seconds']:.2f}" if "seconds" in ours and "seconds" in theirs
                              else "-")
            print(f"| {task} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
        print()
        for engine in engines:
            for task, row in results[engine].items():
                if "output" in row and not valid(task, row["output"], spec):
                    print(f"invalid {engine} {task}: {json.dumps(row['output'])[:160]}", file=sys.stderr)


if __name__ == "__main__":
    main()
