"""What each maskable constraint means, written once as a regular expression over the value's text.

The same pattern is compiled into the automaton that masks tokens and into the check ``finish`` runs on the
complete value, so the mask and the check cannot disagree. Decisions (documented in the catalog):

* ``INT``: an optional single leading space (models write " 42" after "Answer:"; LMQL allows it too), then
  ``0`` or an optional minus and digits without leading zeros. ``int()`` converts it.
* ``FLOAT``: the same integer part, then optionally ``.`` and digits; no exponent. ``float()`` converts it.
* ``len(WORDS(V))`` counts ``V.split()``: runs of characters between Python whitespace (``str.isspace``).
* ``len(V)`` counts characters (code points), as Python does.
* Stop phrases: the value ends at the first place where a phrase has been written in full (several phrases
  ending there: the shortest value wins), after the phrase for ``STOPS_AT`` and before it for ``STOPS_BEFORE``;
  every other condition holds for that value. The mask therefore allows a phrase exactly where the value, cut
  there, is complete (``INT(N) and STOPS_BEFORE(N, "\n")`` may end at the newline after a digit, not before
  one). ``STOPS_AT`` keeps the phrase, so when no value the other conditions allow ends with it (``INT(N) and
  STOPS_AT(N, "\n")``) the stop could never happen: that is an error that suggests ``STOPS_BEFORE``.
"""

from __future__ import annotations

import decimal
import json
import math
import re

INT_PATTERN = r" ?(?:0|-?[1-9][0-9]*)"
FLOAT_PATTERN = r" ?-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?"
NOTHING = r"[^\x00-\U0010FFFF]"  # a class with no member: the empty language


def int_range(low: int | None, high: int | None) -> str:
    """The integers in ``[low, high]`` (None: unbounded) written as ``INT`` writes them."""
    parts = []
    if low is None or low < 0:
        magnitude_low = 1 if high is None or high >= -1 else -high
        magnitude_high = None if low is None else -low
        if magnitude_high is None or magnitude_low <= magnitude_high:
            parts.append("-" + _group(_positive_range(magnitude_low, magnitude_high)))
    parts.extend(_whole_numbers(0 if low is None else max(low, 0), high))
    return " ?" + (_group(parts) if parts else NOTHING)


_ANY_FRACTION = r"(?:\.[0-9]+)?"
_NONNEGATIVE = r"(?:0|[1-9][0-9]*)" + _ANY_FRACTION
_MIRRORED = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "=="}


def float_range(op: str, bound: float | int) -> str:
    """The texts ``FLOAT`` writes whose value ``x`` has ``x <op> bound`` (op: < <= > >= ==).

    The bound is read as the decimal its shortest repr spells (0.1 is 1/10, not the binary double), so the
    language compares decimal texts exactly; ``float(text)`` agrees except on texts with more digits than a double
    holds, which the check of the finished value then catches.
    """
    exact = decimal.Decimal(repr(bound) if isinstance(bound, float) else bound)
    # x = -d compares with the bound as d compares, mirrored, with -bound ("-0" is 0, as float() reads it).
    negative, positive = _nonnegative(_MIRRORED[op], -exact), _nonnegative(op, exact)
    parts = (["-" + _group(negative)] if negative else []) + positive
    return " ?" + _group(parts) if parts else NOTHING


def _nonnegative(op: str, bound: decimal.Decimal) -> list[str]:
    """Alternatives matching the unsigned decimal texts ``d`` with ``d <op> bound``."""
    if bound < 0:
        return [_NONNEGATIVE] if op in (">", ">=") else []
    whole, _, fraction = f"{bound:f}".partition(".")
    fraction = fraction.rstrip("0")
    integer = int(whole)
    equal = [whole + (r"\." + fraction + "0*" if fraction else r"(?:\.0+)?")]
    if op == "==":
        return equal
    if op in ("<", "<="):
        smaller = [n + _ANY_FRACTION for n in _whole_numbers(0, integer - 1)]
        if fraction:
            smaller += [whole, whole + r"\." + _group(_fraction_below(fraction))]
        return smaller + (equal if op == "<=" else [])
    larger = [n + _ANY_FRACTION for n in _whole_numbers(integer + 1, None)]
    larger.append(whole + r"\." + _group(_fraction_above(fraction)))
    return larger + (equal if op == ">=" else [])


def _whole_numbers(low: int, high: int | None) -> list[str]:
    """Alternatives matching the numbers from ``low`` (>= 0) to ``high`` (None: unbounded), without a sign."""
    if high is not None and low > high:
        return []
    return (["0"] if low == 0 else []) + _positive_range(max(low, 1), high)


