"""The peers' side of benchmarks/throughput.py: guidance looping over the same rows, on llama-cpp-python.

    <peers venv>/bin/python benchmarks/throughput_peers.py <input.json>    (written by benchmarks/throughput.py)

Prints one JSON line: per query, the seconds for all rows and each row's values (or the error). The queries are
written the way guidance's documentation writes such prompts: ``select`` for the label, ``gen`` with a stop
string or a regular expression and a token limit for each field.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, Callable

from end_to_end_peers import plain_llama  # beside this script


def guidance_queries(llm: Any) -> dict[str, Callable[[dict[str, Any]], dict[str, str]]]:
    import guidance
    from guidance import gen, select

    base = guidance.models.LlamaCpp(llm, echo=False)

    def classification(row: dict[str, Any]) -> dict[str, str]:
        out = base + f"Review: {row['review']}\nIs this review positive or negative? Answer:" + select(
            [" positive", " negative"], name="LABEL")
        return {"LABEL": out["LABEL"]}

    def extraction(row: dict[str, Any]) -> dict[str, str]:
        out = (base + f"Text: {row['text']}\nName:" + gen("NAME", stop="\n", max_tokens=7) + "\nAge:"
               + gen("AGE", regex="[0-9]+", max_tokens=3) + "\nCity:" + gen("CITY", stop="\n", max_tokens=7))
        return {"NAME": out["NAME"], "AGE": out["AGE"], "CITY": out["CITY"]}

    return {"classification": classification, "extraction": extraction}


def main() -> None:
    with open(sys.argv[1]) as handle:
        job = json.load(handle)
    llm = plain_llama(job["model"], job["threads"], job["extra_buffer_types"])
    results: dict[str, Any] = {}
    try:
        queries = guidance_queries(llm)
    except Exception as exc:  # guidance missing or broken: every query gets the error
        print(json.dumps({name: {"error": f"{type(exc).__name__}: {exc}"[:200]} for name in job["rows"]}))
        return
    for name, rows in job["rows"].items():
        query = queries[name]
        try:
            query(rows[0])  # warm up, as the lmlang side does
            started = time.perf_counter()
            values = [query(row) for row in rows]
            results[name] = {"seconds": time.perf_counter() - started, "values": values}
        except Exception as exc:
            results[name] = {"error": f"{type(exc).__name__}: {exc}"[:200]}
    print(json.dumps(results))


if __name__ == "__main__":
    main()
