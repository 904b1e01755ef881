"""The decoding strategies on a fake model with scripted logits: exact outcomes, no llama.cpp."""

from __future__ import annotations

import math

import numpy as np
import pytest

import lmlang
from lmlang.decoding import strategies
from lmlang.decoding.catalog import DECODERS
from fakemodel import FakeModel

WORDS = [" a", " b", " x", " y", " z", " w", " yes", " no"]


def trap(text: str) -> dict[str, float]:
    """Greedy's trap: " a" is likelier first, but after it four tokens split the mass; after " b" one is sure."""
    if text.endswith("A:"):
        return {" a": 1.0, " b": 0.5}
    if text.endswith(" a"):
        return {" x": 0.1, " y": 0.0, " z": 0.0, " w": 0.0}
    if text.endswith(" b"):
        return {" x": 5.0}
    return {"<eos>": 10.0}


def logsoftmax(model: FakeModel, text: str, token: str) -> float:
    row = model.logits_after(model.tokenize(text)).astype(np.float64)
    top = row.max()
    return float(row[model.token_id(token)] - top - math.log(np.exp(row - top).sum()))


@pytest.fixture
def fake() -> FakeModel:
    return FakeModel(WORDS, trap)


def run(fake: FakeModel, source: str, **options):
    return lmlang.compile(source).run(session=lmlang.Session(models={"fake": fake}), **options)


def test_every_decoder_of_the_catalog_has_a_strategy() -> None:
    assert set(DECODERS) <= set(strategies.STRATEGIES)


def test_argmax_takes_the_likeliest_token_each_step(fake) -> None:
    result = run(fake, '"A:[V]"')
    assert result.variables["V"] == " a x"
    expected = logsoftmax(fake, "A:", " a") + logsoftmax(fake, "A: a", " x") + logsoftmax(fake, "A: a x", "<eos>")
    assert result.scores["V"].logprob == pytest.approx(expected, abs=1e-6)
    assert result.prompt == "A: a x"


def test_beam_finds_the_likelier_whole_value_greedy_misses(fake) -> None:
    results = run(fake, '"A:[V]"', decoder="beam", decoder_args={"n": 2})
    assert [r.variables["V"] for r in results] == [" b x", " a x"]
    best = logsoftmax(fake, "A:", " b") + logsoftmax(fake, "A: b", " x") + logsoftmax(fake, "A: b x", "<eos>")
    assert results[0].logprob == pytest.approx(best, abs=1e-6)
    assert results[0].logprob > results[1].logprob


def test_best_k_ranks_like_beam(fake) -> None:
    results = run(fake, '"A:[V]"', decoder="best_k", decoder_args={"k": 2})
    assert [r.variables["V"] for r in results] == [" b x", " a x"]


def test_sampling_is_reproducible_by_seed_and_follows_the_scores() -> None:
    even = FakeModel(WORDS, lambda text: {" yes": 0.0, " no": 0.0} if text.endswith("A:") else {"<eos>": 30.0})
    first = run(even, '"A:[V]"', decoder="sample", decoder_args={"n": 16, "seed": 7})
    again = run(even, '"A:[V]"', decoder="sample", decoder_args={"n": 16, "seed": 7})
    assert [r.variables["V"] for r in first] == [r.variables["V"] for r in again]
    assert {r.variables["V"] for r in first} == {" yes", " no"}
    assert all(r.scores["V"].logprob == pytest.approx(math.log(0.5), abs=1e-6) for r in first)


def test_samples_advance_together_one_step_per_token() -> None:
    model = FakeModel(WORDS, lambda text: {" yes": 0.0} if text.endswith("A:") else {"<eos>": 30.0})
    run(model, '"A:[V]"', decoder="sample", decoder_args={"n": 4, "seed": 1})
    # The prompt once, then one batched step for the token all four runs chose (the end needs no evaluation).
    assert model.decode_calls == 2


def test_a_constraint_masks_the_scripted_favourite(fake) -> None:
    result = run(fake, '"A:[V]" where V in [" b x", " a y"]')
    assert result.variables["V"] == " a y"  # " a" is still likelier first; then only " y" is allowed


def test_a_session_runs_only_its_own_models(fake) -> None:
    with pytest.raises(lmlang.ModelError, match="unknown model 'other'"):
        run(fake, '"A:[V]"', model="other")