def _fraction_below(digits: str) -> list[str]:
    """Digit strings ``f`` (at least one digit) with 0.f < 0.digits; ``digits`` has no trailing zero."""
    out = [digits[:k] for k in range(1, len(digits))]  # a shorter prefix: the missing digits are smaller
    for k, digit in enumerate(digits):
        if digit != "0":
            out.append(f"{digits[:k]}[0-{int(digit) - 1}][0-9]*")
    return out


def _fraction_above(digits: str) -> list[str]:
    """Digit strings ``f`` with 0.f > 0.digits (``digits`` may be empty); ``digits`` has no trailing zero."""
    out = [f"{digits[:k]}[{int(digit) + 1}-9][0-9]*" for k, digit in enumerate(digits) if digit != "9"]
    out.append(f"{digits}0*[1-9][0-9]*")  # digits, then more that are not all zeros
    return out


def _positive_range(low: int, high: int | None) -> list[str]:
    digits = len(str(low))
    if high is None:
        return _same_length(str(low), "9" * digits) + [f"[1-9][0-9]{{{digits},}}"]
    out = []
    for length in range(digits, len(str(high)) + 1):
        lo, hi = max(low, 10 ** (length - 1)), min(high, 10**length - 1)
        if lo <= hi:
            out.extend(_same_length(str(lo), str(hi)))
    return out


def _same_length(lo: str, hi: str) -> list[str]:
    """Alternatives matching the numbers from ``lo`` to ``hi``, both written with the same number of digits."""
    if lo == hi:
        return [lo]
    if len(lo) == 1:
        return [f"[{lo}-{hi}]"]
    if lo[0] == hi[0]:
        return [lo[0] + _group(_same_length(lo[1:], hi[1:]))]
    rest = len(lo) - 1
    out = [lo[0] + _group(_same_length(lo[1:], "9" * rest))]
    if int(lo[0]) + 1 <= int(hi[0]) - 1:
        out.append(f"[{int(lo[0]) + 1}-{int(hi[0]) - 1}][0-9]{{{rest}}}")
    out.append(hi[0] + _group(_same_length("0" * rest, hi[1:])))
    return out


def _group(alternatives: list[str]) -> str:
    return alternatives[0] if len(alternatives) == 1 else "(?:" + "|".join(alternatives) + ")"


def word_count(low: int, high: int | None) -> str:
    """Texts of ``low`` to ``high`` words (``len(text.split())``)."""
    if high is not None and high < low:
        return NOTHING
    if high == 0:
        return r"\s*"
    more = "" if high is None else str(high - 1)
    if low == 0:
        return rf"\s*(?:\S+(?:\s+\S+){{0,{more}}})?\s*"
    return rf"\s*\S+(?:\s+\S+){{{low - 1},{more}}}\s*"


def char_count(low: int, high: int | None) -> str:
    """Texts of ``low`` to ``high`` characters."""
    if high is not None and high < low:
        return NOTHING
    return f"(?s:.{{{low},{'' if high is None else high}}})"


def contains(text: str) -> str:
    return f"(?s:.*){re.escape(text)}(?s:.*)"


def starts_with(text: str) -> str:
    return f"{re.escape(text)}(?s:.*)"


