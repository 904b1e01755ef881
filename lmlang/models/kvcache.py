"""Reuse of evaluated prompts: saved prompt states across runs, and idle sequences within one.

**Saved prompts (the default).** Every run starts from an empty cache, so that its result never depends on what
ran before (llama.cpp's numbers depend on where a token's cells lie in the cache and on how many tokens shared
its llama_decode call). :class:`PromptCache` keeps that guarantee and still skips evaluating a prompt twice: the
backend evaluates a sequence in blocks aligned to fixed positions (:data:`BLOCK`), so the state after a run's
first blocks is the same whichever run computed it. When a run's first text is evaluated, its state is saved
(bounded in bytes, least recently used first out); a later run whose prompt starts with the same blocks restores
them into its empty cache, at the cells a fresh evaluation would use, and evaluates only the rest. Its numbers
are bit for bit those of a run that evaluated everything (``tests/models/test_prompt_cache.py``). An identical
prompt restores the logits too and evaluates nothing. On a model with sliding-window layers, states are kept
shorter than the window (see :meth:`PromptCache._longest_state`).

**Runs on several threads** share decode steps (lmlang.models.batching), so their numbers are not those of a
run alone anyway: while other runs use the model, a run restores the best saved prompt into the cache as it is
(wherever there is room) instead of evaluating it, and saves nothing (a state computed beside other runs is not
the one a run alone reaches).

**Idle sequences (``reuse_prompts=True``).** :class:`SequencePool` also keeps the sequences of finished prompts
in the cache, so that a cascade stage re-running a block, or a run that asks for it, forks one instead of
evaluating a shared prefix again. Forking shares cells with other sequences, which changes the layout: exact,
but not bit for bit what a fresh run computes, hence opt-in across runs.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Sequence as Seq

import numpy as np

from lmlang.errors import UsageError

# The backend evaluates a sequence's tokens in llama_decode calls that start at multiples of this position.
# llama.cpp's numbers for a token depend on how many tokens shared its call, so a fixed blocking makes what a run
# computes depend only on its tokens, and a state saved after some blocks is the one any run reaches there.
# Measured on both packaged models: prefill is as fast in blocks of 64 as of 512.
BLOCK = 64
PROMPT_BYTES = 256 << 20  # saved prompt states per model: ~11,000 tokens of SmolLM2, ~18,000 of Gemma 3 270M


class _Entry:
    __slots__ = ("saved", "tokens", "nbytes")

    def __init__(self, saved: Any) -> None:
        self.saved = saved
        self.tokens = np.asarray(saved.tokens, dtype=np.int64)
        self.nbytes = int(saved.nbytes)


class PromptCache:
    """The saved first prompts of one model's runs, most recently used last, at most ``budget`` bytes."""

    def __init__(self, model: Any, budget: int = PROMPT_BYTES) -> None:
        self.model = model
        self.budget = budget
        self.hits = 0  # runs that restored at least one block
        self.saved_tokens = 0  # prompt tokens those runs did not evaluate
        self._entries: OrderedDict[tuple[int, ...], _Entry] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()  # runs on several threads start their prompts here

    @property
    def nbytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def start(self, tokens: Seq[int]) -> tuple[Any, int]:
        """A new sequence holding ``tokens`` with its logits, and how many tokens had to be evaluated."""
        model = self.model
        tokens = list(tokens)
        usable = self.budget > 0 and model.pristine
        shared = self.budget > 0 and not usable and model.others_running()
        with self._lock:
            found, keep = self._best(tokens) if usable or shared else (None, 0)
        restored = keep
        if found is None:
            seq = model.new_sequence()
        else:
            try:
                seq = model.restore(found.saved, keep, anywhere=shared)
            except UsageError:  # another run evaluated something first: the cache is not empty any more
                seq, restored, shared = model.new_sequence(), 0, True
            else:
                with self._lock:
                    if tuple(found.saved.tokens) in self._entries:
                        self._entries.move_to_end(tuple(found.saved.tokens))
                    self.hits += 1
                    self.saved_tokens += keep
        if not usable or shared:
            seq.append(tokens[restored:])
            return seq, len(tokens) - restored
        alone = model.shared_steps
        longest = self._longest_state()
        if len(tokens) <= longest:
            if keep < len(tokens):
                seq.append(tokens[keep:])
            if tuple(tokens) not in self._entries and model.shared_steps == alone:
                self._put(model.save(seq))
        else:  # the prompt's state would be cut to the window: its longest complete block prefix is saved instead
            boundary = longest // BLOCK * BLOCK
            if keep < boundary and tuple(tokens[:boundary]) not in self._entries:
                seq.append(tokens[keep:boundary])
                if model.shared_steps == alone:
                    self._put(model.save(seq, with_logits=False))
                keep = boundary
            seq.append(tokens[keep:])
        return seq, len(tokens) - restored

    def _longest_state(self) -> int:
        """The most tokens a saved state may hold. A model with sliding-window layers (Gemma 3) saves only the
        window's positions for those layers, and restores them into other cells than they had: measured, the
        numbers then drift once a prompt is longer than the window. Shorter states are exact."""
        window = self.model.n_swa
        return window - 1 if window else 1 << 62

    def _best(self, tokens: list[int]) -> tuple[_Entry | None, int]:
        """The saved state to start ``tokens`` from and how many of its tokens to keep (0: none fits)."""
        exact = self._entries.get(tuple(tokens))
        if exact is not None and exact.saved.logits is not None:
            return exact, len(tokens)
        wanted = np.asarray(tokens, dtype=np.int64)
        # What follows the kept tokens must include the last, whose logits the run needs.
        most = (len(tokens) - 1) // BLOCK * BLOCK
        best, best_keep = None, 0
        for entry in reversed(self._entries.values()):
            size = min(len(entry.tokens), len(wanted))
            differ = np.flatnonzero(entry.tokens[:size] != wanted[:size])
            common = int(differ[0]) if len(differ) else size
            keep = min(common // BLOCK * BLOCK, most)
            if keep > best_keep:
                best, best_keep = entry, keep
        return best, best_keep

    def _put(self, saved: Any) -> None:
        entry = _Entry(saved)
        if entry.nbytes > self.budget:
            return
        with self._lock:
            self._insert(entry)

    def _insert(self, entry: _Entry) -> None:
        saved = entry.saved
        key = tuple(saved.tokens)
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= old.nbytes
        self._entries[key] = entry
        self._bytes += entry.nbytes
        while self._bytes > self.budget:
            _, gone = self._entries.popitem(last=False)
            self._bytes -= gone.nbytes

    def clear(self) -> None:
        """Forget every saved prompt."""
        with self._lock:
            self._entries.clear()
            self._bytes = 0


class SequencePool:
    """Idle sequences of one model, most recently used last; at most ``capacity`` are kept. New prompts start
    through ``prompts``, the model's saved prompt states."""

    def __init__(self, model: Any, capacity: int = 4, prompts: PromptCache | None = None) -> None:
        self.model = model
        self.capacity = capacity
        self.prompts = prompts if prompts is not None else PromptCache(model)
        self._idle: list[Any] = []
        self._lock = threading.RLock()  # runs on several threads take and give back idle sequences

    def sequence_for(self, tokens: Seq[int]) -> tuple[Any, int]:
        """A sequence whose cache holds ``tokens``, and how many of them had to be evaluated."""
        with self._lock:  # taken out of the pool while in use here, so that no other run releases it
            best, common = None, 0
            for seq in self._idle:
                shared = _common_prefix(seq.tokens, tokens)
                if shared > common:
                    best, common = seq, shared
            if best is not None:
                self._idle.remove(best)
        if best is None:
            return self.prompts.start(tokens)
        rewound = 0
        if common == len(best.tokens):
            seq = best
        else:
            try:
                seq = best.fork()
                seq.truncate(common)
                rewound = 1  # the last kept token is evaluated again, for fresh logits
            finally:
                self.give_back(best)
        if common < len(tokens):
            seq.append(list(tokens[common:]))
        evaluated = len(tokens) - common + rewound
        return seq, evaluated

    def give_back(self, seq: Any) -> None:
        """Keep ``seq`` for later runs to start from; the oldest idle one is released past capacity."""
        with self._lock:
            self._idle.append(seq)
            while len(self._idle) > self.capacity:
                self._idle.pop(0).release()

    def clear(self) -> None:
        """Release every idle sequence (the saved prompts stay: see ``prompts.clear``)."""
        with self._lock:
            while self._idle:
                self._idle.pop().release()


def _common_prefix(a: Seq[int], b: Seq[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i
