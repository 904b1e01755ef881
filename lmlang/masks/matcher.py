"""Token masks: which tokens of a vocabulary may come next, for each state of an automaton.

For a state never seen before, every token of the vocabulary is walked through the automaton at once (numpy, one
slice of tokens per byte position, switching to a list of survivors once most tokens have died); the result is
kept per (automaton, vocabulary) for the life of the process, so a step in a state seen before -- in this run or
an earlier run of the same query -- is a lookup plus one numpy operation on the logits.

A bound on the number of characters is a counter next to the automaton state rather than part of the automaton
(which would multiply its states by the bound): each state's allowed tokens are sorted by how many characters
they need at least (their own plus the fewest that must still follow), and the tokens that fit are a prefix.

Applying a mask costs what it writes: with few allowed tokens, the logits row is filled with -inf around them
(a pass over the row, about 16 µs for Gemma's 262,144 tokens); with few disallowed ones, -inf is written at
those only; otherwise a stored 0/-inf row is added. :meth:`TokenMatcher.masked_copy` does the same into another
buffer (no separate copy of the backend's read-only logits), and :meth:`TokenMatcher.allowed_logits` returns only
the allowed tokens and their logits, touching nothing else. A decoder calls :meth:`TokenMatcher.choices`, which
takes the sparse way whenever at most 1,024 tokens are allowed: a cached step then costs well under a
microsecond whatever the vocabulary's size.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable

import numpy as np

from lmlang.caches import process_cache
from lmlang.masks.automaton import DEAD, Automaton
from lmlang.masks.vocabulary import Vocabulary

_NEG_INF = np.float32(-np.inf)
# Up to this many allowed tokens, saving and restoring their logits around a fill of -inf beats adding a stored
# 0/-inf row (measured: a fill and an add both cost about one pass over the logits; the gather and scatter
# around the fill cost ~2 ns per allowed token).
_FEW = 1024
# Writing -inf at the disallowed ids beats a pass over the row while they are fewer than this share of the
# vocabulary (measured: ~0.75 ns per scattered id against ~0.1 ns per element of a pass).
_FEW_BLOCKED_SHARE = 12
# Bias and keep rows (one float32 per token) kept per automaton and vocabulary, most recently used first.
_BIAS_BUDGET_BYTES = 256 << 20


class _StateMask:
    """What one automaton state allows on one vocabulary."""

    __slots__ = ("ids", "ends", "ids_by_need", "need_sorted", "blocked", "most_need")

    def __init__(self, ids: np.ndarray, ends: np.ndarray) -> None:
        self.ids = ids  # allowed token ids (EOG included where the state accepts)
        self.ends = ends  # the state each allowed token leads to (EOG: the state itself)
        self.ids_by_need: np.ndarray | None = None
        self.need_sorted: np.ndarray | None = None
        self.blocked: np.ndarray | None = None  # the disallowed ids, kept when they are few
        self.most_need: int | None = None  # a bound on the characters any allowed token commits the value to


class _Masks:
    """One automaton bound to one vocabulary: per-state masks, computed on first use."""

    def __init__(self, automaton: Automaton, vocab: Vocabulary) -> None:
        self.automaton = automaton
        self.vocab = vocab
        self.flat_table = automaton.table.reshape(-1)
        self.states: dict[int, _StateMask] = {}
        self.bias_rows: OrderedDict[tuple[int, float], np.ndarray] = OrderedDict()
        self.bias_limit = max(4, _BIAS_BUDGET_BYTES // (4 * max(1, vocab.size)))
        self.allowed_rows: OrderedDict[tuple[int, int | None], np.ndarray] = OrderedDict()

    def state(self, s: int) -> _StateMask:
        found = self.states.get(s)
        if found is None:
            found = self.states[s] = self._compute(s)
        return found

    def _compute(self, s: int) -> _StateMask:
        ends = self.walk(s)
        positions = np.flatnonzero(ends)
        ids = self.vocab.order[positions]
        ends = ends[positions]
        if self.automaton.accept[s] and len(self.vocab.eog_ids):
            ids = np.concatenate([self.vocab.eog_ids, ids])
            ends = np.concatenate([np.full(len(self.vocab.eog_ids), s, np.int32), ends])
        return _StateMask(ids.astype(np.intp), ends.astype(np.int32))

    def walk(self, s: int) -> np.ndarray:
        """The state each text token leads to from ``s`` (0: dead), in the vocabulary's layout order."""
        vocab, table = self.vocab, self.flat_table
        if not vocab.active:
            return np.zeros(0, np.int32)
        states = np.full(vocab.active[0], s, dtype=np.int32)
        for i, active in enumerate(vocab.active):
            column = vocab.columns[i]
            states[:active] = table[(states[:active] << 8) | column[:active]]
            alive = np.count_nonzero(states[:active])
            if alive * 4 < active:
                return self._walk_survivors(states, i + 1)
        return states

    def _walk_survivors(self, states: np.ndarray, start: int) -> np.ndarray:
        # Few tokens still alive: follow only them. Tokens shorter than `start` bytes are already final.
        vocab, table = self.vocab, self.flat_table
        positions = np.flatnonzero(states[: vocab.active[start - 1]])
        current = states[positions]
        for i in range(start, len(vocab.active)):
            active = vocab.active[i]
            still = np.searchsorted(positions, active)  # positions are ascending; those >= active have ended
            states[positions[still:]] = current[still:]
            positions, current = positions[:still], current[:still]
            if not len(positions):
                break
            current = table[(current << 8) | vocab.columns[i][positions]]
            keep = current != DEAD
            states[positions[~keep]] = DEAD
            positions, current = positions[keep], current[keep]
        states[positions] = current
        return states

    def by_need(self, s: int) -> tuple[np.ndarray, np.ndarray]:
        """The allowed ids of ``s`` sorted by the fewest characters each commits the value to, and those counts."""
        mask = self.state(s)
        if mask.ids_by_need is None:
            # EOG tokens add no characters and stay in an accepting state: they need nothing.
            need = (self.vocab.chars_by_id[mask.ids] + self.automaton.min_chars[mask.ends]).astype(np.int32)
            # numpy's stable sort of small integers is a radix sort: 8-bit keys sort 3x faster than 16-bit ones.
            most = need.max(initial=0)
            keys = need.astype(np.uint8) if most < 256 else need.astype(np.int16) if most < 32000 else need
            order = np.argsort(keys, kind="stable")
            mask.ids_by_need, mask.need_sorted = mask.ids[order], need[order]
        return mask.ids_by_need, mask.need_sorted

    def most_need(self, s: int) -> int:
        """At least the most characters an allowed token of ``s`` commits the value to: while the bound leaves
        that many, every allowed token fits and the tokens need not be sorted by need."""
        mask = self.state(s)
        if mask.most_need is None:
            ends = self.automaton.min_chars[mask.ends]
            mask.most_need = self.vocab.most_chars + int(ends.max(initial=0))
        return mask.most_need

    def blocked(self, s: int) -> np.ndarray | None:
        """The ids ``s`` does not allow, when they are few enough to write -inf at them one by one; else None."""
        mask = self.state(s)
        size = self.vocab.size
        if mask.blocked is None and size - len(mask.ids) <= size // _FEW_BLOCKED_SHARE:
            row = np.ones(size, dtype=bool)
            row[mask.ids] = False
            mask.blocked = np.flatnonzero(row)
        return mask.blocked

    def bias(self, s: int) -> np.ndarray:
        """0 at the allowed ids, -inf elsewhere: added to a row, it masks it."""
        return self._row(s, 0, _NEG_INF)

    def keep(self, s: int) -> np.ndarray:
        """1 at the allowed ids, 0 elsewhere: a dot product with it sums over the allowed tokens."""
        return self._row(s, 1, 0)

    def _row(self, s: int, allowed: float, blocked: float) -> np.ndarray:
        def make() -> np.ndarray:
            row = np.full(self.vocab.size, blocked, dtype=np.float32)
            row[self.state(s).ids] = allowed
            return row

        return self.remember(self.bias_rows, (s, allowed), make)

    def remember(self, rows: OrderedDict, key: tuple, make: Callable[[], np.ndarray]) -> np.ndarray:
        """``rows[key]``, made on first use; the least recently used rows go past the budget."""
        row = rows.get(key)
        if row is None:
            row = rows[key] = make()
            if len(rows) > self.bias_limit:
                rows.popitem(last=False)
        else:
            rows.move_to_end(key)
        return row


