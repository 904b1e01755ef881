"""Regular expressions as byte automata: same answers as Python's re, refusal of what is not regular."""

from __future__ import annotations

import random
import re

import pytest

from lmlang.masks import PatternError, any_text, from_regex, intersect, literals, negate, union
from lmlang.masks.utf8 import byte_sequences

PATTERNS = [
    r" ?(?:0|-?[1-9][0-9]*)",
    r"[0-9]{2}/[0-9]{2}/[0-9]{4}",
    r"[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}",
    r"(café|naïve)",
    r"[a-z]+ [a-z]+",
    r"\w+",
    r"\d+\s\S?",
    r"(?i)héllo",
    r"(?s:.{0,5})",
    r"[^\n]*",
    r"^ab$",
    r"a|b*c",
    r"x{2,3}?y*?",
    r"[^a-cé]+",
    r"(?x) a  b # comment",
    r"",
]
ALPHABET = "0123456789 -/aé@.Zbcçï_\nHELLOhélloÉafénvxy\t"


@pytest.mark.parametrize("pattern", PATTERNS)
def test_automaton_agrees_with_re(pattern):
    automaton = from_regex(pattern)
    rng = random.Random(pattern)
    samples = ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 12))) for _ in range(3000)]
    samples += ["café", "naïve", "12/04/2024", "john.doe@example.com", "HÉLLO", "héllo", "ab", "xxy", "12 a"]
    for text in samples:
        assert automaton.matches(text.encode()) == bool(re.fullmatch(pattern, text)), (pattern, text)


def test_utf8_sequences_cover_exactly_the_range():
    rng = random.Random(1)
    for low, high in [(0, 0x10FFFF), (0x41, 0x5A), (0x80, 0x3000), (0xE9, 0x1F600), (0x7F, 0x80)]:
        sequences = byte_sequences(low, high)
        for _ in range(3000):
            cp = rng.randint(0, 0x10FFFF)
            if 0xD800 <= cp <= 0xDFFF:
                continue
            data = chr(cp).encode()
            inside = any(len(s) == len(data) and all(a <= b <= z for b, (a, z) in zip(data, s)) for s in sequences)
            assert inside == (low <= cp <= high)


@pytest.mark.parametrize(
    ("pattern", "feature", "offset"),
    [
        (r"a(?=b)", "lookarounds", 1),
        (r"x(?<!y)z", "lookarounds", 1),
        (r"(a)\1", "backreferences", 3),
        (r"ab*+", "possessive quantifiers", 2),
        (r"(?>ab)", "atomic groups", 0),
        (r"(a)?(?(1)b|c)", "conditional groups", 4),
        (r"\bfoo", "word boundaries", 0),
        (r"a^b", "anchor", 1),
        (r"a[", "invalid regular expression", 1),
    ],
)
def test_unsupported_features_are_named_with_their_position(pattern, feature, offset):
    with pytest.raises(PatternError) as info:
        from_regex(pattern)
    assert feature in info.value.message
    assert info.value.offset == offset


def test_boolean_combinations():
    digits = from_regex(r"[0-9]+")
    short = from_regex(r"(?s:.{0,2})")
    both = intersect(digits, short)
    either = union(digits, from_regex("abc"))
    neither = negate(digits)
    for text in ["", "1", "12", "123", "abc", "a1", "é"]:
        data = text.encode()
        assert both.matches(data) == (text.isdigit() and len(text) <= 2)
        assert either.matches(data) == (text.isdigit() or text == "abc")
        assert neither.matches(data) == (not text.isdigit())
    assert intersect(digits, from_regex("abc")).empty
    assert not any_text().matches(b"\xff")


def test_literal_sets_are_minimal_and_exact():
    words = [f"option{i}" for i in range(200)]
    automaton = literals([w.encode() for w in words], key="test:options")
    assert all(automaton.matches(w.encode()) for w in words)
    assert not automaton.matches(b"option200") and not automaton.matches(b"option")
    assert automaton.n_states < 20  # suffixes shared after minimization


def test_forced_continuation_and_min_chars():
    automaton = literals([b"yes", b"no"], key="test:yes-no")
    after_y = automaton.step(automaton.start, b"y")
    assert automaton.forced(after_y) == b"es"
    assert automaton.forced(automaton.start) is None
    assert int(automaton.min_chars[automaton.start]) == 2
