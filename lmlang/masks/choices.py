"""Masks for a hole with few possible values (``X in ["positive", "negative"]``): each value only as the model's
tokenizer spells it.

A byte automaton allows every token path that spells a value: `` positive`` in one token, but also `` `` then
``positive``, or `` p`` then ``ositive``. A model has rarely seen those other spellings, so their probabilities
are noise: greedy decoding can take `` `` because the space alone is likely, then be forced into a word it would
not have chosen, and the first token's margin then compares a space with a word. So where the values can be
listed (:func:`lmlang.masks.automaton.enumerate_values`), each is tokenized as the tokenizer does and the hole
follows a trie of those token sequences: every step chooses between values (or the shared start of several), the
first token's margin compares the values' first tokens, and a value is complete exactly where its tokens end.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np

from lmlang.masks.matcher import ListingMatcher


class ChoiceMatcher(ListingMatcher):
    """The token sequences ``spellings`` (each value's tokens) as a trie on one vocabulary; states are ints, the
    trie's nodes (1: the root; below 1: dead). Speaks the decoder's matcher protocol."""

    def __init__(self, spellings: Sequence[Sequence[int]], token_bytes: list[bytes], eog: Collection[int]) -> None:
        self._pieces = token_bytes
        self.size = len(token_bytes)
        self._eog = frozenset(eog)
        self._eog_ids = np.array(sorted(self._eog), dtype=np.intp)
        self._children: list[dict[int, int]] = [{}, {}]  # node 0: dead
        self._ends: list[bool] = [False, False]
        for tokens in spellings:
            node = 1
            for token in tokens:
                child = self._children[node].get(token)
                if child is None:
                    child = len(self._children)
                    self._children.append({})
                    self._ends.append(False)
                    self._children[node][token] = child
                node = child
            self._ends[node] = True
        self._ids: dict[int, np.ndarray] = {}
        self._values = self._count_values()

    def _count_values(self) -> list[int]:
        counts = [0] * len(self._children)
        for node in range(len(self._children) - 1, 0, -1):  # a child is always numbered after its parent
            counts[node] = int(self._ends[node]) + sum(counts[c] for c in self._children[node].values())
        return counts

    def start(self) -> int:
        return 1 if self._values[1] else -1

    def ids(self, state: int) -> np.ndarray:
        """The allowed token ids of ``state``, ascending (an end of text where a value is complete)."""
        if state <= 0:
            return np.zeros(0, np.intp)
        found = self._ids.get(state)
        if found is None:
            ids = list(self._children[state])
            found = np.array(sorted(ids), dtype=np.intp)
            if self._ends[state]:
                found = np.union1d(found, self._eog_ids).astype(np.intp)
            self._ids[state] = found
        return found

    def advance(self, state: int, token: int) -> int:
        if state <= 0:
            return -1
        if token in self._eog:
            return state if self._ends[state] else -1
        return self._children[state].get(token, -1)

    def accepts(self, state: int) -> bool:
        return state > 0 and self._ends[state]

    def forced(self, state: int) -> bytes | None:
        """The rest of the only value left, when one is left and it goes on (else None)."""
        if state <= 0 or self._values[state] != 1 or self._ends[state]:
            return None
        text = bytearray()
        while not self._ends[state]:
            (token, state), = self._children[state].items()
            text += self._pieces[token]
        return bytes(text)

    def sole(self, state: int) -> int | None:
        if state <= 0 or self._ends[state] or len(self._children[state]) != 1:
            return None
        return next(iter(self._children[state]))

    def forced_text(self, state: int) -> bytes:
        text = bytearray()
        while state > 0 and not self._ends[state] and len(self._children[state]) == 1:
            (token, state), = self._children[state].items()
            text += self._pieces[token]
        return bytes(text)

    def only_end(self, state: int) -> bool:
        return state > 0 and self._ends[state] and not self._children[state]