MASKS_KEPT = 64  # automata bound to a vocabulary: their per-state masks are the size of the vocabulary

_MASKS = process_cache("masks", MASKS_KEPT)


def _masks_for(automaton: Automaton, vocab: Vocabulary) -> _Masks:
    return _MASKS.get_or_make((automaton.key, vocab.key, vocab.size), lambda: _Masks(automaton, vocab))


class TokenMatcher:
    """An automaton (and optionally a bound on characters) bound to one vocabulary. States are ints."""

    def __init__(self, automaton: Automaton, vocab: Vocabulary, max_chars: int | None = None) -> None:
        self.automaton = automaton
        self.vocab = vocab
        self.max_chars = max_chars
        self._masks = _masks_for(automaton, vocab)
        self._width = automaton.n_states
        self._eog = vocab.eog

    # A state is the automaton state, plus (with a bound) width * characters used so far.
    def _split(self, state: int) -> tuple[int, int]:
        used, s = divmod(state, self._width)
        return s, used

    def start(self) -> int:
        return self.automaton.start

    def accepts(self, state: int) -> bool:
        return state >= 0 and bool(self.automaton.accept[state % self._width])

    def forced(self, state: int) -> bytes | None:
        return self.automaton.forced(state % self._width) if state > 0 else None

    def sole(self, state: int) -> int | None:
        """The one token allowed next, when exactly one is and the value may not end here; else None."""
        if state <= DEAD:
            return None
        s = state % self._width
        if self.automaton.accept[s] or self.automaton.out_degree[s] != 1:  # more than one byte: more than one token
            return None
        ids, k = self._allowed_ids(state)
        return int(ids[0]) if k == 1 else None

    def forced_text(self, state: int) -> bytes:
        """The bytes every value from ``state`` goes on with before it may end or branch (b"": none)."""
        if state <= DEAD:
            return b""
        return self.automaton.forced_text(state % self._width)

    def only_end(self, state: int) -> bool:
        """Whether the value is complete here and nothing may extend it."""
        if state <= DEAD:
            return False
        s = state % self._width
        return bool(self.automaton.accept[s]) and not self.automaton.out_degree[s]

    def advance(self, state: int, token: int) -> int:
        if state < 0:
            return -1
        if token in self._eog:
            return state if self.accepts(state) else -1
        if token in self.vocab.special or not 0 <= token < self.vocab.size:
            return -1
        s, used = self._split(state)
        data = self.vocab.token_bytes[token]
        nxt = self.automaton.step(s, data) if data else DEAD
        if nxt == DEAD:
            return -1
        if self.max_chars is None:
            return nxt
        used += int(self.vocab.chars_by_id[token])
        if used + int(self.automaton.min_chars[nxt]) > self.max_chars:
            return -1
        return used * self._width + nxt

    def _allowed_ids(self, state: int) -> tuple[np.ndarray, int]:
        """The allowed ids (a superset, in order) and how many of them, from the front, are allowed."""
        s, used = self._split(state)
        if self.max_chars is None or self.max_chars - used >= self._masks.most_need(s):
            ids = self._masks.state(s).ids
            return ids, len(ids)
        ids, need = self._masks.by_need(s)
        # The bound as the array's own dtype: a Python int would make numpy convert the whole array first.
        return ids, int(np.searchsorted(need, need.dtype.type(self.max_chars - used), side="right"))

    def mask_logits(self, state: int, logits: np.ndarray) -> None:
        """Disallowed tokens' logits become -inf, in place."""
        self.masked_copy(state, logits, logits)

    def masked_copy(self, state: int, logits: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """``logits`` with the disallowed tokens at -inf, written into ``out`` (a new array if None; may be
        ``logits`` itself). ``logits`` may be read-only: this replaces a copy followed by :meth:`mask_logits`."""
        if out is None:
            out = np.empty_like(logits)
        if state <= DEAD:
            out.fill(_NEG_INF)
            return out
        ids, k = self._allowed_ids(state)
        if k <= _FEW:
            kept = logits[ids[:k]]
            out.fill(_NEG_INF)
            out[ids[:k]] = kept
            return out
        s = state % self._width
        blocked = self._masks.blocked(s)
        if blocked is not None:
            if out is not logits:
                np.copyto(out, logits)
            out[blocked] = _NEG_INF
        else:
            np.add(logits, self._masks.bias(s), out=out)
        if k < len(ids):
            out[ids[k:]] = _NEG_INF
        return out

    def allowed_logits(
        self, state: int, logits: np.ndarray, most: int = _FEW
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """The allowed ids (in no particular order) and their logits, when at most ``most`` are allowed; else None.

        Touches only those logits: a decoder choosing among them (argmax, sampling, log-probabilities) then never
        writes the vocabulary-wide row. The arrays are empty when no token is allowed.
        """
        if state <= DEAD:
            return np.zeros(0, np.intp), np.zeros(0, logits.dtype)
        ids, k = self._allowed_ids(state)
        if k > most:
            return None
        chosen = ids[:k]
        return chosen, logits[chosen]

    def choices(self, state: int, logits: np.ndarray, out: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
        """What a decoder chooses the next token from: the allowed ids and their logits when they are few
        (nothing vocabulary-wide is written), else None and the masked row, written into ``out``."""
        sparse = self.allowed_logits(state, logits)
        if sparse is not None and len(sparse[0]):  # none allowed: the row of -inf tells the decoder so
            return sparse
        return None, self.masked_copy(state, logits, out)

    def allowed_mass(self, state: int, weights: np.ndarray, total: float) -> float:
        """The sum of ``weights`` (a row over the vocabulary, e.g. unnormalized probabilities summing to ``total``)
        over the allowed tokens, at the cost of the fewer of the allowed and the disallowed tokens when they are
        few, of a dot product otherwise."""
        if state <= DEAD:
            return 0.0
        ids, k = self._allowed_ids(state)
        if k <= _FEW:
            return float(weights[ids[:k]].sum(dtype=np.float64))
        s = state % self._width
        blocked = self._masks.blocked(s)
        if blocked is not None:
            mass = total - float(weights[blocked].sum(dtype=np.float64))
        else:
            mass = float(np.dot(weights, self._masks.keep(s)))
        if k < len(ids):
            mass -= float(weights[ids[k:]].sum(dtype=np.float64))
        return max(mass, 0.0)

    def allowed(self, state: int) -> np.ndarray:
        """A boolean row over the vocabulary, read-only: which tokens may come next. This is the state's mask as
        other engines compute it (a bitmask per step); it is made once per state and kept."""

        def make() -> np.ndarray:
            row = np.zeros(self.vocab.size, dtype=bool)
            if state > DEAD:
                ids, k = self._allowed_ids(state)
                row[ids[:k]] = True
            row.flags.writeable = False
            return row

        return self._masks.remember(self._masks.allowed_rows, (state, self.max_chars), make)


class ListingMatcher:
    """The mask operations of a matcher that lists each state's allowed ids (:meth:`ids`, ascending; none where
    the state is dead) on a vocabulary of :attr:`size` tokens: grammars, listed values, healed bytes."""

    size: int

    def ids(self, state: int) -> np.ndarray:
        raise NotImplementedError

    def choices(self, state: int, logits: np.ndarray, out: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
        """As :meth:`TokenMatcher.choices`: the allowed ids and their logits when they are few, else None and the
        masked row, written into ``out``."""
        ids = self.ids(state)
        if 0 < len(ids) <= _FEW:
            return ids, logits[ids]
        return None, self.masked_copy(state, logits, out)

    def masked_copy(self, state: int, logits: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        out = np.empty_like(logits) if out is None else out
        ids = self.ids(state)
        kept = logits[ids]
        out.fill(_NEG_INF)
        out[ids] = kept
        return out

    def allowed_mass(self, state: int, weights: np.ndarray, total: float) -> float:
        return float(weights[self.ids(state)].sum(dtype=np.float64))

    def allowed(self, state: int) -> np.ndarray:
        row = np.zeros(self.size, dtype=bool)
        row[self.ids(state)] = True
        return row
