"""What the editor shows about a name: constraint functions, decoders, confidence measures and keywords.

Constraints and decoders come from their catalogs, so hover and completion say what the checker enforces; the
confidence measures and the keywords have their short tables here.
"""

from __future__ import annotations

from dataclasses import dataclass

from lmlang.constraints.catalog import CONSTRAINT_FUNCTIONS
from lmlang.decoding.catalog import COMMON_ARGS, DECODERS


@dataclass(frozen=True)
class Entry:
    """One documented name: its category (for the completion kind), how it is written, what it means."""

    name: str
    category: str  # "constraint" | "decoder" | "measure" | "keyword"
    usage: str
    doc: str

    def markdown(self) -> str:
        return f"```lmlang\n{self.usage}\n```\n\n*{self.category}*: {self.doc}"


MEASURES: dict[str, Entry] = {
    e.name: e
    for e in (
        Entry(
            "margin",
            "measure",
            "margin(V)",
            "How decided the model was about V: the smallest gap, over V's tokens, between the log-probabilities "
            "of the chosen token and the runner-up. Near 0 means it nearly wrote something else.",
        ),
        Entry(
            "logprob",
            "measure",
            "logprob(V)",
            "The total log-probability the model gave to the tokens of V (0 is certain; more negative is less likely).",
        ),
        Entry(
            "consistency",
            "measure",
            "consistency(V, k)",
            "The share of k independent samples of V that agree with the value chosen (1.0: all k agree).",
        ),
    )
}

KEYWORD_DOCS: dict[str, str] = {
    "from": 'from "model": the model the query runs on (an alias such as "smollm2" or a .gguf path).',
    "where": "where <condition>: constraints on the holes, enforced as token masks while the model writes.",
    "distribution": "distribution VAR in [values]: score each value for the hole VAR instead of generating it.",
    "cascade": 'cascade "m1", "m2" until <condition>: run the block on each model in turn until the condition holds.',
    "until": "until <condition>: when a cascade stops trying further models.",
    "route": "route ...: pick which model runs each arm of the block.",
}


def _decoder_entry(name: str) -> Entry:
    spec = DECODERS[name]
    args = ", ".join(f"{a}=…" for a in spec.args)
    common = ", ".join(COMMON_ARGS)
    return Entry(name, "decoder", f"{name}({args})" if args else name, f"{spec.doc} Also accepts: {common}.")


def _entries() -> dict[str, Entry]:
    entries = {s.name: Entry(s.name, "constraint", s.usage, s.doc) for s in CONSTRAINT_FUNCTIONS.values()}
    entries.update({name: _decoder_entry(name) for name in DECODERS})
    entries.update(MEASURES)
    entries.update({k: Entry(k, "keyword", k, doc) for k, doc in KEYWORD_DOCS.items()})
    return entries


ENTRIES: dict[str, Entry] = _entries()


def lookup(name: str) -> Entry | None:
    """The documentation of ``name``, if it is a constraint function, decoder, measure or documented keyword."""
    return ENTRIES.get(name)
