"""Beam search keeps beams distinct by text, on a fake model with scripted logits: two paths to one text (different
tokens, reached at different steps, or a token after which the constraint forces the rest) are one beam, the
likelier, and the freed place goes to another text, so ``beam(n)`` returns ``n`` results when ``n`` texts exist."""

from __future__ import annotations

import math

import numpy as np
import pytest

import lmlang
from fakemodel import FakeModel


def logsoftmax(model: FakeModel, text: str, token: str) -> float:
    row = model.logits_after(model.tokenize(text)).astype(np.float64)
    top = row.max()
    return float(row[model.token_id(token)] - top - math.log(np.exp(row - top).sum()))


def beam(model: FakeModel, source: str, n: int) -> list:
    return lmlang.compile(source).run(session=lmlang.Session(models={"fake": model}), decoder="beam",
                                      decoder_args={"n": n})


def split_path(first: float):
    """" x." is one token, or " x" then "." a step later; after " x" the model may also write " z"."""
    def script(text: str) -> dict[str, float]:
        if text.endswith("A:"):
            return {" x.": first, " x": 2.5, " y": 0.0}
        if text.endswith("A: x"):
            return {".": 3.0, " z": 2.0}
        if text.endswith("A: x z"):
            return {".": 5.0}
        return {"<eos>": 10.0}
    return FakeModel([" x.", " x", " y", " z", "."], script)


STOPPED = '"A:[V]" where STOPS_AT(V, ".")'
# Two words the model likes, among more values than a decoder lists (lmlang.masks.choices): the mask is then the
# byte automaton, and every token path that spells a value is allowed (" d" then "og", or " dog").
FILLER = "| [e-z][a-z]"  # 572 two-letter words the scripts below never favour
BYTE_PATHS = f'"A:[W]" where REGEX(W, r" dog| cat{FILLER}")'


def test_a_path_reaching_a_text_later_but_likelier_replaces_the_earlier_beam() -> None:
    model = split_path(first=2.0)  # " x" + "." (-0.84) beats " x." (-1.02), which finished a step before
    results = beam(model, STOPPED, 2)
    assert [r.prompt for r in results] == ["A: x.", "A: x z."]
    via_two = logsoftmax(model, "A:", " x") + logsoftmax(model, "A: x", ".")
    assert via_two > logsoftmax(model, "A:", " x.")
    assert results[0].logprob == pytest.approx(via_two, abs=1e-6)
    assert results[1].logprob == pytest.approx(logsoftmax(model, "A:", " x") + logsoftmax(model, "A: x", " z")
                                               + logsoftmax(model, "A: x z", "."), abs=1e-6)


def test_a_path_reaching_a_text_later_and_less_likely_is_dropped() -> None:
    model = split_path(first=2.4)  # now " x." in one token is the likelier path to "A: x."
    results = beam(model, STOPPED, 2)
    assert [r.prompt for r in results] == ["A: x.", "A: x z."]
    assert results[0].logprob == pytest.approx(logsoftmax(model, "A:", " x."), abs=1e-6)
    assert [p.text for p in results[0].scores["V"].pieces if p.text] == [" x."]


def test_a_token_after_which_the_constraint_forces_the_rest_is_the_same_beam_as_the_whole_word() -> None:
    model = FakeModel([" d", "og", " dog", " cat"],
                      lambda text: {" d": 3.0, " dog": 2.0, " cat": 1.0} if text.endswith("A:") else {"<eos>": 10.0})
    results = beam(model, BYTE_PATHS, 2)
    assert [r.variables["W"] for r in results] == [" dog", " cat"]
    # " dog" by its likelier path: " d", then "og" forced (forced text costs nothing, as in argmax, where after
    # " d" the constraint allows "o" and "og", and the rest is forced)
    assert results[0].logprob == pytest.approx(logsoftmax(model, "A:", " d"), abs=1e-6)
    assert results[1].logprob == pytest.approx(logsoftmax(model, "A:", " cat"), abs=1e-6)
    argmax = lmlang.compile(BYTE_PATHS).run(
        session=lmlang.Session(models={"fake": model}))
    assert argmax.variables["W"] == " dog" and argmax.logprob == pytest.approx(results[0].logprob, abs=1e-9)