# ---------------------------------------------------------------------------------------------------- JSON
# JSON(V) is a JSON value whose containers nest at most JSON_DEPTH deep ({"a": [{"b": 1}]} is 3): a regular
# language, so the mask is exact. Each level repeats the one below four times in the pattern, so the depth is
# what keeps the automaton's construction fast (0.2 s at 3, 0.9 s at 4, once per process).
JSON_DEPTH = 3
JSON_LEAD = r"[ \t\n\r]?"
_WS = r"[ \t\n\r]*"
JSON_STRING = r'"(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"'
JSON_NUMBER = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"
_JSON_SCALAR = f"(?:{JSON_STRING}|{JSON_NUMBER}|true|false|null)"
# Keywords of a JSON schema that only annotate, and those json_schema turns into the pattern.
_ANNOTATIONS = {"title", "description", "$schema", "$id", "examples", "default", "$comment"}
_SCHEMA_KEYWORDS = {"type", "enum", "const", "properties", "required", "additionalProperties", "items", "minItems",
                    "maxItems", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"} | _ANNOTATIONS


def json_value(depth: int = JSON_DEPTH) -> str:
    """Any JSON value with containers nested at most ``depth`` deep (no whitespace around it)."""
    if depth == 0:
        return _JSON_SCALAR
    return f"(?:{_JSON_SCALAR}|{_json_object(json_value(depth - 1))}|{_json_array(json_value(depth - 1))})"


def _json_object(member_value: str) -> str:
    member = f"{JSON_STRING}{_WS}:{_WS}{member_value}"
    return rf"\{{{_WS}(?:{member}{_WS}(?:,{_WS}{member}{_WS})*)?\}}"


def _json_array(item: str, low: int = 0, high: int | None = None) -> str:
    if high is not None and high <= 0:
        return rf"\[{_WS}\]"
    more = f"(?:,{_WS}{item}{_WS}){{{max(low - 1, 0)},{'' if high is None else high - 1}}}"
    items = f"{item}{_WS}{more}"
    return rf"\[{_WS}{items if low > 0 else f'(?:{items})?'}\]"


def json_schema(schema: object, where: str = "the schema") -> str:
    """JSON texts valid under a schema using the keywords in _SCHEMA_KEYWORDS (objects: their listed properties,
    in order); any other keyword raises ValueError naming it, since a schema part the mask cannot hold is never
    dropped."""
    if schema is True or schema == {}:
        return json_value()
    if not isinstance(schema, dict):
        raise ValueError(f"{where} must be a JSON schema object, not {schema!r}")
    unknown = sorted(set(schema) - _SCHEMA_KEYWORDS)
    if unknown:
        raise ValueError(f"{where} uses {unknown[0]!r}, which lmlang's JSON constraint does not enforce")
    if "const" in schema:
        return re.escape(json.dumps(schema["const"]))
    if "enum" in schema:
        return _group([re.escape(json.dumps(v)) for v in schema["enum"]])
    kinds = schema.get("type")
    if kinds is None:
        return json_value()
    return _group([_json_type(kind, schema, where) for kind in ([kinds] if isinstance(kinds, str) else kinds)])


def _json_type(kind: str, schema: dict, where: str) -> str:
    if kind == "string":
        return JSON_STRING
    if kind == "boolean":
        return "(?:true|false)"
    if kind == "null":
        return "null"
    if kind == "integer":
        low, high = schema.get("minimum"), schema.get("maximum")
        if "exclusiveMinimum" in schema:
            low = math.floor(schema["exclusiveMinimum"]) + 1
        if "exclusiveMaximum" in schema:
            high = math.ceil(schema["exclusiveMaximum"]) - 1
        low = None if low is None else math.ceil(low)
        high = None if high is None else math.floor(high)
        return int_range(low, high)[2:]  # without INT's optional leading space
    if kind == "number":
        bounds = [(op, schema[key]) for key, op in (("minimum", ">="), ("maximum", "<="), ("exclusiveMinimum", ">"),
                                                    ("exclusiveMaximum", "<")) if key in schema]
        if not bounds:
            return JSON_NUMBER
        if len(bounds) > 1:
            raise ValueError(f"{where} bounds a number on both sides, which lmlang's JSON constraint does not "
                             "enforce yet: keep one bound, or use \"integer\"")
        # A bounded number is written without an exponent, so the bound is an exact comparison of decimals.
        return float_range(*bounds[0])[2:]
    if kind == "array":
        item = json_schema(schema.get("items", True), f"{where}'s items")
        return _json_array(item, int(schema.get("minItems", 0)), schema.get("maxItems"))
    if kind == "object":
        return _json_properties(schema, where)
    raise ValueError(f"{where} has the type {kind!r}, which is not a JSON type")


def _json_properties(schema: dict, where: str) -> str:
    properties = schema.get("properties") or {}
    required = set(schema.get("required", []))
    missing = sorted(required - set(properties))
    if missing:
        raise ValueError(f"{where} requires {missing[0]!r} without describing it under \"properties\"")
    if not properties:
        return _json_object(json_value(JSON_DEPTH - 1))
    members = [(f'{re.escape(json.dumps(name))}{_WS}:{_WS}{json_schema(sub, f"{where}.{name}")}{_WS}', name in required)
               for name, sub in properties.items()]
    # Only the listed properties, in the schema's order: a subset of what the schema allows (extra properties
    # and other orders are valid too), so every value written is valid. `after` is the rest once one has been written (each then
    # follows a comma), `first` the rest while none has.
    after, first = "", ""
    for member, needed in reversed(members):
        later = f",{_WS}{member}"
        first = f"{member}{after}" if needed else f"(?:{member}{after}|{first})"
        after = f"{later}{after}" if needed else f"(?:{later})?{after}"
    return rf"\{{{_WS}{first}\}}"
