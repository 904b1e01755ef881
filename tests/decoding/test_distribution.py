"""The distribution clause and the scoring API, checked against plain llama-cpp-python evaluation."""

from __future__ import annotations

import numpy as np
import pytest

import lmlang
from tests.decoding.conftest import plain_logprob

PROMPT = "Review: The battery died after a day. Total waste of money.\nIs this review positive or negative? Answer:"
QUOTED = PROMPT.replace("\n", "\\n")  # as written inside a query string
LABELS = [" positive", " negative", " neutral", " it is hard to say", " mixed feelings"]


def test_distribution_matches_plain_llama_cpp(smollm2, plain_smollm2, clean_cache) -> None:
    source = f'argmax\n    "{QUOTED}[CLS]"\ndistribution\n    CLS in {LABELS!r}\n'
    result = lmlang.run(source, model="smollm2")
    probs = dict(result.distributions["CLS"])
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-9)
    prompt = smollm2.tokenize(PROMPT)
    reference = np.array([plain_logprob(plain_smollm2, prompt, smollm2.tokenize(label)) for label in LABELS])
    expected = np.exp(reference - reference.max())
    expected /= expected.sum()
    assert [probs[label] for label in LABELS] == pytest.approx(list(expected), abs=1e-3)
    best = LABELS[int(np.argmax(reference))]
    assert result.variables["CLS"] == best and result.prompt == PROMPT + best
    assert result.scores["CLS"].logprob == pytest.approx(reference.max(), abs=1e-3)


def test_score_apis_return_plain_log_probabilities(smollm2, plain_smollm2, clean_cache) -> None:
    prompt = smollm2.tokenize(PROMPT)
    reference = [plain_logprob(plain_smollm2, prompt, smollm2.tokenize(label)) for label in LABELS]
    assert lmlang.score(PROMPT, LABELS, model="smollm2") == pytest.approx(reference, abs=1e-3)
    query = lmlang.compile(f'"{QUOTED}[CLS]"')
    assert query.score(LABELS, model="smollm2") == pytest.approx(reference, abs=1e-3)


def test_distribution_over_a_list_computed_at_run_time(smollm2) -> None:
    source = '''argmax
    colours = ["red", "green", "blue"]
    "The colour of the sky is[C]" distribution C in [" " + c for c in colours]
    return C.strip()
'''
    result = lmlang.run(source, model="smollm2")
    assert [c for c, _ in result.distributions["C"]] == [" red", " green", " blue"]
    assert result.return_value == "blue"


def test_all_candidates_are_evaluated_in_one_batch(smollm2, clean_cache, decode_calls) -> None:
    candidates = [f" option number {i}" for i in range(10)]
    scores = lmlang.score("Pick one option:", candidates, model="smollm2")
    assert len(scores) == 10
    # the prompt once (or taken from the cache), then one llama_decode for every candidate's tokens
    assert len([c for c in decode_calls if c >= 10]) == 1 and len(decode_calls) <= 2
