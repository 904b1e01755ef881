"""Stop phrases inside masks: the automaton of what the model may write agrees, on every short text, with the
decoder's rule written out here (the value is cut at the first phrase end and must then satisfy the language)."""

from __future__ import annotations

import itertools

import pytest
import regex

from lmlang.masks import TokenMatcher, firing_phrases, from_regex, until_stop


def expected(text: str, pattern: str, stops: list[tuple[str, bool]]) -> bool:
    for end in range(1, len(text) + 1):
        ended = [(p, keep) for p, keep in stops if text[:end].endswith(p)]
        if ended:
            cut = min(end if keep else end - len(p) for p, keep in ended)
            return regex.fullmatch(pattern, text[:cut]) is not None
    return regex.fullmatch(pattern, text) is not None


@pytest.mark.parametrize(
    ("pattern", "stops"),
    [
        (r"1+", [("\n", False)]),
        (r"1+", [("\n\n", False)]),
        (r"[ab1]*\.?", [(".", True)]),
        (r"a|ab|b1", [("b", True)]),
        (r"[ab]{1,3}", [("ab", False), ("b.", True)]),
        (r"(a\n)*1", [("\n1", True), ("\n\n", False)]),
        (r"[ab.]*", [("a.", True), (".", False)]),
    ],
)
def test_automaton_follows_the_decoders_cut(pattern, stops) -> None:
    automaton = until_stop(from_regex(pattern), tuple(stops))
    for length in range(7):
        for chars in itertools.product("ab.1\n", repeat=length):
            text = "".join(chars)
            assert automaton.matches(text.encode()) == expected(text, pattern, stops), (text, pattern, stops)


def test_firing_phrases_are_those_that_can_end_a_value() -> None:
    automaton = until_stop(from_regex(r"[0-9]+"), (("\n", True), (".", False)))
    assert firing_phrases(automaton) == frozenset({"."})


def test_a_stop_token_is_allowed_once_the_value_is_complete(smollm2_vocab) -> None:
    vocab = smollm2_vocab
    newline = next(i for i, b in enumerate(vocab.token_bytes) if b == b"\n" and i not in vocab.special)
    digits = next(i for i, b in enumerate(vocab.token_bytes) if b == b"4")
    matcher = TokenMatcher(until_stop(from_regex(r" ?(?:0|-?[1-9][0-9]*)"), (("\n", False),)), vocab)
    start = matcher.start()
    assert not matcher.allowed(start)[newline]  # the empty value is no whole number
    after = matcher.advance(start, digits)
    assert matcher.allowed(after)[newline]
    assert matcher.accepts(matcher.advance(after, newline))