def test_three_words_in_three_holes_give_n_distinct_texts() -> None:
    """LMQL's beam over holes restricted to a list, where the model likes to start each word with a token of its
    first letter (after which the rest, spelt by more than one token, is forced): four distinct texts."""
    words = [" cat", " dog", " rabbit", " c", " d", " r", "at", "og", "abbit", "a", "o"]

    def script(text: str) -> dict[str, float]:
        if text.endswith(":") or text.endswith(("cat", "dog", "rabbit")):
            return {" c": 2.0, " d": 1.8, " r": 1.5, " cat": 1.0, " dog": 1.2, " rabbit": 0.5, "<eos>": 0.0}
        return {"<eos>": 10.0}
    model = FakeModel(words, script)
    results = beam(model, f'"A:[W][W][W]" where REGEX(W, r" cat| dog| rabbit{FILLER}")', 4)
    assert [r.prompt for r in results] == ["A: cat cat cat", "A: cat cat dog", "A: cat dog cat", "A: dog cat cat"]
    first = {w: logsoftmax(model, "A:", w) for w in (" c", " d")}
    assert results[0].logprob == pytest.approx(3 * first[" c"], abs=1e-6)
    assert results[3].logprob == pytest.approx(first[" d"] + 2 * first[" c"], abs=1e-6)


def test_a_rest_spelt_by_one_token_at_a_time_is_scored_by_the_model() -> None:
    """After " d", only "o" then only "g" may follow: the model scores each, as argmax does. " d" and " dog" share
    one of the n places until the scores tell them apart (here " dog" in one token wins), so " cat" keeps the
    other."""
    model = FakeModel([" d", " dog", " cat"],
                      lambda text: {" d": 3.0, " dog": 2.0, " cat": 1.0} if text.endswith("A:") else {"<eos>": 10.0})
    source = BYTE_PATHS
    results = beam(model, source, 2)
    assert [r.variables["W"] for r in results] == [" dog", " cat"]
    assert [p.text for p in results[0].scores["W"].pieces if p.text] == [" dog"]
    assert results[0].logprob == pytest.approx(logsoftmax(model, "A:", " dog"), abs=1e-6)
    # beam(n=1) is argmax: " d", then "o" and "g" at the model's price
    single = beam(model, source, 1)
    greedy = lmlang.compile(source).run(session=lmlang.Session(models={"fake": model}))
    expected = logsoftmax(model, "A:", " d") + logsoftmax(model, "A: d", "o") + logsoftmax(model, "A: do", "g")
    assert single.variables["W"] == greedy.variables["W"] == " dog"
    assert single.logprob == pytest.approx(expected, abs=1e-6) and greedy.logprob == pytest.approx(expected, abs=1e-6)


def test_a_value_the_constraint_fixes_is_written_as_argmax_writes_it() -> None:
    model = FakeModel([" d", " dog"], lambda text: {" d": 3.0, " dog": 2.0} if text.endswith("A:") else {"<eos>": 9.0})
    source = '"A:[W]" where W == " dog"'
    results = beam(model, source, 2)
    greedy = lmlang.compile(source).run(session=lmlang.Session(models={"fake": model}))
    assert [r.variables["W"] for r in results] == [greedy.variables["W"]] == [" dog"]  # one text: one result
    assert results[0].logprob == greedy.logprob == 0.0  # forced text costs nothing


def test_listed_values_are_beams_of_their_own_tokens_only() -> None:
    """Without a stop phrase the values are listed: " d" is no way to " dog", so the beams are the two words."""
    model = FakeModel([" d", "og", " dog", " cat"],
                      lambda text: {" d": 3.0, " dog": 2.0, " cat": 1.0} if text.endswith("A:") else {"<eos>": 10.0})
    results = beam(model, '"A:[W]" where W in [" dog", " cat"]', 2)
    assert [r.variables["W"] for r in results] == [" dog", " cat"]
    assert results[0].logprob == pytest.approx(logsoftmax(model, "A:", " dog"), abs=1e-6)
    assert results[1].logprob == pytest.approx(logsoftmax(model, "A:", " cat"), abs=1e-6)
