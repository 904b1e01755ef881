"""A fake model for logic tests: scripted logits over a small vocabulary, no llama.cpp.

It implements what the decoder, the prompt and the multi-model statements use of ``lmlang.models.llama.Model``
(tokens and their bytes, sequences with ``append``/``truncate``/``fork``/``logits``, batched steps, branch scoring,
chat markers, embeddings), so that decoding strategies and block logic can be tested for exact outcomes.

The vocabulary is ``<eos>`` (token 0), the words given, then every single byte not already a word, so any text
tokenizes (longest word first). The logits after a text are the script's: ``script(text)`` maps token texts
(``"<eos>"`` for the end) to logits, and every token it does not name gets ``floor``::

    model = FakeModel(["yes", "no"], lambda text: {"yes": 2.0, "no": 1.0} if text.endswith("A:") else {"<eos>": 5})
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Mapping, Sequence as Seq

import numpy as np

from lmlang.masks import Vocabulary

EOS = "<eos>"
Script = Callable[[str], Mapping[str, float]]


class FakeModel:
    def __init__(self, words: Seq[str], script: Script, *, name: str = "fake", floor: float = -30.0,
                 n_ctx: int = 512, embeddings: Callable[[str], Seq[float]] | None = None) -> None:
        self.name = name
        self.path = Path(f"/fake/{name}.gguf")
        self.script = script
        self.floor = floor
        self.n_ctx = n_ctx
        self.add_bos = False
        self.bos_token: int | None = None
        self.closed = False
        self._embeddings = embeddings
        self._vocabulary: Vocabulary | None = None
        pieces = [b""] + [w.encode() for w in words]
        pieces += [bytes([b]) for b in range(256) if bytes([b]) not in pieces]
        self.token_bytes: list[bytes] = pieces
        self.special_tokens: frozenset[int] = frozenset()
        self.eog_tokens: frozenset[int] = frozenset({0})
        self.n_vocab = len(pieces)
        self._ids = {piece: i for i, piece in enumerate(pieces) if i}
        self._longest = max(len(p) for p in pieces)
        self.decode_calls = 0  # batched evaluations, as llama_decode calls would be
        self.pristine = False  # it saves no states, so every prompt is evaluated (lmlang.models.kvcache)
        self.live_sequences = 0
        self.shared_steps = 0  # it runs one thread at a time: no decode is ever shared

    def others_running(self) -> bool:
        return False

    def __repr__(self) -> str:
        return f"<FakeModel {self.name}: {self.n_vocab} tokens>"

    # -- text and tokens
    def token_id(self, text: str) -> int:
        return 0 if text == EOS else self._ids[text.encode()]

    def tokenize(self, text: str, *, bos: bool = False, special: bool = False) -> list[int]:
        data, tokens, at = text.encode(), [], 0
        while at < len(data):
            for size in range(min(self._longest, len(data) - at), 0, -1):
                token = self._ids.get(data[at:at + size])
                if token is not None:
                    tokens.append(token)
                    at += size
                    break
        return tokens

    def token_blob(self) -> tuple[np.ndarray, np.ndarray]:
        ends = np.cumsum([len(p) for p in self.token_bytes], dtype=np.int64)
        return np.frombuffer(b"".join(self.token_bytes), dtype=np.uint8), ends

    def vocabulary(self) -> Vocabulary:
        if self._vocabulary is None:
            self._vocabulary = Vocabulary(self.token_bytes, self.special_tokens, self.eog_tokens, str(self.path))
        return self._vocabulary

    def detokenize(self, tokens: Seq[int]) -> bytes:
        return b"".join(self.token_bytes[t] for t in tokens)

    def role_markers(self, role: str) -> tuple[str, str]:
        return f"<{role}>", f"</{role}>\n"

    # -- scores
    def logits_after(self, tokens: Seq[int]) -> np.ndarray:
        row = np.full(self.n_vocab, self.floor, dtype=np.float32)
        for text, value in self.script(self.detokenize(tokens).decode("utf-8", "replace")).items():
            row[self.token_id(text)] = value
        return row

    def embed(self, text: str) -> np.ndarray:
        if self._embeddings is not None:
            return np.asarray(self._embeddings(text), dtype=np.float64)
        counts = np.zeros(26)
        for ch in text.lower():
            if "a" <= ch <= "z":
                counts[ord(ch) - 97] += 1
        return counts

    # -- sequences
    def new_sequence(self) -> FakeSequence:
        self.live_sequences += 1
        return FakeSequence(self)

    def clear_cache(self) -> bool:
        return self.live_sequences == 0

    def decode_step(self, seqs: list[FakeSequence], tokens: list[int]) -> None:
        self.decode_calls += 1
        for seq, token in zip(seqs, tokens):
            seq.tokens.append(token)

    def evaluate_pushed(self, seqs: list[FakeSequence], outputs: list[int]) -> list[list[np.ndarray]]:
        self.decode_calls += 1
        rows = []
        for seq, count in zip(seqs, outputs):
            seq._pushed = 0
            rows.append([self.logits_after(seq.tokens[:len(seq.tokens) - i]) for i in range(count - 1, 0, -1)])
        return rows

    def evaluate_branches(self, seq: FakeSequence, branches: list[list[int]]) -> list[np.ndarray]:
        self.decode_calls += 1
        results = []
        for branch in branches:
            logprobs = []
            for i, token in enumerate(branch):
                row = self.logits_after(seq.tokens + branch[:i]).astype(np.float64)
                logprobs.append(row[token] - (row.max() + np.log(np.exp(row - row.max()).sum())))
            results.append(np.array(logprobs, dtype=np.float64))
        return results

    def close(self) -> None:
        self.closed = True


class FakeSequence:
    def __init__(self, model: FakeModel) -> None:
        self.model = model
        self.tokens: list[int] = []
        self._pushed = 0  # tokens pushed and not evaluated yet
        self._released = False

    def append(self, tokens: Seq[int]) -> None:
        if tokens or self._pushed:
            self.model.decode_calls += 1
            self.tokens.extend(tokens)
            self._pushed = 0

    def push(self, tokens: Seq[int]) -> None:
        self.tokens.extend(tokens)
        self._pushed += len(tokens)

    def logits_along(self, count: int) -> list[np.ndarray]:
        self.model.decode_calls += 1
        self._pushed = 0
        return [self.model.logits_after(self.tokens[:len(self.tokens) - i]) for i in range(count - 1, 0, -1)]

    def logits(self) -> np.ndarray:
        if self._pushed:  # pushed tokens are evaluated now, in one call
            self.model.decode_calls += 1
            self._pushed = 0
        return self.model.logits_after(self.tokens)

    def truncate(self, n: int) -> None:
        self._pushed = max(0, self._pushed - (len(self.tokens) - n))
        del self.tokens[n:]

    def fork(self) -> FakeSequence:
        child = self.model.new_sequence()
        child.tokens = list(self.tokens)
        return child

    def release(self) -> None:
        if not self._released:
            self._released = True
            self.model.live_sequences -= 1
