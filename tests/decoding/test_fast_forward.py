"""Tokens the constraint alone decides ride in the llama_decode of the chosen token before them, and a value
nothing may extend ends without a decode; the values and scores are those of choosing each such token alone."""

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


def digits(text: str) -> dict[str, float]:
    return {"1": 2.0, "2": 1.0, "-": -1.0}


def test_a_forced_separator_shares_the_decode_of_the_digit_before_it() -> None:
    fake = FakeModel([], digits)
    result = lmlang.compile('"A:[V]" where REGEX(V, r"[12]-[12]")').run(session=lmlang.Session(models={"f": fake}))
    assert result.variables["V"] == "1-1"
    # The prompt, then "1" and "-" together; the last "1" completes the value and is never evaluated.
    assert fake.decode_calls == 2
    score = result.scores["V"]
    expected = logsoftmax(fake, "A:", "1") + logsoftmax(fake, "A:1", "-") + logsoftmax(fake, "A:1-", "1")
    assert score.logprob == pytest.approx(expected, abs=1e-6)
    # The margin is the first choice's, between "1" and "2", the digits the constraint allows.
    assert score.tokens == 3 and score.margin == pytest.approx((math.e ** 2 - math.e) / (math.e ** 2 + math.e))
    forced = [p for p in score.pieces if p.text == "-"]
    assert len(forced) == 1 and forced[0].logprob == pytest.approx(logsoftmax(fake, "A:1", "-"), abs=1e-6)


def test_a_chain_of_forced_tokens_stops_short_of_the_token_limit() -> None:
    fake = FakeModel([], digits)
    source = '"A:[V]" where REGEX(V, r"[12]-----[12]") and len(TOKENS(V)) < 4'
    with pytest.raises(lmlang.ConstraintError, match="still incomplete after 3 tokens"):
        lmlang.compile(source).run(session=lmlang.Session(models={"f": fake}))


def test_forced_text_over_the_token_limit_is_an_error_not_a_longer_value() -> None:
    fake = FakeModel([], digits)
    source = '"A:[V]" where REGEX(V, r"1-----2") and len(TOKENS(V)) < 4'
    with pytest.raises(lmlang.ConstraintError, match="takes 7 tokens, over its limit of 3"):
        lmlang.compile(source).run(session=lmlang.Session(models={"f": fake}))


def test_a_value_nothing_may_extend_ends_without_asking_the_model() -> None:
    fake = FakeModel([" yes", " no"], lambda text: {" yes": 1.0, " no": 0.5})
    result = lmlang.compile('"A:[V]" where V in [" yes", " no"]').run(session=lmlang.Session(models={"f": fake}))
    assert result.variables["V"] == " yes"
    assert fake.decode_calls == 1  # the prompt alone: " yes" is complete and nothing may follow it


def test_a_phone_number_costs_one_decode_per_chosen_digit(smollm2, decode_calls) -> None:
    query = lmlang.compile('"My phone number is [P]" where REGEX(P, r"[0-9]{3}-[0-9]{3}-[0-9]{4}")')
    result = query.run("smollm2", session=lmlang.Session())
    value = result.variables["P"]
    assert len(value) == 12 and value[3] == value[7] == "-"
    generated = [size for size in decode_calls[1:]]  # after the prompt's
    # 10 digits chosen: the first is read off the prompt's logits and the last is never evaluated; each "-"
    # rides with the digit before it.
    assert len(generated) == 9 and generated.count(2) == 2


def test_forced_text_goes_in_the_tokenizers_spelling_but_for_its_last_token() -> None:
    # "abcd" is forced; the vocabulary spells it "abc" + "d", or "ab" + "c" + "d", or byte by byte.
    fake = FakeModel(["ab", "abc", "c"], digits)
    result = lmlang.compile('"A:[V]" where REGEX(V, r"[12]abcd[12]")').run(session=lmlang.Session(models={"f": fake}))
    assert result.variables["V"] == "1abcd1"
    pieces = [p.text for p in result.scores["V"].pieces]
    # "abc" rides with "1"; "d", the last token of the forced text, is then the only token allowed, and rides too.
    assert pieces == ["1", "abc", "d", "1", ""] and fake.decode_calls == 2
    expected = (logsoftmax(fake, "A:", "1") + logsoftmax(fake, "A:1", "abc") + logsoftmax(fake, "A:1abc", "d")
                + logsoftmax(fake, "A:1abcd", "1"))
    assert result.scores["V"].logprob == pytest.approx(expected, abs=1e-6)


def test_samples_fast_forward_their_forced_separators_in_the_shared_step() -> None:
    fake = FakeModel([], digits)
    results = lmlang.compile('sample(n=3, seed=5) "A:[V]" where REGEX(V, r"[12]-[12]")').run(
        session=lmlang.Session(models={"f": fake}))
    assert len(results) == 3 and all(r.variables["V"][1] == "-" for r in results)
    # The prompt, then one batched step carrying each run's first digit and its "-": as one run alone does.
    assert fake.decode_calls == 2
    for result in results:
        first, _, last = result.variables["V"]
        expected = (logsoftmax(fake, "A:", first) + logsoftmax(fake, f"A:{first}", "-")
                    + logsoftmax(fake, f"A:{first}-", last))
        assert result.scores["V"].logprob == pytest.approx(expected, abs=1e-6)
