"""Choosing the next token from (masked) logits: greedy or sampled.

A row may be a whole vocabulary (262,144 logits for Gemma), so sampling never sorts it or converts it to float64:
a draw is an inverse of the running sum taken per block of 1,024 weights, then inside one block; top-k and top-p
look only at the tokens near the peak, widening the window until it holds every token they could keep.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

_BLOCK = 1024
# Rows longer than this are narrowed to the tokens near the peak before top-k or top-p sorts them.
_WIDE = 4096
# Windows below the peak, in tempered log-probability, tried in turn; e^-64 is below anything float32 can add.
_SPREADS = (8.0, 16.0, 32.0, 64.0)
# Log-weight buckets that find the edge of a wide top-p nucleus without sorting it.
_BUCKETS = 4096


@dataclass
class Sampler:
    """``temperature == 0`` is argmax. ``top_k``/``top_p`` narrow the candidates before sampling."""

    temperature: float = 0.0
    top_k: int = 0
    top_p: float = 1.0
    seed: int | None = None

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.seed)

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0

    def choose(self, logits: np.ndarray) -> int:
        """The position in ``logits`` of the chosen token (its id when ``logits`` is a whole row)."""
        if self.greedy:
            return int(np.argmax(logits))
        peak = float(logits.max())
        if not math.isfinite(peak):  # everything is masked: the caller reports it
            return int(np.argmax(logits))
        if self.top_k or self.top_p < 1.0:
            positions, weights = self._nucleus(logits, peak)
            return int(positions[_draw(weights, self._rng)])
        return _draw(self._weights(logits, peak), self._rng)

    def expand(self, logits: np.ndarray, count: int) -> np.ndarray:
        """The positions in ``logits`` of up to ``count`` distinct allowed tokens to extend a beam with: the most
        likely ones, or (when sampling) ones drawn one after the other without replacement from the tempered
        distribution (the same law as Gumbel top-k)."""
        if self.greedy:
            return _top(logits, count)
        peak = float(logits.max())
        if not math.isfinite(peak):
            return np.zeros(0, np.intp)
        weights = self._weights(logits, peak)
        picked: list[int] = []
        for _ in range(min(count, int(np.count_nonzero(weights)))):
            at = _draw(weights, self._rng)
            picked.append(at)
            weights[at] = 0.0
        return np.array(picked, np.intp)

    def _weights(self, logits: np.ndarray, peak: float) -> np.ndarray:
        """exp((logits - peak) / temperature) in float32: 1 at the peak, 0 where masked."""
        weights = np.subtract(logits, np.float32(peak), dtype=np.float32)
        if self.temperature != 1.0:
            weights *= np.float32(1.0 / self.temperature)
        return np.exp(weights, out=weights)

    def _nucleus(self, logits: np.ndarray, peak: float) -> tuple[np.ndarray, np.ndarray]:
        """The positions top-k then top-p keep and their tempered weights (float64). As usual, top-p counts the
        mass of what top-k kept."""
        positions, weights, total = self._shortlist(logits, peak)
        if self.top_k and len(positions) > self.top_k:
            keep = _heaviest(weights, self.top_k)
            positions, weights = positions[keep], weights[keep]
        if self.top_k:
            total = float(weights.sum())
        if self.top_p < 1.0:
            keep = _heaviest_reaching(weights, self.top_p * total)
            positions, weights = positions[keep], weights[keep]
        return positions, weights

    def _shortlist(self, logits: np.ndarray, peak: float) -> tuple[np.ndarray, np.ndarray, float]:
        """Positions holding every token top-k and top-p could keep, their tempered weights (float64), and the
        tempered mass of the whole row (not needed, and 0, with top-k).

        A window of the tokens within some spread of the peak holds them once it has top_k tokens (top-p then
        works inside those) or, without top-k, once its mass reaches top_p of the row's: the nucleus is the
        likeliest prefix reaching that mass, and the window is a prefix at least that heavy."""
        def weighed(positions: np.ndarray) -> np.ndarray:
            return np.exp((logits[positions].astype(np.float64) - peak) / self.temperature)

        if len(logits) <= _WIDE:
            positions = np.flatnonzero(np.isfinite(logits))
            weights = weighed(positions)
            return positions, weights, float(weights.sum())
        total = 0.0 if self.top_k else float(self._weights(logits, peak).sum(dtype=np.float64))
        for spread in _SPREADS:
            positions = np.flatnonzero(logits >= peak - spread * self.temperature)
            if self.top_k:
                if len(positions) >= self.top_k:
                    return positions, weighed(positions), total
                continue
            weights = weighed(positions)
            if float(weights.sum()) >= self.top_p * total:
                return positions, weights, total
        positions = np.flatnonzero(np.isfinite(logits))
        return positions, weighed(positions), total


def _heaviest(weights: np.ndarray, count: int) -> np.ndarray:
    """Indices of the ``count`` largest weights, largest first (ties: lower index first)."""
    if len(weights) > count:
        candidates = np.argpartition(-weights, count - 1)[:count]
        # A weight equal to the smallest kept one may have been left out for a later index: take ties by index.
        edge = weights[candidates].min()
        candidates = np.union1d(candidates[weights[candidates] > edge], np.flatnonzero(weights == edge))
    else:
        candidates = np.arange(len(weights))
    return candidates[np.argsort(-weights[candidates], kind="stable")][:count]


def _heaviest_reaching(weights: np.ndarray, target: float) -> np.ndarray:
    """Indices of the fewest largest ``weights`` whose sum reaches ``target`` (ties: lower index first).

    Many weights are not sorted: they are bucketed by log-weight, the buckets heavier than the one where the
    running sum crosses the target are kept whole, and only that one is sorted."""
    if len(weights) <= _WIDE:
        order = np.argsort(-weights, kind="stable")
        return order[: int(np.searchsorted(np.cumsum(weights[order]), target)) + 1]
    with np.errstate(divide="ignore"):
        logs = np.log(weights)  # a weight that underflowed to 0 goes to the last bucket
    high = float(logs.max())
    low = max(float(logs.min()), high - 800.0)
    buckets = np.zeros(len(weights), np.intp)
    if high > low:
        buckets = np.minimum((high - logs) * ((_BUCKETS - 1) / (high - low)), _BUCKETS - 1).astype(np.intp)
    running = np.cumsum(np.bincount(buckets, weights=weights, minlength=_BUCKETS))
    edge = min(int(np.searchsorted(running, target)), _BUCKETS - 1)
    heavier = np.flatnonzero(buckets < edge)
    boundary = np.flatnonzero(buckets == edge)
    boundary = boundary[np.argsort(-weights[boundary], kind="stable")]
    needed = target - (running[edge - 1] if edge else 0.0)
    taken = int(np.searchsorted(np.cumsum(weights[boundary]), needed)) + 1
    return np.concatenate([heavier, boundary[:taken]])


def _draw(weights: np.ndarray, rng: np.random.Generator) -> int:
    """An index drawn with probability proportional to ``weights`` (non-negative, some positive).

    The running sum is inverted per block of 1,024 weights (their float32 sums, accumulated in float64), then
    inside the block it falls in: two passes over a 262k row instead of a float64 cumulative sum of it."""
    n = len(weights)
    whole = n - n % _BLOCK
    sums = weights[:whole].reshape(-1, _BLOCK).sum(axis=1)
    if whole < n:
        sums = np.append(sums, weights[whole:].sum())
    bounds = np.cumsum(sums, dtype=np.float64)
    target = rng.random() * bounds[-1]
    block = int(np.searchsorted(bounds, target, side="right"))
    block = _last_positive(sums, min(block, len(sums) - 1))  # rounding at the very end of the row
    start = block * _BLOCK
    inside = np.cumsum(weights[start : start + _BLOCK], dtype=np.float64)
    offset = target - (bounds[block - 1] if block else 0.0)
    at = int(np.searchsorted(inside, offset, side="right"))
    return start + _last_positive(weights[start : start + _BLOCK], min(at, len(inside) - 1))


def _last_positive(values: np.ndarray, at: int) -> int:
    """``at``, or the nearest position before it whose value is positive (a weight of 0 is never drawn)."""
    while at > 0 and not values[at] > 0:
        at -= 1
    return at


def _top(logits: np.ndarray, count: int) -> np.ndarray:
    """The positions of the ``count`` largest finite logits, largest first."""
    positions = np.arange(len(logits))
    if len(logits) > _WIDE:
        peak = float(logits.max())
        for spread in _SPREADS:
            positions = np.flatnonzero(logits >= peak - spread)
            if len(positions) >= count:
                break
        else:
            positions = np.flatnonzero(np.isfinite(logits))
    values = logits[positions]
    if len(positions) > count:
        keep = np.argpartition(values, -count)[-count:]
        positions, values = positions[keep], values[keep]
    order = np.argsort(-values, kind="stable")
    return positions[order][np.isfinite(values[order])]


def log_normalizer(logits: np.ndarray, scratch: np.ndarray | None = None) -> tuple[float, float]:
    """The largest logit and log(sum(exp(logits))), so that ``logits[t] - log_total`` is the log-probability of
    ``t``. ``scratch``, an array like ``logits``, saves an allocation per call.

    exp in float32 (SIMD) into the scratch row and numpy's pairwise float32 sum: within ~1e-8 of an exact float64
    sum on 262k logits, and it spares a float64 conversion of the row (one of the few full-row passes per token).
    """
    peak = logits.max()
    out = np.subtract(logits, peak, out=scratch)
    np.exp(out, out=out)
    return float(peak), float(peak) + math.log(float(out.sum()))


def top_two_margin(logits: np.ndarray) -> float:
    """Probability of the most likely token minus that of the second (the first-token margin)."""
    if len(logits) < 2:
        return 1.0
    top = np.partition(logits, -2)[-2:].astype(np.float64)
    peak = float(logits.max())
    total = float(np.exp(logits - peak, dtype=np.float64).sum())
    probs = np.exp(top - peak) / total
    return float(abs(probs[1] - probs[0]))
