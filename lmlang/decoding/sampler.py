"""Choosing the next token from (masked) logits: greedy or sampled."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


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
        scaled = logits.astype(np.float64) / self.temperature
        candidates = np.flatnonzero(np.isfinite(scaled))
        if not len(candidates):  # everything is masked: the caller reports it
            return int(np.argmax(logits))
        values = scaled[candidates]
        if self.top_k and self.top_k < len(candidates):
            keep = np.argpartition(values, -self.top_k)[-self.top_k :]
            candidates, values = candidates[keep], values[keep]
        probs = np.exp(values - values.max())
        probs /= probs.sum()
        if self.top_p < 1.0:
            order = np.argsort(-probs)
            cumulative = np.cumsum(probs[order])
            cut = int(np.searchsorted(cumulative, self.top_p)) + 1
            order = order[:cut]
            candidates, probs = candidates[order], probs[order] / probs[order].sum()
        return int(candidates[self._rng.choice(len(candidates), p=probs)])

    def expand(self, logits: np.ndarray, count: int) -> np.ndarray:
        """The positions in ``logits`` of up to ``count`` distinct allowed tokens to extend a beam with: the most
        likely ones, or (when sampling) ones drawn without replacement from the tempered distribution (Gumbel
        top-k)."""
        keys = logits.astype(np.float64)
        if not self.greedy:
            keys = keys / self.temperature + self._rng.gumbel(size=keys.shape)
        count = min(count, len(keys))
        best = np.argpartition(keys, -count)[-count:]
        best = best[np.argsort(-keys[best])]
        return best[np.isfinite(logits[best])]


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
