"""Port of LMQL's test_distribution.py and test_beam_in.py: a distribution clause without other holes, and beam
search over holes restricted to a list."""

from __future__ import annotations

import pytest

import lmlang.lmql as lmql

pytestmark = [pytest.mark.model, pytest.mark.usefixtures("smollm2")]

CHOICES = [" positive", " neutral", " negative"]


@lmql.query(model=lmql.model("smollm2"))
def distribution_no_vars():
    '''lmql
    argmax
        "Select something"
        "Choice: [CLS]"
    distribution
        CLS in [" positive", " neutral", " negative"]
    '''


def test_distribution_without_other_holes() -> None:
    result = distribution_no_vars()
    assert result.variables["CLS"] in CHOICES
    candidates = result.distributions["CLS"]
    assert sorted(c for c, _ in candidates) == sorted(CHOICES)
    assert sum(p for _, p in candidates) == pytest.approx(1.0, abs=1e-6)
    assert max(candidates, key=lambda cp: cp[1])[0] == result.variables["CLS"]


@lmql.query
def beam_in():
    '''lmql
    beam(n=4)
        """English to French Translation:
        English: I am going to the store
        French: [word] [word] [word]
        """
    from
        "smollm2"
    where
        word in ["cat", "dog", "rabbit"]
    '''


def test_beam_with_list_constraint() -> None:
    results = beam_in()
    assert len(results) == 4
    texts = [r.prompt for r in results]
    assert len(set(texts)) == 4  # four different beams
    for result in results:
        assert result.variables["word"] in ("cat", "dog", "rabbit")
        tail = result.prompt.split("French: ")[-1].split()
        assert len(tail) == 3 and all(w in ("cat", "dog", "rabbit") for w in tail)
    logprobs = [r.logprob for r in results]
    assert logprobs == sorted(logprobs, reverse=True)  # ranked best first
