"""The hole loop on the real model: stop phrases inside and across tokens, and the cache rewound to kept text."""

from __future__ import annotations

import numpy as np
import pytest

from lmlang.decoding.hole import HoleRequest, decode_hole
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
        assert np.allclose(seq.logits(), fresh_logits(smollm2, seq.tokens), atol=1e-3)
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
    assert _stop_cut(bytearray(b"xabc"), stops, 0) == 3  # "b" is complete before "abc": the value is "xab"
    assert _stop_cut(bytearray(b"xac"), stops, 0) is None
