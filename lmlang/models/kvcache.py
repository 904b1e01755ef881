"""Reuse of evaluated prompts across runs: a pool of idle KV-cache sequences.

A run that starts with tokens some earlier run already evaluated (the same query again, another sample of it,
a cascade stage re-running a block) takes over or forks that earlier sequence instead of evaluating the shared
prefix again.

The reuse is exact in what it keeps but not bit for bit in what follows: llama.cpp's logits depend on how tokens
were batched and on where in the cache other sequences' cells lie (by up to half a logit on SmolLM2 Q4_1), and a
re-used prompt's last token is evaluated again on its own. A near tie can then go the other way, so reuse across
runs is opt-in (``Query.run(..., reuse_prompts=True)``); by default each run starts from an empty cache and gives
what a fresh process gives.
"""

from __future__ import annotations

from typing import Any, Sequence as Seq


class SequencePool:
    """Idle sequences of one model, most recently used last; at most ``capacity`` are kept."""

    def __init__(self, model: Any, capacity: int = 4) -> None:
        self.model = model
        self.capacity = capacity
        self._idle: list[Any] = []

    def sequence_for(self, tokens: Seq[int]) -> tuple[Any, int]:
        """A sequence whose cache holds ``tokens``, and how many of them had to be evaluated."""
        best, common = None, 0
        for seq in self._idle:
            shared = _common_prefix(seq.tokens, tokens)
            if shared > common:
                best, common = seq, shared
        rewound = 0
        if best is None:
            seq = self.model.new_sequence()
        elif common == len(best.tokens):
            self._idle.remove(best)
            seq = best
        else:
            seq = best.fork()
            seq.truncate(common)
            rewound = 1  # the last kept token is evaluated again, for fresh logits
        if common < len(tokens):
            seq.append(list(tokens[common:]))
        evaluated = len(tokens) - common + rewound
        return seq, evaluated

    def give_back(self, seq: Any) -> None:
        """Keep ``seq`` for later runs to start from; the oldest idle one is released past capacity."""
        self._idle.append(seq)
        while len(self._idle) > self.capacity:
            self._idle.pop(0).release()


    def clear(self) -> None:
        """Release every idle sequence."""
        while self._idle:
            self._idle.pop().release()


def _common_prefix(a: Seq[int], b: Seq[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i
