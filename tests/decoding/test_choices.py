"""A hole with few values follows each value's own tokenization (lmlang.masks.choices): on toy vocabularies,
on a fake model with scripted logits, then on SmolLM2."""

from __future__ import annotations

import math

import numpy as np
import pytest

import lmlang
from lmlang.masks import from_regex, literals
from lmlang.masks.automaton import enumerate_values
from lmlang.masks.choices import ChoiceMatcher
from fakemodel import FakeModel


def test_the_values_of_a_finite_automaton_are_listed_in_byte_order() -> None:
    assert enumerate_values(literals([b" no", b" yes", b"maybe"], "test:choices"), 10) == [b" no", b" yes", b"maybe"]
    assert enumerate_values(from_regex("a?"), 10) == [b"", b"a"]
    assert len(enumerate_values(from_regex("[0-9]{2}"), 100)) == 100
    assert enumerate_values(from_regex("[0-9]{2}"), 99) is None  # more than the limit
    assert enumerate_values(from_regex("[0-9]+"), 10**6) is None  # endless


def test_the_trie_allows_only_each_values_own_tokens() -> None:
    pieces = [b"", b" yes", b" no", b" ", b"yes", b" y", b"es", b" nope"]
    matcher = ChoiceMatcher([[1], [2], [7]], pieces, eog={0})
    start = matcher.start()
    assert matcher.ids(start).tolist() == [1, 2, 7]  # not " " then "yes", nor " y" then "es"
    assert matcher.advance(start, 3) == -1 and matcher.advance(start, 5) == -1
    yes = matcher.advance(start, 1)
    assert matcher.accepts(yes) and matcher.only_end(yes) and matcher.ids(yes).tolist() == [0]
    assert matcher.advance(yes, 0) == yes and matcher.advance(start, 0) == -1
    assert matcher.forced(start) is None and matcher.sole(start) is None


def test_a_shared_start_branches_and_the_last_value_left_is_forced() -> None:
    pieces = [b"", b" ne", b"g", b"ative", b"utral", b" pos", b"itive"]
    matcher = ChoiceMatcher([[1, 2, 3], [1, 4], [5, 6]], pieces, eog={0})
    start = matcher.start()
    ne = matcher.advance(start, 1)
    assert matcher.ids(ne).tolist() == [2, 4]
    assert matcher.forced(matcher.advance(start, 5)) == b"itive"
    neg = matcher.advance(ne, 2)
    assert matcher.sole(neg) == 3 and matcher.forced_text(neg) == b"ative" and matcher.forced(neg) == b"ative"
    logits = np.arange(len(pieces), dtype=np.float32)
    ids, chosen = matcher.choices(start, logits, np.empty_like(logits))
    assert ids.tolist() == [1, 5] and chosen.tolist() == [1.0, 5.0]
    assert matcher.allowed_mass(start, np.ones(len(pieces)), len(pieces)) == 2.0


WORDS = [" positive", " negative", " ", "positive", "negative", " p"]


def lone_space_trap(text: str) -> dict[str, float]:
    if text.endswith("Sentiment:"):  # the lone space is likelier than either word, which the model splits evenly
        return {" ": 2.0, " positive": 1.0, " negative": 0.9}
    if text.endswith("Sentiment: "):  # after a space it was not expecting, it is lost
        return {"negative": 1.0, "positive": 0.0}
    return {"<eos>": 5.0}


def test_greedy_chooses_between_the_values_not_a_lone_space() -> None:
    fake = FakeModel(WORDS, lone_space_trap)
    result = lmlang.compile('"Sentiment:[L]" where L in [" positive", " negative"]').run(
        session=lmlang.Session(models={"f": fake}))
    assert result.variables["L"] == " positive"
    score = result.scores["L"]
    # The first token's margin compares the two words, and the value is complete after one token: no decode.
    p, n = math.exp(1.0), math.exp(0.9)
    assert score.margin == pytest.approx((p - n) / (p + n), abs=1e-6)
    assert score.tokens == 1
    assert fake.decode_calls == 1  # the prompt only


@pytest.mark.model
def test_smollm2_labels_a_review_with_a_word_it_would_write() -> None:
    query = lmlang.compile('"Review: I loved this film, a joy from start to finish.\\nSentiment:[L]" '
                           'where L in [" positive", " negative"]')
    result = query.run("smollm2")
    assert result.variables["L"] == " positive"
    assert result.scores["L"].tokens == 1
    # Both first tokens are the labels themselves: the margin is a probability gap between two words.
    assert 0 < result.scores["L"].margin < 1
