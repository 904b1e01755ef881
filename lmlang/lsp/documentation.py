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


# The cascade's confidence measures (computed by lmlang.multimodel.condition), for hover and completion.
MEASURES: dict[str, Entry] = {
    e.name: e
    for e in (
        Entry(
            "margin",
            "measure",
            "margin(V)",
            "How sure the model was when it began V: the probability of the best first token minus that of the "
            "runner-up (1.0 when the first token was forced). Near 0 means it nearly wrote something else.",
        ),
        Entry(
            "logprob",
            "measure",
            "logprob(V)",
            "The mean log-probability of V's tokens (0 is certain; more negative is less likely).",
        ),
        Entry(
            "consistency",
            "measure",
            "consistency(V, k)",
            "The share of k sampled re-runs of the block (k = 5 by default) that give the same V (1.0: all agree).",
        ),
    )
}

KEYWORD_DOCS: dict[str, str] = {
    "from": 'from "model": the model the query runs on (an alias such as "smollm2" or a .gguf path).',
    "where": "where <condition>: constraints on the holes, enforced as token masks while the model writes.",
    "distribution": "distribution VAR in [values]: score each value for the hole VAR instead of generating it.",
    "cascade": 'cascade "m1", "m2" until <condition>: run the block on each model in turn until the condition holds.',
    "until": "until <condition>: when a cascade stops trying further models.",
    "route": "route <arguments>: with indented `case <label>:` arms; one arm runs, chosen by a classifier "
    "(`by=\"model\"`), by rules or by nearest examples; `case _:` is the fallback.",
    "ensemble": 'ensemble "m1", "m2" vote VAR, samples=k, temperature=t: run the block on each model (k times each) '
    "and keep the run whose VAR most of them give; a tie goes to the best mean log-probability.",
    "vote": "vote VAR: the hole of an ensemble's block whose most frequent value wins.",
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
