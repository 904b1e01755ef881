"""The hole loop on the real model: stop phrases inside and across tokens, and the cache rewound to kept text."""

from __future__ import annotations

import numpy as np
import pytest

import lmlang

from lmlang.decoding.hole import HoleCursor, HoleRequest, decode_hole
from lmlang.decoding.sampler import Sampler


def fresh_logits(model, tokens):
    seq = model.new_sequence()
    try:
        seq.append(tokens)
        return np.array(seq.logits())
    finally:
        seq.release()


@pytest.mark.parametrize("keep", [True, False])
def test_stop_phrase_cuts_value_and_rewinds_cache(smollm2, keep) -> None:
    prompt = smollm2.tokenize("The alphabet: a b c d e f g h i j k")
    seq = smollm2.new_sequence()
    try:
        seq.append(prompt)
        # " n" is part of a longer token in some continuations and its own token in others: either way it must cut.
        outcome = decode_hole(seq, HoleRequest("X", None, ((" n", keep),), 40, None), Sampler())
        assert outcome.text.endswith(" n") == keep
        assert " n" not in outcome.text[:-2] if keep else " n" not in outcome.text
        assert seq.tokens == prompt + outcome.tokens
        assert smollm2.detokenize(outcome.tokens) == outcome.text.encode()
        # The cache holds exactly those tokens: its logits are those of the same tokens evaluated afresh, up to
        # llama.cpp's dependence on how tokens were grouped into decodes (one by one here, all at once there).
        after, fresh = seq.logits(), fresh_logits(smollm2, seq.tokens)
        assert after.argmax() == fresh.argmax() and np.allclose(after, fresh, atol=1.0)
    finally:
        seq.release()


def test_stop_phrase_inside_one_token(smollm2) -> None:
    prompt = smollm2.tokenize("Repeat after me: hello world, hello world, hello")
    seq = smollm2.new_sequence()
    try:
        seq.append(prompt)
        outcome = decode_hole(seq, HoleRequest("X", None, (("wor", True),), 20, None), Sampler())
        assert outcome.text.endswith("wor") and outcome.text.count("wor") == 1
        assert seq.tokens == prompt + outcome.tokens
    finally:
        seq.release()


def test_token_limit_is_respected(smollm2) -> None:
    seq = smollm2.new_sequence()
    try:
        seq.append(smollm2.tokenize("Once upon a time"))
        outcome = decode_hole(seq, HoleRequest("X", None, (), 5, None), Sampler())
        assert len(outcome.tokens) <= 5 and outcome.sampled <= 5
    finally:
        seq.release()


def test_logprobs_match_step_by_step_evaluation(smollm2) -> None:
    """Recomputed as generation runs, one token per evaluation: llama.cpp's logits differ slightly between batch
    shapes (see test_decoders), so the check evaluates each token alone too."""
    prompt = smollm2.tokenize("The capital of France is")
    seq = smollm2.new_sequence()
    try:
        seq.append(prompt)
        outcome = decode_hole(seq, HoleRequest("X", None, (), 4, None), Sampler())
    finally:
        seq.release()
    expected = 0.0
    seq = smollm2.new_sequence()
    try:
        seq.append(prompt)
        for token in outcome.tokens:
            logits = np.asarray(seq.logits(), np.float64)
            expected += logits[token] - (logits.max() + np.log(np.exp(logits - logits.max()).sum()))
            seq.append([token])
    finally:
        seq.release()
    assert outcome.logprob == pytest.approx(expected, abs=1e-3)


def test_typed_value_ends_where_the_model_leaves_its_pattern(smollm2) -> None:
    """An int hole ends when the model would write something other than a digit, not at the token limit."""
    import lmlang

    result = lmlang.run('"There are 7 days in a week. A week has[N: int] days."', model="smollm2")
    assert result.variables["N"] == 7
    assert result.scores["N"].tokens <= 2


def test_the_phrase_complete_first_cuts_the_value() -> None:
    from lmlang.decoding.hole import _stop_cut

    stops = (("b", True), ("abc", False))
    assert _stop_cut(bytearray(b"xabc"), stops, 0, 0) == 3  # "b" is complete before "abc": the value is "xab"
    assert _stop_cut(bytearray(b"xac"), stops, 0, 0) is None
    # An occurrence that ended before the new piece (held back by a token minimum) does not cut the value.
    assert _stop_cut(bytearray(b"b..b"), (("b", True),), 0, 2) == 4



class _FixedRow:
    """A sequence whose next-token logits are one fixed row: both ways of choosing read the same numbers."""

    def __init__(self, model, logits) -> None:
        self.model, self.tokens, self._logits = model, [], logits

    def logits(self):
        return self._logits


