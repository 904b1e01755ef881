"""The peers' side of benchmarks/end_to_end.py: the same tasks through guidance and outlines on llama-cpp-python.

    <peers venv>/bin/python benchmarks/end_to_end_peers.py <input.json>    (written by benchmarks/end_to_end.py)

Prints one JSON line: per engine, per task, the median seconds and the last output (or the error). Each task is
written the way each library's documentation writes it; outputs are checked by the driver, not here.
"""

from __future__ import annotations

import json
import sys
from typing import Any, Callable

from end_to_end import timed  # the driver's module, beside this script; it imports lmlang only when it runs


def plain_llama(path: str, threads: int, extra_buffer_types: bool) -> Any:
    """llama-cpp-python's Llama with lmlang's extra-buffer choice (its own default crashes on AMX CPUs)."""
    import llama_cpp
    import llama_cpp.llama_cpp as capi

    defaults = capi.llama_model_default_params

    def params() -> Any:
        chosen = defaults()
        chosen.use_extra_bufts = extra_buffer_types
        return chosen

    capi.llama_model_default_params = params
    try:
        return llama_cpp.Llama(model_path=path, n_ctx=4096, n_threads=threads, n_threads_batch=threads,
                               logits_all=False, verbose=False, flash_attn=False)
    finally:
        capi.llama_model_default_params = defaults


def guidance_tasks(llm: Any, spec: dict[str, Any]) -> dict[str, Callable[[], Any]]:
    import guidance
    from guidance import assistant, gen, select, system, user

    base = guidance.models.LlamaCpp(llm, echo=False)
    s = spec

    def regex() -> Any:
        return (base + s["regex"]["prompt"] + gen("v", regex=s["regex"]["pattern"]))["v"]

    def free() -> Any:
        return (base + s["free"]["prompt"] + gen("v", max_tokens=s["free"]["tokens"], temperature=0.0))["v"]

    def choice() -> Any:
        return (base + s["choice"]["prompt"] + select(s["choice"]["options"], name="v"))["v"]

    def template() -> Any:
        n = s["json_template"]["max_tokens"]
        out = (base + s["json_template"]["prompt"] + '{"name": "' + gen("name", stop='"', max_tokens=n)
               + '", "age": ' + gen("age", regex="[0-9]+", max_tokens=n) + ', "city": "'
               + gen("city", stop='"', max_tokens=n) + '"}')
        return '{"name": "' + out["name"] + '", "age": ' + out["age"] + ', "city": "' + out["city"] + '"}'

    def items() -> Any:
        lm = base + s["list"]["prompt"]
        out = []
        for i in range(s["list"]["items"]):
            lm += "-" + gen(f"item{i}", stop="\n", max_tokens=s["list"]["max_tokens"]) + "\n"
            out.append(lm[f"item{i}"])
        return out

    def schema() -> Any:
        out = base + s["schema"]["prompt"] + guidance.json(name="v", schema=s["schema"]["schema"],
                                                           max_tokens=s["schema"]["max_tokens"])
        return out["v"]

    def classify() -> Any:
        c = s["classify"]
        return [(base + c["prefix"] + f"Word: {word}\nSentiment:" + select(c["options"], name="v"))["v"]
                for word in c["words"]]

    def chat() -> Any:
        c = s["chat"]
        lm = base
        with system():
            lm += c["system"]
        replies = []
        for i, turn in enumerate(c["turns"]):
            with user():
                lm += turn
            with assistant():
                lm += gen(f"r{i}", stop="\n", max_tokens=c["max_tokens"])
            replies.append(lm[f"r{i}"])
        return replies

    return {"regex": regex, "free": free, "choice": choice, "json_template": template, "list": items,
            "schema": schema, "classify": classify, "chat": chat}


def outlines_tasks(llm: Any, spec: dict[str, Any]) -> dict[str, Callable[[], Any]]:
    import outlines
    from outlines.types import JsonSchema, Regex

    model = outlines.from_llamacpp(llm, chat_mode=False)
    s = spec
    greedy = {"temperature": 0.0, "top_k": 1}

    def regex() -> Any:
        return model(s["regex"]["prompt"], Regex(s["regex"]["pattern"]), max_tokens=16, **greedy)

    def free() -> Any:
        return model(s["free"]["prompt"], max_tokens=s["free"]["tokens"], **greedy)

    def choice() -> Any:
        from typing import Literal

        return model(s["choice"]["prompt"], Literal[tuple(s["choice"]["options"])], max_tokens=4, **greedy)

    def template() -> Any:
        n = s["json_template"]["max_tokens"]
        prompt = s["json_template"]["prompt"] + '{"name": "'
        name = model(prompt, Regex('[^"\\n]*'), max_tokens=n, **greedy)
        prompt += name + '", "age": '
        age = model(prompt, Regex("(0|[1-9][0-9]*)"), max_tokens=n, **greedy)
        prompt += age + ', "city": "'
        city = model(prompt, Regex('[^"\\n]*'), max_tokens=n, **greedy)
        return '{"name": "' + name + '", "age": ' + age + ', "city": "' + city + '"}'

    def items() -> Any:
        prompt = s["list"]["prompt"]
        out = []
        for _ in range(s["list"]["items"]):
            prompt += "-"
            item = model(prompt, Regex("[^\\n]+"), max_tokens=s["list"]["max_tokens"], **greedy)
            prompt += item + "\n"
            out.append(item)
        return out

    def schema() -> Any:
        return model(s["schema"]["prompt"], JsonSchema(json.dumps(s["schema"]["schema"])),
                     max_tokens=s["schema"]["max_tokens"], **greedy)

    def classify() -> Any:
        from typing import Literal

        c = s["classify"]
        kind = Literal[tuple(c["options"])]
        return [model(c["prefix"] + f"Word: {word}\nSentiment:", kind, max_tokens=4, **greedy)
                for word in c["words"]]

    def chat() -> Any:
        c = s["chat"]
        messages = [{"role": "system", "content": c["system"]}]
        replies = []
        for turn in c["turns"]:
            messages.append({"role": "user", "content": turn})
            reply = llm.create_chat_completion(messages=messages, max_tokens=c["max_tokens"], temperature=0.0,
                                               top_k=1, stop=["\n"])["choices"][0]["message"]["content"] or ""
            messages.append({"role": "assistant", "content": reply})
            replies.append(reply)
        return replies

    return {"regex": regex, "free": free, "choice": choice, "json_template": template, "list": items,
            "schema": schema, "classify": classify, "chat": chat}


def main() -> None:
    with open(sys.argv[1]) as handle:
        job = json.load(handle)
    llm = plain_llama(job["model"], job["threads"], job["extra_buffer_types"])
    results = {}
    for engine, tasks in (("guidance", guidance_tasks), ("outlines", outlines_tasks)):
        try:
            results[engine] = timed(tasks(llm, job["spec"]), job["repeats"], job["only"])
        except Exception as exc:  # an engine that cannot start still gets its row
            results[engine] = {task: {"error": f"{type(exc).__name__}: {exc}"[:200]} for task in job["spec"]}
    print(json.dumps(results, default=str))


if __name__ == "__main__":
    main()
