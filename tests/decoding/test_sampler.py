"""The sampler against the distributions it claims to draw from, on short rows and on vocabulary-wide ones."""

from __future__ import annotations

import numpy as np
import pytest

from lmlang.decoding.sampler import Sampler

DRAWS = 4000


def tempered(logits: np.ndarray, temperature: float) -> np.ndarray:
    """The reference: softmax(logits / temperature) in float64, 0 where masked."""
    scaled = logits.astype(np.float64) / temperature
    weights = np.exp(scaled - scaled[np.isfinite(scaled)].max())
    return weights / weights.sum()


def row(size: int, seed: int = 0) -> np.ndarray:
    """Logits shaped like a model's: a few likely tokens over a long tail, some masked."""
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal(size).astype(np.float32) * 2
    logits[rng.choice(size, 6, replace=False)] += np.float32(9.0)
    logits[rng.choice(size, size // 3, replace=False)] = -np.inf
    return logits


def frequencies(sampler: Sampler, logits: np.ndarray) -> np.ndarray:
    counts = np.bincount([sampler.choose(logits) for _ in range(DRAWS)], minlength=len(logits))
    return counts / DRAWS


def assert_close(observed: np.ndarray, expected: np.ndarray) -> None:
    """Observed frequencies against probabilities, per bin: the 8 likeliest tokens one by one, then the rest in
    4 bins of about equal probability (a token-by-token test of 262,144 rare tokens would mostly test noise).
    Each bin within 5 binomial standard deviations."""
    order = np.argsort(-expected, kind="stable")
    bins = np.empty(len(expected), np.intp)
    bins[order[:8]] = np.arange(min(8, len(order)))
    rest = order[8:]
    if len(rest):
        tail = np.cumsum(expected[rest]) / max(expected[rest].sum(), 1e-300)
        bins[rest] = 8 + np.minimum((tail * 4).astype(np.intp), 3)
    want = np.bincount(bins, weights=expected, minlength=12)
    got = np.bincount(bins, weights=observed, minlength=12)
    spread = 5 * np.sqrt(want * (1 - want) / DRAWS) + 1 / DRAWS
    assert np.all(np.abs(got - want) <= spread), (got, want)


@pytest.mark.parametrize("size", [7, 300, 262_144])
@pytest.mark.parametrize("temperature", [0.5, 1.0, 1.7])
def test_sampling_follows_the_tempered_distribution(size: int, temperature: float) -> None:
    logits = row(size)
    observed = frequencies(Sampler(temperature, seed=1), logits)
    assert observed[~np.isfinite(logits)].sum() == 0
    assert_close(observed, tempered(logits, temperature))


def nucleus_reference(logits: np.ndarray, temperature: float, top_k: int, top_p: float) -> np.ndarray:
    """top-k, then top-p over what top-k kept, by a full sort: the probabilities sampling must follow."""
    probs = tempered(logits, temperature)
    order = np.argsort(-probs, kind="stable")
    order = order[probs[order] > 0]
    if top_k:
        order = order[:top_k]
    kept = probs[order] / probs[order].sum()
    if top_p < 1.0:
        order = order[: int(np.searchsorted(np.cumsum(kept), top_p)) + 1]
    out = np.zeros_like(probs)
    out[order] = probs[order] / probs[order].sum()
    return out


@pytest.mark.parametrize("size", [300, 49_152, 262_144])
@pytest.mark.parametrize("top_k, top_p", [(3, 1.0), (0, 0.5), (0, 0.95), (5, 0.8)])
def test_top_k_and_top_p_keep_exactly_the_nucleus(size: int, top_k: int, top_p: float) -> None:
    logits = row(size, seed=2)
    expected = nucleus_reference(logits, 0.8, top_k, top_p)
    observed = frequencies(Sampler(0.8, top_k, top_p, seed=3), logits)
    assert set(np.flatnonzero(observed)) <= set(np.flatnonzero(expected))
    assert_close(observed, expected)


def test_a_wide_row_with_one_allowed_token_at_its_very_end_always_draws_it() -> None:
    logits = np.full(262_144, -np.inf, np.float32)
    logits[-1] = 0.0
    sampler = Sampler(1.0, seed=0)
    assert {sampler.choose(logits) for _ in range(50)} == {262_143}
    assert Sampler(1.0, top_p=0.5, seed=0).choose(logits) == 262_143


def test_seeded_samplers_repeat_themselves() -> None:
    logits = row(262_144)
    first = [Sampler(0.9, seed=7).choose(logits) for _ in range(3)]
    assert len(set(first)) == 1
    drawn = Sampler(0.9, seed=7)
    again = Sampler(0.9, seed=7)
    assert [drawn.choose(logits) for _ in range(20)] == [again.choose(logits) for _ in range(20)]


@pytest.mark.parametrize("size", [300, 262_144])
def test_greedy_expansion_is_the_best_allowed_tokens_in_order(size: int) -> None:
    logits = row(size, seed=4)
    finite = np.flatnonzero(np.isfinite(logits))
    best = finite[np.argsort(-logits[finite], kind="stable")][:4]
    assert list(Sampler().expand(logits, 4)) == list(best)
    few = np.full(size, -np.inf, np.float32)
    few[[5, 9]] = [1.0, 2.0]
    assert list(Sampler().expand(few, 4)) == [9, 5]


@pytest.mark.parametrize("size", [300, 262_144])
def test_sampled_expansion_draws_distinct_tokens_first_one_as_choose_would(size: int) -> None:
    logits = row(size, seed=5)
    sampler = Sampler(1.0, seed=6)
    firsts = []
    for _ in range(2000):
        picked = sampler.expand(logits, 3)
        assert len(set(picked)) == 3 and np.all(np.isfinite(logits[picked]))
        firsts.append(picked[0])
    expected = tempered(logits, 1.0)
    observed = np.bincount(firsts, minlength=size) / len(firsts)
    top = np.argsort(-expected)[:6]
    assert np.all(np.abs(observed[top] - expected[top]) <= 5 * np.sqrt(expected[top] / len(firsts)) + 0.002)
    few = np.full(size, -np.inf, np.float32)
    few[[3, 8]] = 0.0
    assert sorted(Sampler(1.0, seed=1).expand(few, 5)) == [3, 8]
