"""Characters as UTF-8 bytes: a range of code points becomes a few sequences of byte ranges.

Automata in lmlang read bytes, because model tokens are bytes and a character may be split across two tokens.
A character class (``[a-zé]``, ``\\w``, ``.``) is therefore turned into the byte sequences that encode its
members, each sequence a list of ``(low, high)`` byte ranges.
"""

from __future__ import annotations

import functools
import re

MAX_CODE_POINT = 0x10FFFF
SURROGATES = (0xD800, 0xDFFF)  # not encodable in UTF-8: never part of text

ByteRanges = list[tuple[int, int]]


def byte_sequences(low: int, high: int) -> list[ByteRanges]:
    """The byte-range sequences that encode exactly the code points ``low..high`` (surrogates left out)."""
    out: list[ByteRanges] = []
    for lo, hi in _without_surrogates(low, high):
        _split(lo, hi, out)
    return out


def _without_surrogates(low: int, high: int) -> list[tuple[int, int]]:
    s_lo, s_hi = SURROGATES
    if high < s_lo or low > s_hi:
        return [(low, high)]
    parts = []
    if low < s_lo:
        parts.append((low, s_lo - 1))
    if high > s_hi:
        parts.append((s_hi + 1, high))
    return parts


def _split(lo: int, hi: int, out: list[ByteRanges]) -> None:
    # First cut where the encoded length changes, then where a range stops covering whole blocks of
    # continuation bytes, until low and high differ only in byte ranges that can be listed independently.
    for limit in (0x7F, 0x7FF, 0xFFFF):
        if lo <= limit < hi:
            _split(lo, limit, out)
            _split(limit + 1, hi, out)
            return
    if hi <= 0x7F:
        out.append([(lo, hi)])
        return
    for i in (1, 2, 3):
        block = (1 << (6 * i)) - 1
        if lo & ~block != hi & ~block:
            if lo & block:
                _split(lo, lo | block, out)
                _split((lo | block) + 1, hi, out)
                return
            if hi & block != block:
                _split(lo, (hi & ~block) - 1, out)
                _split(hi & ~block, hi, out)
                return
    a, b = chr(lo).encode(), chr(hi).encode()
    out.append(list(zip(a, b)))


@functools.lru_cache(maxsize=None)
def category_ranges(category: str) -> tuple[tuple[int, int], ...]:
    """Code point ranges of Python's ``\\d``, ``\\w`` or ``\\s`` for ``str`` patterns, found by ``re`` itself."""
    matched = re.compile(rf"\{category}+")
    return tuple((m.start(), m.end() - 1) for m in matched.finditer(_all_characters()))


@functools.lru_cache(maxsize=1)
def _all_characters() -> str:
    # Surrogates replaced by a character no category matches, so offsets stay equal to code points.
    text = "".join(map(chr, range(MAX_CODE_POINT + 1)))
    s_lo, s_hi = SURROGATES
    return text[:s_lo] + "\x00" * (s_hi - s_lo + 1) + text[s_hi + 1 :]


def complement(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The code points not in ``ranges``."""
    out, start = [], 0
    for lo, hi in normalize(ranges):
        if lo > start:
            out.append((start, lo - 1))
        start = hi + 1
    if start <= MAX_CODE_POINT:
        out.append((start, MAX_CODE_POINT))
    return out


def normalize(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, merged, non-overlapping ranges."""
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out
