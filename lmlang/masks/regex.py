"""Python regular expressions as byte automata.

The pattern is read by Python's own parser (``re._parser``), so its syntax is exactly Python's; its tree is then
built into a nondeterministic automaton over UTF-8 bytes (Thompson's construction), which
:mod:`lmlang.masks.automaton` makes deterministic. A full match is meant: the whole value matches the pattern.

Features whose meaning is not a regular language over the text (lookarounds, backreferences, conditionals,
atomic groups, possessive quantifiers, word boundaries, anchors inside the pattern) are refused with a
:class:`PatternError` that names the feature and where it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

try:  # Python 3.11+
    from re import _constants as sre, _parser as sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - Python 3.10
    import sre_constants as sre  # type: ignore[no-redef]
    import sre_parse  # type: ignore[no-redef]

from lmlang.masks.utf8 import MAX_CODE_POINT, byte_sequences, category_ranges, complement, normalize

# Repetition counts are unrolled into copies; beyond this the automaton would be too big to be useful.
MAX_REPEAT_COPIES = 10_000


class PatternError(Exception):
    """A pattern lmlang cannot turn into an automaton. ``offset`` is where in the pattern (or None)."""

    def __init__(self, message: str, offset: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


@dataclass
class NFA:
    """States with byte-range edges ``(low, high, target)`` and empty edges; one start, one final state."""

    edges: list[list[tuple[int, int, int]]] = field(default_factory=list)
    empty: list[list[int]] = field(default_factory=list)
    start: int = 0
    final: int = 0

    def state(self) -> int:
        self.edges.append([])
        self.empty.append([])
        return len(self.edges) - 1


Fragment = tuple[int, int]  # (entry state, exit state)


def regex_nfa(pattern: str) -> NFA:
    """The byte automaton of ``pattern`` (Python syntax), matching the whole value."""
    try:
        parsed = sre_parse.parse(pattern, 0)
    except re.error as e:
        raise PatternError(f"invalid regular expression: {e.msg}", e.pos) from None
    builder = _Builder(pattern, parsed.state.flags)
    nfa = builder.nfa
    entry, exit_ = builder.sequence(parsed.data, builder.flags, first=True, last=True)
    nfa.start, nfa.final = entry, exit_
    return nfa


def literal_nfa(nfa: NFA, data: bytes) -> Fragment:
    """A chain of states reading exactly ``data``."""
    entry = current = nfa.state()
    for byte in data:
        nxt = nfa.state()
        nfa.edges[current].append((byte, byte, nxt))
        current = nxt
    return entry, current


class _Builder:
    def __init__(self, pattern: str, flags: int) -> None:
        self.pattern = pattern
        self.flags = flags
        self.nfa = NFA()

    # -------------------------------------------------------------------------------- structure

    def sequence(self, items: list, flags: int, first: bool, last: bool) -> Fragment:
        nfa = self.nfa
        entry = current = nfa.state()
        consumed_before = not first
        for index, (op, av) in enumerate(items):
            rest_consumes = not last or any(o is not sre.AT for o, _ in items[index + 1 :])
            frag = self.item(op, av, flags, first=not consumed_before, last=not rest_consumes)
            nfa.empty[current].append(frag[0])
            current = frag[1]
            if op is not sre.AT:
                consumed_before = True
        return entry, current

    def item(self, op, av, flags: int, first: bool, last: bool) -> Fragment:
        if op is sre.LITERAL:
            return self.chars(_case_variants([(av, av)], flags), flags)
        if op is sre.NOT_LITERAL:
            return self.chars(complement(_case_variants([(av, av)], flags)), flags)
        if op is sre.ANY:
            ranges = [(0, MAX_CODE_POINT)] if flags & re.DOTALL else complement([(10, 10)])
            return self.chars(ranges, flags)
        if op is sre.IN:
            return self.chars(self.char_class(av, flags), flags)
        if op is sre.BRANCH:
            return self.branch(av[1], flags, first, last)
        if op is sre.SUBPATTERN:
            _group, add, remove, sub = av
            return self.sequence(sub.data, (flags | add) & ~remove, first, last)
        if op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
            low, high, sub = av
            return self.repeat(sub.data, low, high, flags)
        if op is sre.AT:
            return self.anchor(av, first, last)
        raise self.unsupported(op)

    def branch(self, alternatives: list, flags: int, first: bool, last: bool) -> Fragment:
        nfa = self.nfa
        entry, exit_ = nfa.state(), nfa.state()
        for alt in alternatives:
            a, b = self.sequence(alt.data, flags, first, last)
            nfa.empty[entry].append(a)
            nfa.empty[b].append(exit_)
        return entry, exit_

    def repeat(self, items: list, low: int, high: int, flags: int) -> Fragment:
        nfa = self.nfa
        unbounded = high is sre.MAXREPEAT
        if low > MAX_REPEAT_COPIES or (not unbounded and high > MAX_REPEAT_COPIES):
            raise PatternError(f"a repetition count above {MAX_REPEAT_COPIES} is not supported", None)
        entry = current = nfa.state()
        for _ in range(low):
            a, b = self.sequence(items, flags, first=False, last=False)
            nfa.empty[current].append(a)
            current = b
        if unbounded:
            a, b = self.sequence(items, flags, first=False, last=False)
            nfa.empty[current].append(a)
            nfa.empty[b].append(current)
            return entry, current
        # Optional copies nested (x(x(x)?)?)? rather than x?x?x?, so each state's closure stays small.
        exit_ = nfa.state()
        nfa.empty[current].append(exit_)
        for _ in range(high - low):
            a, b = self.sequence(items, flags, first=False, last=False)
            nfa.empty[current].append(a)
            nfa.empty[b].append(exit_)
            current = b
        return entry, exit_

    def anchor(self, where, first: bool, last: bool) -> Fragment:
        if where in (sre.AT_BEGINNING, sre.AT_BEGINNING_STRING) and first:
            return literal_nfa(self.nfa, b"")
        if where in (sre.AT_END, sre.AT_END_STRING) and last:
            return literal_nfa(self.nfa, b"")
        if where in (sre.AT_BOUNDARY, sre.AT_NON_BOUNDARY):
            raise PatternError("word boundaries (\\b, \\B) are not supported", _locate(self.pattern, _BOUNDARY))
        raise PatternError(
            "an anchor (^, $, \\A, \\Z) is only supported at the start or end of the pattern",
            _locate(self.pattern, _ANCHOR),
        )

    def unsupported(self, op) -> PatternError:
        name = str(op)
        for ops, (feature, construct) in _UNSUPPORTED.items():
            if name in ops:
                return PatternError(f"{feature} are not supported in constraints", _locate(self.pattern, construct))
        return PatternError(f"the regular expression feature {name.lower()} is not supported", None)

    # -------------------------------------------------------------------------------- characters

    def char_class(self, items: list, flags: int) -> list[tuple[int, int]]:
        ranges: list[tuple[int, int]] = []
        negate = False
        for op, av in items:
            if op is sre.NEGATE:
                negate = True
            elif op is sre.LITERAL:
                ranges.append((av, av))
            elif op is sre.RANGE:
                ranges.append(av)
            elif op is sre.CATEGORY:
                ranges.extend(_category(av, flags))
            else:
                raise self.unsupported(op)
        ranges = _case_variants(ranges, flags)
        return complement(ranges) if negate else normalize(ranges)

    def chars(self, ranges: list[tuple[int, int]], flags: int) -> Fragment:
        nfa = self.nfa
        entry, exit_ = nfa.state(), nfa.state()
        for lo, hi in normalize(ranges):
            for seq in byte_sequences(lo, hi):
                current = entry
                for i, (b_lo, b_hi) in enumerate(seq):
                    nxt = exit_ if i == len(seq) - 1 else nfa.state()
                    nfa.edges[current].append((b_lo, b_hi, nxt))
                    current = nxt
        return entry, exit_


_ASCII_CATEGORIES = {
    "d": [(48, 57)],
    "s": [(9, 13), (32, 32)],
    "w": [(48, 57), (65, 90), (95, 95), (97, 122)],
}


def _category(code, flags: int) -> list[tuple[int, int]]:
    name = str(code)  # e.g. CATEGORY_NOT_DIGIT
    letter = {"DIGIT": "d", "SPACE": "s", "WORD": "w"}[name.rsplit("_", 1)[-1]]
    ranges = _ASCII_CATEGORIES[letter] if flags & re.ASCII else list(category_ranges(letter))
    return complement(ranges) if "_NOT_" in name else list(ranges)


# Case-insensitive classes spanning more than this many code points are taken as written (their case variants
# are, for the big classes people write, already inside them).
_CASE_FOLD_LIMIT = 5_000


def _case_variants(ranges: list[tuple[int, int]], flags: int) -> list[tuple[int, int]]:
    if not flags & re.IGNORECASE:
        return ranges
    out = list(ranges)
    for lo, hi in ranges:
        if hi - lo > _CASE_FOLD_LIMIT:
            continue
        for cp in range(lo, hi + 1):
            ch = chr(cp)
            for variant in {ch.lower(), ch.upper(), ch.casefold()}:
                if len(variant) == 1:
                    out.append((ord(variant), ord(variant)))
    return normalize(out)


# -------------------------------------------------------------------------------- locating features in a pattern

_LOOKAHEAD = ("(?=", "(?!")
_LOOKBEHIND = ("(?<=", "(?<!")
_ATOMIC = ("(?>",)
_CONDITIONAL = ("(?(",)
_BACKREF = ("(?P=", "\\1", "\\2", "\\3", "\\4", "\\5", "\\6", "\\7", "\\8", "\\9")
_POSSESSIVE = ("*+", "++", "?+", "}+")
_BOUNDARY = ("\\b", "\\B")
_ANCHOR = ("^", "$", "\\A", "\\Z")

_UNSUPPORTED = {
    ("ASSERT",): ("lookarounds ((?=...), (?!...), (?<=...), (?<!...))", _LOOKAHEAD + _LOOKBEHIND),
    ("ASSERT_NOT",): ("lookarounds ((?=...), (?!...), (?<=...), (?<!...))", _LOOKAHEAD + _LOOKBEHIND),
    ("GROUPREF", "GROUPREF_IGNORE", "GROUPREF_LOC_IGNORE", "GROUPREF_UNI_IGNORE"): ("backreferences", _BACKREF),
    ("GROUPREF_EXISTS",): ("conditional groups (?(...)...)", _CONDITIONAL),
    ("ATOMIC_GROUP",): ("atomic groups (?>...)", _ATOMIC),
    ("POSSESSIVE_REPEAT",): ("possessive quantifiers (*+, ++, ?+, {m,n}+)", _POSSESSIVE),
}


def _locate(pattern: str, constructs: tuple[str, ...]) -> int | None:
    """Offset of the first of ``constructs`` in ``pattern`` outside character classes (escapes respected)."""
    i, in_class = 0, False
    while i < len(pattern):
        if not in_class and any(pattern.startswith(c, i) for c in constructs):
            return i
        ch = pattern[i]
        if ch == "\\":
            i += 2
            continue
        if in_class:
            if ch == "]":
                in_class = False
        elif ch == "[":
            in_class = True
            i += 1
            if pattern.startswith("^", i):
                i += 1
            if pattern.startswith("]", i):  # a leading ] is a literal
                i += 1
            continue
        i += 1
    return None
