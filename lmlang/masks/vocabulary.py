"""A model's tokens as bytes, laid out for walking every token through an automaton at once."""

from __future__ import annotations

import functools

import numpy as np

_CHAR_START = np.array([0 if 0x80 <= b < 0xC0 else 1 for b in range(256)], dtype=np.int16)


class Vocabulary:
    """The bytes of each token of one model. Build once per model: the layout costs a fraction of a second.

    ``special`` tokens (control, unknown, unused) never match text; ``eog`` tokens end a generation and are
    allowed only where the value may end. ``key`` identifies the model, so masks can be cached per model.
    """

    def __init__(self, token_bytes: list[bytes], special: frozenset[int], eog: frozenset[int], key: str) -> None:
        self.token_bytes = token_bytes
        self.special = frozenset(special)
        self.eog = frozenset(eog)
        self.key = key
        self.size = len(token_bytes)
        self.eog_ids = np.array(sorted(self.eog), dtype=np.intp)
        self._layout()

    def _layout(self) -> None:
        # Text tokens sorted by byte length, longest first: the tokens still being read at byte i are then a
        # prefix [0, active[i]) of the order, and a walk processes one contiguous slice per byte position.
        lengths = np.array(
            [0 if (i in self.special or i in self.eog) else len(b) for i, b in enumerate(self.token_bytes)],
            dtype=np.int64,
        )
        order = np.argsort(-lengths, kind="stable")
        n_text = int(np.count_nonzero(lengths))
        self.order = order[:n_text].astype(np.intp)  # token ids of text tokens, longest first
        sorted_lengths = lengths[self.order]
        longest = int(sorted_lengths[0]) if n_text else 0
        flat = np.frombuffer(b"".join(self.token_bytes[t] for t in self.order.tolist()), dtype=np.uint8)
        offsets = np.concatenate([[0], np.cumsum(sorted_lengths)[:-1]]).astype(np.int64)
        self.active = [int(np.count_nonzero(sorted_lengths > i)) for i in range(longest)]
        self.columns = np.zeros((longest, n_text), dtype=np.uint8)
        for i, active in enumerate(self.active):
            self.columns[i, :active] = flat[offsets[:active] + i]
        # Characters each token adds (UTF-8 lead bytes), in layout order: for length bounds in characters.
        self.chars = (_CHAR_START[self.columns] * (np.arange(longest)[:, None] < sorted_lengths[None, :])).sum(
            axis=0, dtype=np.int32
        )

    @functools.cached_property
    def most_chars(self) -> int:
        """The most characters one token adds."""
        return int(self.chars.max(initial=0))

    @functools.cached_property
    def chars_by_id(self) -> np.ndarray:
        out = np.zeros(self.size, dtype=np.int32)
        out[self.order] = self.chars
        return out

    def __repr__(self) -> str:
        return f"Vocabulary({self.key!r}, {self.size} tokens)"
