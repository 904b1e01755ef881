"""GrammarMatcher: llguidance's grammar masks stepped with int states, intersected with a regular matcher.

A small made-up vocabulary keeps these about the logic (states that can be revisited, parsers rebuilt after
eviction, end tokens, the product with regular constraints); one test runs a real vocabulary."""

from __future__ import annotations

import numpy as np
import pytest

from lmlang.masks import TokenMatcher, Vocabulary, any_text, from_regex
from lmlang.masks import grammar as engine

EOS = 0
PIECES = [b"", b"(", b")", b"1", b"2", b"+", b"12", b"(1", b"+(", b"x", b" ", b"))"]
VOCAB = Vocabulary(PIECES, frozenset(), frozenset({EOS}), "toy-grammar")
ARITH = 'start: expr\nexpr: atom ("+" atom)*\natom: NUM | "(" expr ")"\nNUM: /[0-9]+/\n'


def tokens(*pieces: bytes) -> list[int]:
    return [PIECES.index(p) for p in pieces]


def matcher(regular: str | None = None, max_chars: int | None = None) -> engine.GrammarMatcher:
    automaton = any_text() if regular is None else from_regex(regular)
    return engine.GrammarMatcher([engine.lark(ARITH)], VOCAB, TokenMatcher(automaton, VOCAB, max_chars))


def walk(m: engine.GrammarMatcher, path: list[int]) -> int:
    state = m.start()
    for t in path:
        state = m.advance(state, t)
    return state


def allowed(m: engine.GrammarMatcher, state: int) -> set[bytes]:
    return {PIECES[i] if i != EOS else b"<eos>" for i in m.ids(state)}


def test_masks_follow_the_grammar_at_any_depth():
    m = matcher()
    start = m.start()
    assert allowed(m, start) == {b"(", b"1", b"2", b"12", b"(1"}
    deep = walk(m, tokens(b"(", b"(", b"(", b"(1"))
    assert deep > 0 and not m.accepts(deep) and b"<eos>" not in allowed(m, deep)
    done = walk(m, tokens(b"(", b"(", b"(", b"(1", b"))", b"))"))
    assert m.accepts(done) and b"<eos>" in allowed(m, done) and m.advance(done, EOS) == done
    assert m.advance(start, PIECES.index(b"x")) == -1 and m.advance(start, EOS) == -1


def test_states_are_stable_for_revisits_and_branches():
    m = matcher()
    a = walk(m, tokens(b"(1", b"+"))
    assert walk(m, tokens(b"(1", b"+")) == a  # the same path is the same state
    left, right = m.advance(a, PIECES.index(b"2")), m.advance(a, PIECES.index(b"("))
    assert allowed(m, left) == {b")", b"+", b"+(", b"1", b"2", b"12"}  # one parenthesis is open
    assert b")" not in allowed(m, right) and b"1" in allowed(m, right)
    first = m.ids(left)
    assert m.ids(left) is first  # kept


def test_evicted_parsers_are_rebuilt_from_the_nearest_kept_ancestor(monkeypatch):
    monkeypatch.setattr(engine, "_PARSERS_KEPT", 2)
    monkeypatch.setattr(engine, "_MASKS_KEPT", 2)
    m = matcher()
    path = tokens(b"(", b"(", b"1", b"+", b"2", b")", b")")
    states = [m.start()]
    for t in path:
        m.ids(states[-1])
        states.append(m.advance(states[-1], t))
    fresh = matcher()
    expected = [allowed(fresh, walk(fresh, path[:i])) for i in range(len(path) + 1)]
    assert [allowed(m, s) for s in states] == expected
    assert m.accepts(states[-1])


def test_the_regular_part_and_a_character_bound_narrow_the_grammar():
    m = matcher(regular=r"[0-9+]*")  # no parentheses
    assert allowed(m, m.start()) == {b"1", b"2", b"12"}
    bounded = matcher(max_chars=4)
    s = walk(bounded, tokens(b"12", b"+"))
    # "12" would make 5 characters. "(" fits by itself: the bound counts characters token by token and does not
    # know the grammar needs two more after it (that path then ends in an error, never in a value).
    assert allowed(bounded, s) == {b"1", b"2", b"("}
    assert bounded.advance(s, PIECES.index(b"12")) == -1


def test_choices_and_mass_cover_the_allowed_tokens_only():
    m = matcher()
    logits = np.arange(len(PIECES), dtype=np.float32)
    out = np.empty_like(logits)
    ids, chosen = m.choices(m.start(), logits, out)
    assert sorted(ids.tolist()) == sorted(tokens(b"(", b"1", b"2", b"12", b"(1"))
    assert np.array_equal(chosen, logits[ids])
    weights = np.ones(len(PIECES))
    assert m.allowed_mass(m.start(), weights, float(len(PIECES))) == 5.0
    assert m.allowed(m.start()).sum() == 5


def test_a_grammar_with_an_error_names_it():
    with pytest.raises(engine.GrammarError, match="unknown name"):
        engine.lark("start: nothing_here")
    with pytest.raises(engine.GrammarError):
        engine.gbnf("root ::= undefined-rule")


@pytest.mark.model
def test_json_on_a_real_vocabulary(smollm2_vocab):
    grammar = engine.json_schema({"type": "object", "properties": {"n": {"type": "integer"}},
                                  "required": ["n"], "additionalProperties": False}, {})
    m = engine.GrammarMatcher([grammar], smollm2_vocab, TokenMatcher(any_text(), smollm2_vocab))
    state = m.start()
    for piece in (b'{"', b"n", b'":', b" ", b"4", b"2", b"}"):
        token = smollm2_vocab.token_bytes.index(piece)
        state = m.advance(state, token)
        assert state > 0, piece
    assert m.accepts(state)
    assert {smollm2_vocab.token_bytes[i] for i in m.ids(state)} == {b""}  # only the end tokens
