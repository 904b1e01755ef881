"""A language model running in llama.cpp, driven through its low-level C API.

One :class:`Model` owns one llama.cpp context whose KV cache is shared by up to ``n_seq_max`` :class:`Sequence` s.
A sequence mirrors exactly the tokens cached for one llama.cpp sequence id, so the interpreter can extend it one
token at a time, roll it back to try something else, or fork it to explore alternatives (beams, ``in [...]``
choices) without ever evaluating a shared prefix twice. Every evaluation goes through the model's step scheduler
(lmlang.models.batching), which shares decodes among runs on several threads.
"""

from __future__ import annotations

import ctypes
import pathlib
import re
import threading
import weakref
from collections import abc
from typing import Callable

import llama_cpp as llama
import numpy

from lmlang.errors import ModelError, UsageError
from lmlang.masks.vocabulary import Vocabulary
from lmlang.models import batching, hardware, vocabfile
from lmlang.models.kvcache import BLOCK
from lmlang.models.llama import chat, embedding, ffi
from lmlang.models.llama.ffi import N_BATCH, NOT_TEXT, Batch, Handles, frozen_copy, log_prob

_BUFFER_LINE = re.compile(r"\b(\S+) model buffer size\s*=")


class Model:
    """A loaded GGUF model with its vocabulary and one llama.cpp context shared by its sequences."""

    def __init__(self, name: str, path: pathlib.Path, *, n_ctx: int, n_threads: int, n_seq_max: int,
                 buffers: hardware.BufferChoice) -> None:
        self.name = name
        self.path = path
        self.n_ctx = n_ctx
        self.evaluated_tokens = 0
        self._handles: Handles | None = None
        self._embedding_lock = threading.RLock()
        #: whether llama.cpp was allowed to repack the weights into its extra buffer types, and why
        self.extra_buffer_types: hardware.BufferChoice = buffers
        params = llama.llama_model_default_params()
        params.use_extra_bufts = buffers.enabled
        with ffi.captured_log() as log:
            weights = llama.llama_model_load_from_file(str(path).encode(), params)
        #: the llama.cpp buffers holding the weights, as its load log names them (``CPU_Mapped``, ``CPU_REPACK``)
        self.buffer_types: tuple[str, ...] = tuple(dict.fromkeys(
            match.group(1) for line in "".join(log).splitlines() if (match := _BUFFER_LINE.search(line))))
        if not weights:
            raise ModelError(None, f"{path} is not a valid GGUF model file (llama.cpp cannot load it: cut short, "
                                   "damaged, or a model kind this llama.cpp does not know): copy or convert it again")
        self._handles = Handles(weights, llama.llama_model_get_vocab(weights))
        self.n_vocab = llama.llama_vocab_n_tokens(self._vocab)
        bos = llama.llama_vocab_bos(self._vocab)
        self.bos_token = bos if bos >= 0 else None
        self.add_bos = bool(llama.llama_vocab_get_add_bos(self._vocab)) and self.bos_token is not None
        self._read_vocabulary()
        #: the attention window of the model's sliding-window layers (0: it has none)
        self.n_swa: int = max(0, llama.llama_model_n_swa(self._model))
        self._n_seq_max = max(1, min(n_seq_max, llama.llama_max_parallel_sequences()))
        self._n_threads = n_threads
        self._handles.ctx = self._new_context(self.n_ctx, N_BATCH, self._n_seq_max)
        # llama.cpp rounds n_ctx up (to a multiple of 256) and caps the batch at it: use what it chose.
        self.n_ctx = llama.llama_n_ctx(self._ctx)
        self._n_batch = llama.llama_n_batch(self._ctx)
        self._handles.memory = llama.llama_get_memory(self._ctx)
        self._batch = Batch(self._n_batch)
        self._free_ids = list(range(self._n_seq_max - 1, -1, -1))
        self._ids_lock = threading.Lock()
        self._dropped: list[int] = []  # ids of sequences collected without release, given back at the next turn
        self._sequences: weakref.WeakValueDictionary[int, Sequence] = weakref.WeakValueDictionary()
        self._scheduler = batching.StepScheduler(self._execute_parts, self._execute_alone, self._n_batch)
        self._markers: dict[str, tuple[str, str]] = {}
        self._vocabulary: Vocabulary | None = None
        self._pristine = True  # nothing was evaluated since the cache was made or last cleared

    # llama.cpp's objects, read through the model so that a closed model fails with a sentence, not a crash
    def _open(self) -> Handles:
        if self._handles is None:
            raise UsageError(None, f"{self.name} was unloaded: load it again to use it")
        return self._handles

    @property
    def _model(self) -> object:
        return self._open().model

    @property
    def _vocab(self) -> object:
        return self._open().vocab

    @property
    def _ctx(self) -> object:
        return self._open().ctx

    @property
    def _memory(self) -> object:
        return self._open().memory

    @property
    def closed(self) -> bool:
        return self._handles is None

    def close(self) -> None:
        """Free the weights, the contexts and their caches. Its sequences end with it; using the model or one
        of them afterwards raises UsageError. Closing twice does nothing."""
        handles, self._handles = self._handles, None
        if handles is None:
            return
        for seq in list(self._sequences.values()):
            seq._finalizer.detach()  # nothing left to give back
        if handles.embedding is not None:
            llama.llama_free(handles.embedding[0])
        llama.llama_free(handles.ctx)
        llama.llama_model_free(handles.model)

    def __repr__(self) -> str:
        return f"<Model {self.name} n_vocab={self.n_vocab} n_ctx={self.n_ctx}>"

    def _new_context(self, n_ctx: int, n_batch: int, n_seq_max: int, *, pooled: bool = False) -> object:
        """A llama.cpp context on this model's weights; ``pooled``: one that also averages each sequence's states."""
        params = llama.llama_context_default_params()
        params.n_ctx = n_ctx
        params.n_batch = n_batch
        params.n_ubatch = n_batch
        params.n_seq_max = n_seq_max
        params.n_threads = self._n_threads
        params.n_threads_batch = self._n_threads
        params.no_perf = True
        # Flash attention (llama.cpp's default "auto" turns it on for CPU) accumulates in half precision: greedy
        # choices then drift from those of plain llama.cpp. Off, the logits match llama-cpp-python's.
        params.flash_attn_type = llama.LLAMA_FLASH_ATTN_TYPE_DISABLED
        # All sequences draw cells from one pool of n_ctx, so a shared prefix is stored once and any one
        # sequence may use the whole window.
        params.kv_unified = True
        # Keep every position in sliding-window layers (Gemma 3): rolling a sequence back must find the
        # cells it returns to still there.
        params.swa_full = True
        if pooled:
            params.embeddings = True
            params.pooling_type = llama.LLAMA_POOLING_TYPE_MEAN
        ctx = llama.llama_init_from_model(self._model, params)
        if not ctx:
            raise ModelError(None, f"cannot create a llama.cpp context of {n_ctx} tokens for {self.path}")
        return ctx

    def _read_vocabulary(self) -> None:
        version = getattr(llama, "__version__", "")
        table = vocabfile.load(self.path, version)
        if table is None or len(table.pieces) != self.n_vocab:
            table = self.read_token_table()
            vocabfile.save(self.path, version, table)
        self.token_bytes: list[bytes] = table.pieces
        self.special_tokens: frozenset[int] = frozenset(table.special)
        self.eog_tokens: frozenset[int] = frozenset(table.eog)
        self._table = table

    def token_blob(self) -> tuple[numpy.ndarray, numpy.ndarray]:
        """The tokens' bytes end to end and each token's end offset in them (see ``vocabfile.TokenTable.blob``)."""
        return self._table.blob

    def read_token_table(self) -> vocabfile.TokenTable:
        """The token table as llama.cpp gives it, read token by token (what lmlang.models.vocabfile keeps)."""
        # 262k tokens for Gemma: the C functions are bound to locals because this loop is a visible part of loading.
        vocab, size = self._vocab, 256
        buffer = ctypes.create_string_buffer(size)
        is_eog, get_attr, to_piece = (llama.llama_vocab_is_eog, llama.llama_vocab_get_attr, llama.llama_token_to_piece)
        pieces: list[bytes] = []
        special: list[int] = []
        eog: list[int] = []
        for token in range(self.n_vocab):
            if is_eog(vocab, token):
                eog.append(token)
            elif not get_attr(vocab, token) & NOT_TEXT:
                length = to_piece(vocab, token, buffer, size, 0, False)
                if length < 0:  # a piece longer than the buffer; never seen in practice
                    wide = ctypes.create_string_buffer(-length)
                    length = to_piece(vocab, token, wide, -length, 0, False)
                    pieces.append(wide.raw[:length])
                else:
                    pieces.append(buffer[:length])
                continue
            special.append(token)
            pieces.append(b"")
        return vocabfile.TokenTable(pieces, special, eog)

    def vocabulary(self) -> Vocabulary:
        """The tokens as the masks see them (their bytes, which are special, which end the text); made once."""
        if self._vocabulary is None:
            self._vocabulary = Vocabulary(self.token_bytes, self.special_tokens, self.eog_tokens, str(self.path))
        return self._vocabulary

    # -- text <-> tokens -------------------------------------------------------------------------------------

    def tokenize(self, text: str, *, bos: bool = False, special: bool = False) -> list[int]:
        """The tokens of ``text``; ``bos`` prepends BOS if the model wants one (``add_bos``); ``special`` reads
        control-token spellings like ``<|im_start|>`` as those tokens instead of as plain text."""
        data = text.encode("utf-8")
        capacity = len(data) + 2
        out = (llama.llama_token * capacity)()
        count = llama.llama_tokenize(self._vocab, data, len(data), out, capacity, bos, special)
        if count < 0:
            out = (llama.llama_token * -count)()
            count = llama.llama_tokenize(self._vocab, data, len(data), out, -count, bos, special)
        return out[:count]

    def detokenize(self, tokens: abc.Sequence[int]) -> bytes:
        """The text bytes of ``tokens``; special tokens contribute nothing. May end inside a UTF-8 character."""
        pieces = self.token_bytes
        return b"".join([pieces[token] for token in tokens])

    def role_markers(self, role: str) -> tuple[str, str]:
        """The text before and after one message of ``role`` in this model's chat format.

        The assistant prefix doubles as the generation prompt. Templates without a separate system turn (Gemma)
        get the user turn's markers for "system". Tokenize markers with ``special=True``.
        """
        if role not in self._markers:
            self._markers[role] = chat.role_markers(self._model, self.path, self.name, role)
        return self._markers[role]

    # -- embeddings (used by `route ..., examples=`) ----------------------------------------------------------

    def embed(self, text: str) -> numpy.ndarray:
        """The mean of the model's last hidden states over the tokens of ``text`` (after BOS if the model wants
        one), L2-normalised: a float64 vector of ``llama_model_n_embd_out`` entries, for comparing texts by cosine.

        Runs in a second llama.cpp context on the same weights, so sequences and their logits are untouched.
        """
        if not text:  # with BOS alone Gemma would still give a vector, but it would say nothing of any text
            raise UsageError(None, "an empty text has no embedding: give embed some text")
        tokens = self.tokenize(text, bos=True)
        # Too long is an error, not a cut: the mean over a prefix would pass for the embedding of the whole
        # text, and a route would decide on a document's first page without saying so.
        if len(tokens) > embedding.N_EMBED_CTX:
            raise ModelError(
                None,
                f"a text of {len(tokens)} tokens is too long to embed with {self.name} (at most {embedding.N_EMBED_CTX})",
            )
        ctx, batch = self._embedding_context()
        with self._embedding_lock:  # one context: texts from several threads go one at a time
            total = embedding.pooled_sum(ctx, batch, llama.llama_model_n_embd_out(self._model), tokens, self.name,
                                         self._decode_failure)
        self.evaluated_tokens += len(tokens)
        return total / numpy.linalg.norm(total)

    def _embedding_context(self) -> tuple[object, Batch]:
        # Made on first use: most queries never embed, and the context costs memory and a graph reservation.
        with self._embedding_lock:
            handles = self._open()
            if handles.embedding is None:
                ctx = self._new_context(embedding.N_EMBED_CTX, embedding.N_EMBED_BATCH, 1, pooled=True)
                handles.embedding = (ctx, Batch(llama.llama_n_ubatch(ctx)))
            return handles.embedding

    # -- sequences ---------------------------------------------------------------------------------------------

    def join_runs(self) -> Callable[[], None]:
        """Count the calling thread among the runs on this model until the returned function is called: its
        evaluations then share decode steps with theirs (see lmlang.models.batching)."""
        return self._scheduler.join()

    @property
    def shared_steps(self) -> int:
        """How many decodes so far carried the tokens of several runs (whose numbers a run alone would not
        reproduce exactly)."""
        return self._scheduler.shared_steps

    def others_running(self) -> bool:
        """Whether runs on other threads are using this model now."""
        return self._scheduler.others()

    def new_sequence(self) -> Sequence:
        """An empty sequence with a sequence id of its own; release it (or use ``with``) when done. When every id
        is in use by runs on other threads, waits for one of them to give one back."""
        self._open()
        while True:
            with self._scheduler.turn():
                self._give_back_dropped()
                with self._ids_lock:
                    if self._free_ids:
                        seq_id = self._free_ids.pop()
                        break
            self._scheduler.wait_for(lambda: bool(self._free_ids or self._dropped), self._no_sequence_left)
        sequence = Sequence(self, seq_id)
        self._sequences[seq_id] = sequence
        return sequence

    def _no_sequence_left(self) -> ModelError:
        return ModelError(None, f"all {self._n_seq_max} sequences of {self.name} are in use: release unused ones "
                                "or load the model with a larger n_seq_max")

    def clear_cache(self) -> bool:
        """Empty the KV cache when no sequence is in use, so that what is evaluated next is laid out as in a fresh
        process (llama.cpp's arithmetic depends on that layout); whether it did."""
        with self._scheduler.turn():
            self._give_back_dropped()
            if len(self._free_ids) < self._n_seq_max:
                return False
            # The cells are marked free without zeroing their data (zeroing costs 8 ms on SmolLM2): a free cell is
            # masked out of attention with -inf, so what stale values it holds (finite: llama.cpp computed them,
            # and a new cache starts zeroed) adds exactly nothing.
            llama.llama_memory_clear(self._memory, False)
            self._pristine = True
            return True

    @property
    def pristine(self) -> bool:
        """Whether the cache is as :meth:`clear_cache` leaves it: nothing evaluated or restored since."""
        return self._pristine

    def save(self, seq: Sequence, *, with_logits: bool = True) -> SavedState:
        """A copy of what the cache holds for ``seq`` (and of its current logits, when ``with_logits``), for
        :meth:`restore` to bring back into an empty cache later. ``seq``'s tokens must all be evaluated."""
        if seq._n_cached != len(seq.tokens):
            raise UsageError(None, "a sequence with tokens not yet evaluated cannot be saved")
        logits = seq.logits() if with_logits else None
        with self._scheduler.turn():
            size = llama.llama_state_seq_get_size(self._ctx, seq.seq_id)
            data = (ctypes.c_uint8 * size)()
            written = llama.llama_state_seq_get_data(self._ctx, data, size, seq.seq_id)
        if written != size:
            raise ModelError(None, f"llama.cpp saved {written} of {size} bytes of a sequence of {self.name}")
        return SavedState(tuple(seq.tokens), data, logits)

    def restore(self, saved: SavedState, keep: int, *, anywhere: bool = False) -> Sequence:
        """A new sequence holding the first ``keep`` tokens of ``saved``, into a pristine cache (see
        :attr:`pristine`), with the cells and numbers a run that evaluated them itself would have. ``anywhere``:
        into a cache in use too, where the restored cells land wherever there is room (the same tokens, not the
        same layout: what follows is computed slightly differently than in a run alone).

        ``keep`` is the whole of ``saved`` when it carries logits, or a multiple of :data:`BLOCK` that more
        tokens will follow (the next block then starts where a fresh run's would). A model with sliding-window
        layers saves only the window's positions of those layers: a state longer than the window restores them
        into other cells, and what follows is then not computed as in a fresh run.
        """
        length = len(saved.tokens)
        whole = keep == length and saved.logits is not None
        if not whole and (keep % BLOCK or not 0 < keep <= length):
            raise UsageError(None, f"cannot restore {keep} of the {length} tokens of a saved state")
        seq = self.new_sequence()
        with self._scheduler.turn():
            if not self._pristine and not anywhere:
                seq.release()
                raise UsageError(None, "a saved state can only be restored into an empty cache")
            done = llama.llama_state_seq_set_data(self._ctx, saved.data, len(saved.data), seq.seq_id)
            if done != len(saved.data):
                seq.release()
                raise ModelError(None, f"llama.cpp could not restore a saved sequence of {self.name} "
                                       "(no room in the cache?)")
            self._pristine = False
            if keep < length:
                llama.llama_memory_seq_rm(self._memory, seq.seq_id, keep, -1)
        seq.tokens = list(saved.tokens[:keep])
        seq._n_cached = keep
        seq._saved = saved.logits if whole else None
        return seq

    def decode_step(self, seqs: list[Sequence], tokens: list[int]) -> None:
        """Append ``tokens[i]`` to ``seqs[i]`` for every i, all in one llama.cpp batch."""
        if len(seqs) != len(tokens):
            raise UsageError(None, f"decode_step got {len(seqs)} sequences but {len(tokens)} tokens")
        if len({seq.seq_id for seq in seqs}) != len(seqs):
            raise UsageError(None, "decode_step got the same sequence twice")
        self._evaluate_each([(seq, [token]) for seq, token in zip(seqs, tokens)], [1] * len(seqs))

    def evaluate_pushed(self, seqs: list[Sequence], outputs: list[int]) -> list[list[numpy.ndarray]]:
        """Evaluate the tokens pushed onto each of ``seqs`` (:meth:`Sequence.push`), all in one llama.cpp batch;
        for sequence i the logits after each of its last ``outputs[i]`` tokens but the last, as copies, oldest
        first (the last's are its :meth:`Sequence.logits`)."""
        if len(seqs) != len(outputs):
            raise UsageError(None, f"evaluate_pushed got {len(seqs)} sequences but {len(outputs)} counts")
        if len({seq.seq_id for seq in seqs}) != len(seqs):
            raise UsageError(None, "evaluate_pushed got the same sequence twice")
        for seq, count in zip(seqs, outputs):
            pending = len(seq.tokens) - seq._n_cached
            if not 0 < count <= pending:
                raise UsageError(None, f"evaluate_pushed wants logits after {count} tokens; {pending} are pushed")
        return self._evaluate_each([(seq, []) for seq in seqs], list(outputs))

    # -- scoring continuations (used by `distribution` and `lmlang.score`) ---------------------------------------

    def evaluate_branches(self, seq: Sequence, branches: list[list[int]]) -> list[numpy.ndarray]:
        """For each branch, the log-probability (float64) of each of its tokens after ``seq``'s tokens and the
        branch's earlier tokens. ``seq`` is left as it was.

        Each branch is evaluated on a temporary fork of ``seq`` (the prefix is shared, not recomputed), all
        branches in one llama_decode with logits at every position; more calls only when the branches exceed
        one batch or the free sequence ids.
        """
        after_prefix = seq.logits()
        results = [numpy.zeros(len(b), numpy.float64) for b in branches]
        for branch, logprobs in zip(branches, results):
            if branch:
                logprobs[0] = log_prob(after_prefix, branch[0])
        longer = [(branch, logprobs) for branch, logprobs in zip(branches, results) if len(branch) > 1]
        while longer:
            room = max(1, len(self._free_ids))
            self._evaluate_group(seq, longer[:room])
            longer = longer[room:]
        return results

    def _evaluate_group(self, seq: Sequence, group: list[tuple[list[int], numpy.ndarray]]) -> None:
        """Fill in the log-probabilities of the second and later tokens of each branch of ``group``."""
        longest = len(seq.tokens) + max(len(branch) for branch, _ in group)
        if longest > self.n_ctx:
            raise self._context_full(longest)
        with self._scheduler.turn():  # the rows read after each decode are this group's alone
            forks = [seq.fork() for _ in group]
            try:
                rows: list[tuple[Sequence, int, int, bool]] = []
                targets: list[tuple[list[int], numpy.ndarray, int]] = []  # per row: the branch token it predicts
                for fork, (branch, logprobs) in zip(forks, group):
                    start = len(fork.tokens)
                    for j, token in enumerate(branch[:-1]):
                        rows.append((fork, start + j, token, True))
                        targets.append((branch, logprobs, j + 1))
                for first in range(0, len(rows), self._n_batch):
                    chunk = rows[first : first + self._n_batch]
                    status = self._batch.decode(self._ctx, chunk)
                    if status != 0:
                        raise self._decode_failure(status)
                    self._pristine = False
                    self.evaluated_tokens += len(chunk)
                    for row, (branch, logprobs, position) in enumerate(targets[first : first + len(chunk)]):
                        logprobs[position] = log_prob(self._logits_row(row), branch[position])
            finally:
                for fork in forks:
                    fork.release()

    def _release(self, seq_id: int) -> None:
        with self._scheduler.turn():
            self._free(seq_id)
        self._scheduler.changed()

    def _free(self, seq_id: int) -> None:
        """Remove a sequence's cells and give its id back (called holding the context)."""
        llama.llama_memory_seq_rm(self._memory, seq_id, -1, -1)
        with self._ids_lock:
            self._free_ids.append(seq_id)

    def _dropped_sequence(self, seq_id: int) -> None:
        # A finalizer runs on whatever thread the collector interrupts, maybe in the middle of another thread's
        # decode: the id is only noted here, and its cells are removed at the next turn.
        self._dropped.append(seq_id)

    def _give_back_dropped(self) -> None:
        """Free the cells and ids of sequences collected without release (called holding the context)."""
        while self._dropped:
            self._free(self._dropped.pop())

    def _evaluate(self, jobs: list[tuple[Sequence, list[int]]], outputs: int = 1) -> list[numpy.ndarray]:
        """Extend each sequence by its tokens, all or nothing; logits are computed only after each last token, or
        (one job) after each of its last ``outputs`` tokens: those before the last are returned, as copies."""
        every = self._evaluate_each(jobs, [outputs if len(jobs) == 1 else 1] * len(jobs))
        return every[0] if len(jobs) == 1 else []

    def _evaluate_each(self, jobs: list[tuple[Sequence, list[int]]], outputs: list[int]) -> list[list[numpy.ndarray]]:
        """Extend each sequence by its tokens (after those it was pushed), all or nothing; the logits are computed
        after each of the last ``outputs[i]`` tokens of job i: per job, those before its last, oldest first.

        The rows go to the model's scheduler, which evaluates them alone or in decodes shared with the runs on
        other threads."""
        rows: list[tuple[Sequence, int, int, bool]] = []  # (sequence, position, token, wants logits)
        for (seq, new), wanted in zip(jobs, outputs):
            if seq._released:
                raise UsageError(None, "a released sequence cannot be extended")
            start = seq._n_cached
            pending = seq.tokens[start:] + new
            if start + len(pending) > self.n_ctx:
                raise self._context_full(start + len(pending))
            first_out = len(pending) - wanted
            rows.extend((seq, start + i, token, i >= first_out) for i, token in enumerate(pending))
        request = batching.Request(rows)
        # Each sequence's last logits, and (when any job wants more than its last) every row's, in row order.
        request.results = ({}, [] if max(outputs, default=1) > 1 else None)
        try:
            self._scheduler.submit(request)
        except ModelError:
            with self._scheduler.turn():
                self._roll_back(jobs)
            raise
        last, every = request.results
        for seq, new in jobs:
            seq.tokens.extend(new)
            seq._n_cached = len(seq.tokens)
            seq._saved = last.get(seq)
        if every is None:
            return [[] for _ in jobs]
        split, at = [], 0
        for wanted in outputs:
            split.append(every[at:at + wanted - 1])
            at += wanted
        return split

    def _execute_alone(self, request: batching.Request) -> None:
        """A request of a run alone on the model, whole: one sequence's rows in blocks aligned to multiples of
        BLOCK (see kvcache.BLOCK), several sequences' (a step of each) in as few calls as the batch allows."""
        rows = request.rows
        single = len({row[0].seq_id for row in rows}) == 1
        first = 0
        while first < len(rows):
            end = min(len(rows), first + self._n_batch)
            if single:
                position = rows[first][1]
                end = min(end, first + BLOCK - position % BLOCK)
            self._execute_parts([(request, first, end)])
            first = end

    def _execute_parts(self, parts: list[batching.Part]) -> None:
        """One llama_decode of the given slices of requests; the logits of every row that wants them are copied
        into its request's results (llama.cpp's buffer is overwritten by the next decode, maybe another run's)."""
        self._give_back_dropped()
        rows = [row for request, start, end in parts for row in request.rows[start:end]]
        status = self._batch.decode(self._ctx, rows)
        if status == 1:  # no free cells: other runs may free some
            raise batching.NoRoom(self._decode_failure(status))
        if status != 0:
            raise self._decode_failure(status)
        self._pristine = False
        self.evaluated_tokens += len(rows)
        index = 0
        for request, start, end in parts:
            last, every = request.results
            for seq, _, _, wants in request.rows[start:end]:
                if wants:
                    logits = frozen_copy(self._logits_row(index))
                    last[seq] = logits
                    if every is not None:
                        every.append(logits)
                index += 1

    def _roll_back(self, jobs: list[tuple[Sequence, list[int]]]) -> None:
        """Return each sequence to its tokens before a failed decode; its logits then need its last token
        evaluated again, as after `truncate`."""
        for seq, _ in jobs:
            seq._n_cached = min(seq._n_cached, max(0, len(seq.tokens) - 1))
            llama.llama_memory_seq_rm(self._memory, seq.seq_id, seq._n_cached, -1)
            seq._forget_logits()

    def _decode_failure(self, status: int) -> ModelError:
        if status == 1:  # no free KV cells
            return self._context_full(None)
        reason = "a token id outside the vocabulary?" if status == -1 else f"llama_decode returned {status}"
        return ModelError(None, f"llama.cpp could not evaluate tokens with {self.name} ({reason})")

    def _context_full(self, needed: int | None) -> ModelError:
        what = f"{needed} tokens do not fit" if needed is not None else "the sequences in use no longer fit"
        return ModelError(
            None,
            f"the context window of {self.name} is full: {what} in n_ctx={self.n_ctx} tokens "
            "(shared by all sequences); load the model with a larger n_ctx",
        )

    def _logits_row(self, row: int) -> numpy.ndarray:
        pointer = llama.llama_get_logits_ith(self._ctx, row)
        if not pointer:
            raise ModelError(None, f"llama.cpp returned no logits for row {row} of the last batch of {self.name}")
        view = numpy.ctypeslib.as_array(pointer, shape=(self.n_vocab,))
        view.flags.writeable = False
        return view


