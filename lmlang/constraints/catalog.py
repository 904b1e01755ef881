"""The constraint functions the ``where`` clause knows: their arity and what they mean.

One table serves the checker (unknown function, wrong arguments), the constraint compiler and the editor
(hover, completion), so the three cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Signature:
    name: str
    min_args: int
    max_args: int
    usage: str
    doc: str
    keywords: tuple[str, ...] = ()  # keyword arguments it takes, beyond the positional ones counted above


CONSTRAINT_FUNCTIONS: dict[str, Signature] = {
    s.name: s
    for s in (
        Signature("INT", 1, 1, "INT(V)", "V is a whole number: an optional leading space, then 0 or an optional minus sign and digits without leading zeros (such as 42, -7, ' 3'); its value is an int."),
        Signature("FLOAT", 1, 1, "FLOAT(V)", "V is a decimal number, such as -3, 0.5 or 12.25 (an optional leading space, no exponent); its value is a float."),
        Signature("REGEX", 2, 2, 'REGEX(V, r"pattern")', "V matches the regular expression in full (Python syntax)."),
        Signature("STOPS_AT", 2, 2, 'STOPS_AT(V, ".")', "V ends at the first occurrence of the phrase (or of any phrase of a list), which is kept: with other conditions, V including the phrase must satisfy them (use STOPS_BEFORE when they cannot)."),
        Signature("STOPS_BEFORE", 2, 2, 'STOPS_BEFORE(V, "\\n")', "V ends just before the first occurrence of the phrase (or any phrase of a list), which is dropped; the model may write the phrase wherever V would then be complete, as after a whole number with INT(V)."),
        Signature("STARTS_WITH", 2, 2, 'STARTS_WITH(V, "prefix")', "V begins with the given text."),
        Signature("TOKENS", 1, 1, "len(TOKENS(V)) < n", "The model tokens of V, for bounding its length in tokens "
                  "(a lower bound holds back the end of the value and its stop phrases)."),
        Signature("WORDS", 1, 1, "len(WORDS(V)) < n", "The whitespace-separated words of V (V.split()), for bounding its length in words."),
        Signature("JSON", 1, 2, "JSON(V[, schema][, strict=False][, whitespace=\"compact\"])", "V is a JSON value, nested to any depth; with a JSON schema (a dict, or its JSON text), a value valid under it ($ref/$defs, anyOf/oneOf/allOf, if/then/else, not, pattern, formats, min/max lengths and bounds, properties, patternProperties, propertyNames, additionalProperties, dependencies, prefixItems, enum, const...), checked again by jsonschema when finished. A keyword the mask cannot enforce is an error, or with strict=False left to that check (with a warning). The model spaces it as it likes (line breaks and indents, bounded); whitespace=\"compact\" writes one line as {\"a\": 1, \"b\": [1, 2]}, whitespace=\"none\" without the spaces. Its value is the parsed JSON.", ("strict", "whitespace")),
        Signature("GRAMMAR", 2, 2, "GRAMMAR(V, source)", "V is a sentence of a context-free grammar: Lark EBNF (a start rule, terminals as regular expressions or strings) or llama.cpp's GBNF (a root ::= rule); nesting to any depth."),
        Signature("len", 1, 1, "len(V) < n", "The length of V in characters (or of TOKENS(V) / WORDS(V))."),
        Signature("set", 1, 1, "V in set([...])", "A set of allowed values, for V in set(...)."),
        Signature("list", 1, 1, "V in list(...)", "A list of allowed values."),
    )
}


# Other spellings LMQL accepts for its constraint functions (its operation registry): the same function.
LMQL_SPELLINGS = {"stops_at": "STOPS_AT", "stops_before": "STOPS_BEFORE"}


def canonical(name: str) -> str:
    """The catalog's name of a constraint function spelled ``name``."""
    return LMQL_SPELLINGS.get(name, name)