@pytest.mark.parametrize("model_name", ["smollm2", "gemma3-270m"])
@pytest.mark.parametrize("written", ["", "4"])  # the start, and a complete value (ending takes the leaving mass)
def test_few_allowed_tokens_are_chosen_without_writing_the_row(request, model_name, written, monkeypatch) -> None:
    """Where a constraint allows few tokens the decoder reads only theirs (TokenMatcher.choices, sparse); the
    choices, their log-probabilities and the margin are those of the masked whole row."""
    from lmlang.masks import TokenMatcher, Vocabulary, from_regex

    model = request.getfixturevalue("smollm2" if model_name == "smollm2" else "gemma")
    logits = fresh_logits(model, model.tokenize("A dozen eggs is " + written))
    logits.flags.writeable = False
    vocab = model.vocabulary()
    matcher = TokenMatcher(from_regex(r"[0-9]+"), vocab)
    state = matcher.start()
    for token in model.tokenize(written):
        state = matcher.advance(state, token)

    def choose(dense: bool):
        if dense:
            monkeypatch.setattr(TokenMatcher, "allowed_logits", lambda self, state, logits, most=0: None)
        cursor = HoleCursor(_FixedRow(model, logits), HoleRequest("N", None, (), 8, matcher))
        cursor.state = state
        choices = cursor.scores()
        assert (choices.ids is None) == dense
        allowed = {choices.token(i): choices.logprob(i) for i in range(len(choices.logits))
                   if np.isfinite(choices.logits[i])}
        return allowed, choices.pick(Sampler()), cursor.outcome.margin

    sparse, dense = choose(False), choose(True)
    assert sparse[0].keys() == dense[0].keys() and len(sparse[0]) >= 10
    assert all(sparse[0][t] == pytest.approx(dense[0][t], abs=1e-5) for t in sparse[0])
    assert sparse[1][0] == dense[1][0] and sparse[2] == pytest.approx(dense[2], abs=1e-6)


@pytest.mark.parametrize("model_name", ["smollm2", "gemma3-270m"])
def test_greedy_takes_the_top_token_unmasked_only_where_the_mask_would_pick_it_too(request, model_name) -> None:
    """The greedy shortcut (the model's likeliest token, when allowed and ending cannot overtake it) picks what
    the masked row picks, with the same log-probability, at the start and where the value is complete."""
    from lmlang.masks import TokenMatcher, Vocabulary, from_regex

    model = request.getfixturevalue("smollm2" if model_name == "smollm2" else "gemma")
    vocab = model.vocabulary()
    matcher = TokenMatcher(from_regex(r"[A-Za-z ,.]+"), vocab, 60)
    shortcuts = 0
    for prompt, written in [("The cat sat on the", ""), ("My name is", " Anna"), ("1, 2, 3,", " four"),
                            ("Once upon a time", " there"), ("Q: Say nothing.\nA:", " ok.")]:
        logits = fresh_logits(model, model.tokenize(prompt + written))
        logits.flags.writeable = False
        state = matcher.start()
        for token in model.tokenize(written):
            state = matcher.advance(state, token)
        cursor = HoleCursor(_FixedRow(model, logits), HoleRequest("X", None, (), 8, matcher))
        cursor.state, cursor.outcome.margin = state, 0.5  # past the first step, whose margin needs the mask
        shortcuts += cursor._top_if_allowed(*cursor._normalized())[0] is not None
        token, logprob = cursor.choose(Sampler())
        expected, expected_logprob = cursor.scores().pick(Sampler())
        assert token == expected and logprob == pytest.approx(expected_logprob, abs=1e-5)
    assert shortcuts >= 1  # both ways are exercised


@pytest.mark.parametrize("limit", [2, 3, 4])
def test_a_token_limit_never_leaves_half_a_character(limit: int, smollm2) -> None:
    # SmolLM2 writes each of these Chinese characters as two byte-level tokens: an odd limit cuts one in two.
    result = lmlang.run(f'"用中文回答：你好吗？\\n回答：[X]" where len(TOKENS(X)) < {limit}', model="smollm2")
    value = result.variables["X"]
    assert "\ufffd" not in value and result.prompt.endswith("回答：" + value)
    assert result.scores["X"].tokens <= limit - 1


@pytest.mark.parametrize("model", ["smollm2", "gemma3-270m"])
def test_a_token_minimum_holds_back_the_end_and_early_stop_phrases(model: str) -> None:
    # The first sentence is shorter than 15 tokens: its period does not end the value, the first period after does.
    result = lmlang.run('"Q: Describe the sea in one sentence.\\nA:[X]" where len(TOKENS(X)) >= 15 and STOPS_AT(X, ".")'
                        ' and len(TOKENS(X)) < 60', model=model)
    value, tokens = result.variables["X"], result.scores["X"].tokens
    assert tokens >= 15 and value.endswith(".")
    # Any earlier period came before the 15th token: the value ends at the first period after it.
    model_tokens = smollm2_or_gemma(model).tokenize(value)
    head = smollm2_or_gemma(model).detokenize(model_tokens[:14]).decode("utf-8", "replace")
    assert "." not in value[len(head):-1]
    ended = lmlang.run('"Q: Say hi.\\nA:[X]" where len(TOKENS(X)) > 5 and len(TOKENS(X)) < 9', model=model)
    assert 6 <= ended.scores["X"].tokens <= 8


def smollm2_or_gemma(name: str):
    from lmlang.models.llama import load

    return load(name)
