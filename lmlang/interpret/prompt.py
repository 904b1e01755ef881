"""The prompt of one run: the text so far, its role markers, and the KV-cache sequence that mirrors it.

Text is buffered until the model needs it (a hole), then tokenized and evaluated in one batch, so text already
evaluated is never evaluated again and each hole continues from the cached state.
"""

from __future__ import annotations

import itertools
import time
from typing import Any, Callable

from lmlang.errors import ModelError
from lmlang.models.kvcache import SequencePool


class Prompt:
    def __init__(self, model: Any, pool: SequencePool) -> None:
        self.model = model
        self.pool = pool
        self.parts: list[str] = []
        # What the parts say, independent of the model: (role, "") where a message starts, (None, text) for text.
        # Another model's prompt is rebuilt from it, with that model's chat markup (see replay).
        self.script: list[tuple[str | None, str]] = []
        self.seq: Any = None
        self.role: str | None = None
        self.prefill_tokens = 0
        self.prefill_seconds = 0.0  # spent evaluating prompt text: prices tell prefill from decoding apart
        self._pending: list[tuple[str, bool]] = []  # (text, holds special tokens)
        self._held: int | None = None  # the text's last token, kept out of the cache for a hole to re-write

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def add_text(self, text: str) -> None:
        if text:
            self.parts.append(text)
            self.script.append((None, text))
            self._pending.append((text, False))

    def set_role(self, role: str) -> str:
        """Start a message of ``role`` (closing the open one) with the model's chat template; the markup added."""
        markup = ""
        if self.role is not None:
            markup += self.model.role_markers(self.role)[1]
        markup += self.model.role_markers(role)[0]
        self.role = role
        self.script.append((role, ""))
        if markup:
            self.parts.append(markup)
            self._pending.append((markup, True))
        return markup

    def add_generated(self, text: str) -> None:
        """Text the model wrote: already in the cache, so only the prompt's text grows."""
        self.parts.append(text)
        self.script.append((None, text))

    def replay(self, other: Prompt, start: int = 0) -> None:
        """Write this prompt's script from entry ``start`` on into ``other``, in the chat markup of ``other``'s
        model: a block run on another model, or its text brought back, keeps its messages, not the markup."""
        for role, text in self.script[start:]:
            if role is not None:
                other.set_role(role)
            else:
                other.add_text(text)

    def flush(self, heal: Callable[[int], bool] | None = None) -> Any:
        """Evaluate the buffered text; the sequence, ready to continue. With ``heal`` (a hole comes next), the
        text's last token is held back when ``heal`` says a hole should re-write it (:meth:`take_healed`)."""
        tokens: list[int] = []
        if self.seq is None and self.model.add_bos and self.model.bos_token is not None:
            tokens.append(self.model.bos_token)
        if self._held is not None:  # no hole took it: it goes back, tokenized with the text after it
            self._pending.insert(0, (self.model.token_bytes[self._held].decode("utf-8"), False))
            self._held = None
        ends_in_text = bool(self._pending) and not self._pending[-1][1]
        # Adjacent pieces of the same kind are tokenized as one text, so an interpolated value does not split
        # tokens where it meets the text around it.
        for special, group in itertools.groupby(self._pending, key=lambda piece: piece[1]):
            tokens.extend(self.model.tokenize("".join(text for text, _ in group), special=special))
        self._pending.clear()
        if heal is not None and ends_in_text and self._healable(tokens) and heal(tokens[-1]):
            self._held = tokens.pop()
        if self.seq is None and not tokens:
            tokens = self._start_token()
        started = time.perf_counter()
        if self.seq is None:
            self.seq, evaluated = self.pool.sequence_for(tokens)
            self.prefill_tokens += evaluated
        elif tokens:
            self.seq.append(tokens)
            self.prefill_tokens += len(tokens)
        self.prefill_seconds += time.perf_counter() - started
        return self.seq

    def take_healed(self) -> bytes:
        """The held-back token's bytes, which the hole now being opened writes first (b"": none is held). The
        prompt's text keeps them: the hole's value is what follows."""
        held, self._held = self._held, None
        return b"" if held is None else self.model.token_bytes[held]

    def _healable(self, tokens: list[int]) -> bool:
        """Whether the last of ``tokens`` (text just tokenized) may be held back: a text token of whole characters,
        leaving something before it to take the next token's logits from."""
        if len(tokens) < (1 if self.seq is not None else 2):
            return False
        last = tokens[-1]
        if last in self.model.special_tokens or last in self.model.eog_tokens or last == self.model.bos_token:
            return False
        piece = self.model.token_bytes[last]
        try:
            piece.decode("utf-8")
        except UnicodeDecodeError:
            return False
        return bool(piece)

    def _start_token(self) -> list[int]:
        """What an empty prompt starts from, so that the model has logits to give: its beginning-of-sequence token,
        as LMQL does, even for a model that adds none before text. A model without one has nothing neutral to start
        from (any other token would steer what it writes), so that is an error."""
        if self.model.bos_token is None:
            raise ModelError(None, "the query's first hole has no text before it and this model has no "
                                   "beginning-of-sequence token to start from: write some text before the hole")
        return [self.model.bos_token]

    def mark(self) -> tuple[int, int, str | None, int]:
        """The prompt as it is now, to :meth:`rewind` to (its text is evaluated first, so the cache holds it)."""
        seq = self.flush()
        return len(self.parts), len(self.script), self.role, len(seq.tokens)

    def rewind(self, mark: tuple[int, int, str | None, int]) -> None:
        """Back to ``mark``: whatever was added since leaves the text and the cache."""
        parts, script, role, tokens = mark
        del self.parts[parts:]
        del self.script[script:]
        self.role = role
        self._pending.clear()
        self._held = None
        if self.seq is not None:
            self.seq.truncate(tokens)

    def replace_since(self, tokens: int, text: str, healed: bytes = b"") -> None:
        """``text`` instead of what the cache holds after its first ``tokens`` tokens (a generated value the
        prompt shows otherwise); it is evaluated with the next flush, after the ``healed`` bytes when the value
        had re-written the prompt's last token (the prompt's text has them already)."""
        if self.seq is not None:
            self.seq.truncate(tokens)
        if healed:
            self._pending.append((healed.decode("utf-8"), False))
        self.add_text(text)

    def fork(self) -> Prompt:
        """An independent copy; the sequence is forked in the cache, sharing what is evaluated."""
        other = Prompt(self.model, self.pool)
        other.parts = list(self.parts)
        other.script = list(self.script)
        other.role = self.role
        other._pending = list(self._pending)
        other._held = self._held
        other.seq = self.seq.fork() if self.seq is not None else None
        return other

    def close(self) -> None:
        """Hand the sequence back for later runs to reuse."""
        if self.seq is not None:
            self.pool.give_back(self.seq)
            self.seq = None
