"""What lmlang keeps of llama.cpp's C API: the backend's start and log, the handles a model owns, and a reusable
``llama_batch``."""

from __future__ import annotations

import ctypes
import os
import queue
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import llama_cpp as llama
import numpy

N_BATCH = 512  # most tokens per llama_decode call (llama.cpp lowers it for a small n_ctx)
# Token attributes (enum llama_token_attr) that mark a token as never part of plain text.
NOT_TEXT = llama.LLAMA_TOKEN_ATTR_UNKNOWN | llama.LLAMA_TOKEN_ATTR_UNUSED | llama.LLAMA_TOKEN_ATTR_CONTROL

_log_callback = None  # the C side keeps a pointer to it, so it must outlive every call into llama.cpp
_load_log: list[str] | None = None


def init_backend() -> None:
    """Start llama.cpp's backend and route its log through lmlang (once per process)."""
    global _log_callback
    if _log_callback is not None:
        return
    _log_callback = llama.llama_log_callback(_on_log)
    llama.llama_log_set(_log_callback, None)
    llama.llama_backend_init()


def _on_log(level: int, text: bytes, user_data: object) -> None:
    if _load_log is not None and text:
        _load_log.append(text.decode("utf-8", "replace"))
    if text and os.environ.get("LMLANG_DEBUG") == "1":
        os.write(2, text)


class Engine:
    """The one thread that runs llama.cpp's computations (``llama_decode``) for the whole process.

    llama.cpp's CPU backend is built with OpenMP here, and OpenMP keeps a team of threads per calling thread.
    Measured: once the main thread has decoded, a decode called from any other thread takes 3-4 times as long
    (SmolLM2, 2 cores: 33 ms a step against 9), whichever thread calls next. Sending every decode to one thread
    keeps one team, so runs from worker threads (``map``, a server, asyncio) decode as fast as a run alone."""

    def __init__(self) -> None:
        self._requests: queue.SimpleQueue[tuple[Callable[..., Any], tuple[Any, ...], list[Any], threading.Lock]]
        self._requests = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()

    def call(self, function: Callable[..., Any], *args: Any) -> Any:
        """``function(*args)`` on the engine's thread; its result (or what it raised, raised here)."""
        thread = self._thread
        if thread is None:
            thread = self._started()
        if threading.current_thread() is thread:
            return function(*args)
        outcome: list[Any] = []
        done = threading.Lock()
        done.acquire()
        self._requests.put((function, args, outcome, done))
        done.acquire()
        value, error = outcome
        if error is not None:
            raise error
        return value

    def _started(self) -> threading.Thread:
        with self._start:
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name="lmlang-llama", daemon=True)
                self._thread.start()
            return self._thread

    def _serve(self) -> None:
        while True:
            function, args, outcome, done = self._requests.get()
            try:
                outcome.extend((function(*args), None))
            except BaseException as error:  # the caller raises it
                outcome.extend((None, error))
            done.release()


ENGINE = Engine()


@contextmanager
def captured_log() -> Iterator[list[str]]:
    """The lines llama.cpp logs meanwhile (loads run one at a time: the log is one process-wide callback)."""
    global _load_log
    _load_log = lines = []
    try:
        yield lines
    finally:
        _load_log = None


class Handles:
    """What llama.cpp allocated for one model: weights, vocabulary, the generation context and its cache, and
    the embedding context once ``embed`` made it."""

    def __init__(self, model: object, vocab: object) -> None:
        self.model = model
        self.vocab = vocab
        self.ctx: object = None
        self.memory: object = None
        self.embedding: tuple[object, Batch] | None = None


class Batch:
    """A ``llama_batch`` over numpy buffers, allocated once and refilled for every decode."""

    def __init__(self, capacity: int) -> None:
        self.token = numpy.zeros(capacity, numpy.int32)
        self.pos = numpy.zeros(capacity, numpy.int32)
        self.n_seq_id = numpy.ones(capacity, numpy.int32)
        self.seq_id = numpy.zeros(capacity, numpy.int32)
        self.output = numpy.zeros(capacity, numpy.int8)
        # Each token belongs to one sequence: row i's seq_id list is the single int at seq_id[i].
        int_p = ctypes.POINTER(ctypes.c_int32)
        base = self.seq_id.ctypes.data
        self._seq_id_rows = (int_p * capacity)(*(ctypes.cast(base + 4 * i, int_p) for i in range(capacity)))
        self.struct = llama.llama_batch(
            n_tokens=0,
            token=self.token.ctypes.data_as(ctypes.POINTER(llama.llama_token)),
            embd=None,
            pos=self.pos.ctypes.data_as(ctypes.POINTER(llama.llama_pos)),
            n_seq_id=self.n_seq_id.ctypes.data_as(int_p),
            seq_id=ctypes.cast(self._seq_id_rows, ctypes.POINTER(int_p)),
            logits=self.output.ctypes.data_as(ctypes.POINTER(ctypes.c_int8)),
        )

    def decode(self, ctx: object, rows: list[tuple[Any, int, int, bool]]) -> int:
        """One llama_decode of ``rows``: (sequence, position, token, whether its logits are wanted)."""
        count = len(rows)
        if count == 1:
            seq, pos, token, wants = rows[0]
            self.token[0], self.pos[0], self.seq_id[0], self.output[0] = token, pos, seq.seq_id, wants
        else:
            self.token[:count] = [row[2] for row in rows]
            self.pos[:count] = [row[1] for row in rows]
            self.seq_id[:count] = [row[0].seq_id for row in rows]
            self.output[:count] = [row[3] for row in rows]
        self.struct.n_tokens = count
        return ENGINE.call(llama.llama_decode, ctx, self.struct)

    def decode_text(self, ctx: object, tokens: list[int], start: int) -> int:
        """``tokens`` as sequence 0 from position ``start``, each one an output: pooling averages over the outputs."""
        count = len(tokens)
        self.token[:count] = tokens
        self.pos[:count] = numpy.arange(start, start + count)
        self.seq_id[:count] = 0
        self.output[:count] = 1
        self.struct.n_tokens = count
        return ENGINE.call(llama.llama_decode, ctx, self.struct)


def log_prob(logits: numpy.ndarray, token: int) -> float:
    """log softmax(logits)[token], in double precision."""
    peak = float(logits.max())
    return float(logits[token]) - peak - float(numpy.log(numpy.exp(logits - peak, dtype=numpy.float64).sum()))


def frozen_copy(logits: numpy.ndarray) -> numpy.ndarray:
    copy = logits.copy()
    copy.flags.writeable = False
    return copy
