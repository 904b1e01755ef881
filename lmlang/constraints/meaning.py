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