class Sequence:
    """The tokens of one llama.cpp sequence, kept identical to what its KV cache holds."""

    def __init__(self, model: Model, seq_id: int) -> None:
        self.model = model
        self.seq_id = seq_id
        # Read-only for callers. Its last token may be absent from the cache after `truncate` (then `_n_cached`
        # is one less): it is evaluated together with the next append, or by `logits`.
        self.tokens: list[int] = []
        self._n_cached = 0
        self._saved: numpy.ndarray | None = None  # the logits after the last token, once evaluated (a copy)
        self._released = False
        # A sequence dropped without `release` still gives its id back to the pool when it is collected.
        self._finalizer = weakref.finalize(self, model._dropped_sequence, seq_id)
        self._finalizer.atexit = False

    def __repr__(self) -> str:
        return f"<Sequence {self.seq_id} of {self.model.name}: {len(self.tokens)} tokens>"

    def __enter__(self) -> Sequence:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def append(self, tokens: abc.Sequence[int]) -> None:
        """Evaluate ``tokens`` after the current ones (in batches), leaving the logits after the last one."""
        if tokens:
            self.model._evaluate([(self, list(tokens))])

    def push(self, tokens: abc.Sequence[int]) -> None:
        """Add ``tokens`` without evaluating them yet: the next call that needs logits (or appends) evaluates them
        together with whatever it adds, in one llama_decode, instead of one each."""
        if tokens:
            if self._released:
                raise UsageError(None, "a released sequence cannot be extended")
            self.tokens.extend(tokens)
            self._forget_logits()

    def logits_along(self, count: int) -> list[numpy.ndarray]:
        """Evaluate the pushed tokens, keeping the logits after each of the last ``count`` of them: those after
        the ``count - 1`` before the last, as copies, oldest first (the last's are :meth:`logits`)."""
        pending = len(self.tokens) - self._n_cached
        if not 0 < count <= pending:
            raise UsageError(None, f"logits_along({count}) needs that many pushed tokens; {pending} are")
        return self.model._evaluate([(self, [])], outputs=count)

    def logits(self) -> numpy.ndarray:
        """The read-only float32 logits (n_vocab,) for the token after the last one (the sequence's own copy:
        they stay valid whatever is evaluated afterwards)."""
        if self._saved is not None:
            return self._saved
        if not self.tokens:
            raise UsageError(None, "an empty sequence has no logits: append a token first")
        if self._n_cached == len(self.tokens):  # restored without logits: its last token is evaluated again
            with self.model._scheduler.turn():
                self._n_cached -= 1
                llama.llama_memory_seq_rm(self.model._memory, self.seq_id, self._n_cached, -1)
        self.model._evaluate([(self, [])])
        assert self._saved is not None
        return self._saved

    def truncate(self, n: int) -> None:
        """Keep only the first ``n`` tokens; the logits become those after token ``n - 1``."""
        if not 0 <= n <= len(self.tokens):
            raise UsageError(None, f"cannot truncate a sequence of {len(self.tokens)} tokens to {n}")
        if n == len(self.tokens):
            return
        # The logits after token n-1 are gone, so token n-1 leaves the cache too and is evaluated again lazily:
        # a following append then costs no extra decode.
        keep = min(max(0, n - 1), self._n_cached)
        with self.model._scheduler.turn():
            llama.llama_memory_seq_rm(self.model._memory, self.seq_id, keep, -1)
        del self.tokens[n:]
        self._n_cached = keep
        self._forget_logits()

    def fork(self) -> Sequence:
        """A new sequence with the same tokens and logits, sharing the cached prefix instead of recomputing it."""
        model = self.model
        child = model.new_sequence()
        with model._scheduler.turn():
            llama.llama_memory_seq_cp(model._memory, self.seq_id, child.seq_id, -1, -1)
        child.tokens = list(self.tokens)
        child._n_cached = self._n_cached
        child._saved = self._saved
        return child

    def release(self) -> None:
        """Give the sequence id and its cache cells back to the model; the sequence is unusable afterwards."""
        if not self._released:
            self._released = True
            self._finalizer.detach()
            if not self.model.closed:
                self.model._release(self.seq_id)
            self._forget_logits()
            # The last sequence gone, the cache is empty: laid out afresh, the next run can restore saved prompts.
            # (Not from the finalizer, which may run on any thread while another run is using the model.)
            if not self.model.closed:
                self.model.clear_cache()

    def _forget_logits(self) -> None:
        self._saved = None


class SavedState:
    """What the cache held for one sequence (see :meth:`Model.save`): its tokens, llama.cpp's bytes for their
    cells, and the logits after the last token (None when not kept)."""

    __slots__ = ("tokens", "data", "logits")

    def __init__(self, tokens: tuple[int, ...], data: ctypes.Array, logits: numpy.ndarray | None) -> None:
        self.tokens = tokens
        self.data = data
        self.logits = logits

    @property
    def nbytes(self) -> int:
        """The memory it holds."""
        return len(self.data) + (self.logits.nbytes if self.logits is not None else 0) + 8 * len(self.tokens)
