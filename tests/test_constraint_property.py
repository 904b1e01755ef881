"""Every value lmlang returns satisfies its constraints: seeded ``sample`` runs on both real models, each value
checked against the constraint's own definition, written here independently of lmlang's compiler (Python's
``regex`` full match, set membership, lengths, stop phrases)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
import regex

import lmlang
from lmlang.errors import ConstraintError

INT_TEXT = r" ?(?:0|-?[1-9][0-9]*)"
SHADES = ["red", "reddish", "re", "redwood", "blue", "blu"]
SCHEMA = {"type": "object", "required": ["ok", "n"],
          "properties": {"ok": {"type": "boolean"}, "n": {"type": "integer", "minimum": 0, "maximum": 9}}}


def full(pattern: str) -> Callable[[object], bool]:
    return lambda v: isinstance(v, str) and regex.fullmatch(pattern, v) is not None


def is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def stops_at(phrases: list[str]) -> Callable[[str], bool]:
    """The value ends at the first end of a phrase in it (the phrase kept), or has none."""
    def check(v: str) -> bool:
        ends = [m.end() for p in phrases for m in regex.finditer(regex.escape(p), v, overlapped=True)]
        return not ends or min(ends) == len(v)
    return check


def stops_before(phrases: list[str]) -> Callable[[str], bool]:
    return lambda v: not any(p in v for p in phrases)


@dataclass(frozen=True)
class Case:
    name: str
    prompt: str  # the query text after the decoder clause; its hole is always X
    holds: Callable[[object], bool]
    max_tokens: int = 10


CASES = [
    Case("INT", '"Q: How many legs does a spider have?\\nA:[X]" where INT(X)', is_int),
    Case("bounded INT", '"Q: Pick a number.\\nA:[X]" where INT(X) and X < 50', lambda v: is_int(v) and v < 50),
    Case("INT range", '"Q: Pick a number.\\nA:[X]" where INT(X) and 10 <= X <= 20', lambda v: is_int(v) and 10 <= v <= 20),
    Case("FLOAT", '"Q: What is pi?\\nA:[X]" where FLOAT(X)', lambda v: isinstance(v, float)),
    Case("typed float", '"Q: What is pi?\\nA:[X: float]"', lambda v: isinstance(v, float)),
    Case("JSON schema", '"A JSON answer:[X]" where JSON(X, SCHEMA)', lambda v: isinstance(v, dict)
         and {"ok", "n"} <= set(v) and isinstance(v["ok"], bool) and type(v["n"]) is int and 0 <= v["n"] <= 9,
         max_tokens=40),
    Case("bounded float", '"Q: What is pi?\\nA:[X: float]" where X < 3.1 and X > -2.5',
         lambda v: isinstance(v, float) and -2.5 < v < 3.1),
    Case("date", '"Born on (dd/mm/yyyy):[X]" where REGEX(X, r" [0-9]{2}/[0-9]{2}/[0-9]{4}")',
         full(r" [0-9]{2}/[0-9]{2}/[0-9]{4}")),
    Case("email", '"Email:[X]" where REGEX(X, r" [a-z]{1,8}@[a-z]{1,8}\\.(com|org)")',
         full(r" [a-z]{1,8}@[a-z]{1,8}\.(com|org)"), max_tokens=24),
    Case("unicode alternation", '"A word:[X]" where REGEX(X, r" (café|naïve|über|日本語)( [a-zé]{1,6})?")',
         full(r" (café|naïve|über|日本語)( [a-zé]{1,6})?")),
    Case("set with shared prefixes", '"A colour:[X]" where X in SHADES', lambda v: v in SHADES),
    Case("len(X) < 12", '"A short phrase:[X]" where len(X) < 12', lambda v: len(v) < 12),
    Case("len(WORDS(X)) < 4", '"A title:[X]" where len(WORDS(X)) < 4', lambda v: len(v.split()) < 4),
    Case("STARTS_WITH", '"A sentence:[X]" where STARTS_WITH(X, " The") and len(X) < 30',
         lambda v: v.startswith(" The") and len(v) < 30),
    Case("equality", '"The capital of France is[X]" where X == " Paris"', lambda v: v == " Paris"),
    Case("no newline", '"A list:\\n-[X]" where not "\\n" in X', lambda v: "\n" not in v),
    Case("STOPS_AT list", '"Say hello:[X]" where STOPS_AT(X, [".", "!"])', stops_at([".", "!"])),
    Case("INT or set", '"Q: How many moons has Mars?\\nA:[X]" where (INT(X) or X in [" none", " two"]) and not X == " 0"',
         lambda v: (full(INT_TEXT)(v) or v in [" none", " two"]) and v != " 0"),
    Case("INT stops before newline", '"Q: How many legs has a cat?\\nA:[X]" where INT(X) and STOPS_BEFORE(X, "\\n")', is_int),
    Case("REGEX stops at full stop", '"A sentence:[X]" where REGEX(X, r"[A-Za-z ,]+\\.?") and STOPS_AT(X, ".")',
         lambda v: full(r"[A-Za-z ,]+\.?")(v) and stops_at(["."])(v), max_tokens=16),
    # At least 7 tokens: at least 7 bytes (every token writes one or more), whatever tokenization gives them.
    Case("token minimum", '"Say hi:[X]" where len(TOKENS(X)) > 6', lambda v: len(v.encode()) >= 7),
    Case("not in set, stops before newline",
         '"Yes or no?[X]" where not X in [" yes", " no"] and 0 < len(X) < 8 and STOPS_BEFORE(X, "\\n")',
         lambda v: v not in [" yes", " no"] and 0 < len(v) < 8 and stops_before(["\n"])(v)),
]

SEEDS = (11, 29)
PER_SEED = 2


@pytest.mark.parametrize("model_name", ["smollm2", "gemma3-270m"])
def test_sampled_values_satisfy_their_constraints(model_name: str, request: pytest.FixtureRequest) -> None:
    request.getfixturevalue("smollm2" if model_name == "smollm2" else "gemma")
    violations, errors, values = [], [], 0
    for case in CASES:
        query = lmlang.compile(f"sample(temperature=1.0)\n{case.prompt}\n", f"<{case.name}>")
        for seed in SEEDS:
            args = {"n": PER_SEED, "seed": seed, "max_tokens": case.max_tokens, "temperature": 1.0}
            try:
                results = query.run(model_name, decoder="sample", decoder_args=args, SHADES=SHADES, SCHEMA=SCHEMA)
            except ConstraintError as err:  # a value the constraints could not complete is an error, not a value
                errors.append((case.name, seed, err.message))
                continue
            for result in results:
                value = result.variables["X"]
                values += 1
                if not case.holds(value):
                    violations.append((case.name, seed, value))
    assert not violations, violations
    # The constraints are satisfiable on these prompts: almost every run must return a value.
    assert len(errors) <= len(CASES) * len(SEEDS) // 10, errors
    assert values >= len(CASES) * len(SEEDS) * PER_SEED * 0.9
