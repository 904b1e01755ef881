"""Decoding one hole: the token loop, with masks, stop phrases and token limits.

The loop reads llama.cpp's logits in place, masks them (the constraint's automaton says which tokens may come
next), picks a token, and feeds it back. Stop phrases need no mask: the decoded bytes are watched and, when a
phrase appears (inside a token or across several), the value is cut there and the cache rewound to the kept text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import numpy as np

from lmlang.decoding.sampler import Sampler, top_two_margin
from lmlang.errors import ConstraintError
from lmlang.source import Span


class Matcher(Protocol):  # lmlang.masks.TokenMatcher, as the decoder uses it
    def start(self) -> int: ...
    def mask_logits(self, state: int, logits: np.ndarray) -> None: ...
    def advance(self, state: int, token: int) -> int: ...
    def accepts(self, state: int) -> bool: ...
    def forced(self, state: int) -> bytes | None: ...


@dataclass
class HoleOutcome:
    """What one hole produced: its text, the tokens now in the cache for it, and their scores."""

    text: str
    tokens: list[int]
    token_logprobs: list[float] = field(default_factory=list)
    margin: float | None = None
    sampled: int = 0  # tokens chosen by the sampler (a forced or re-tokenized tail is not sampled)

    @property
    def logprob(self) -> float:
        return float(sum(self.token_logprobs))

    @property
    def mean_logprob(self) -> float | None:
        return self.logprob / len(self.token_logprobs) if self.token_logprobs else None


@dataclass
class HoleRequest:
    var: str
    span: Span | None
    stops: tuple[tuple[str, bool], ...]
    limit: int
    matcher: Matcher | None


def decode_hole(seq: Any, request: HoleRequest, sampler: Sampler,
                on_piece: Callable[[bytes], None] | None = None) -> HoleOutcome:
    """Generate the value of one hole into ``seq`` (a ``models.llama.Sequence``), leaving the cache holding the
    prompt followed by exactly the value's tokens."""
    model = seq.model
    token_bytes, eog = model.token_bytes, model.eog_tokens
    start = len(seq.tokens)
    matcher, stops = request.matcher, request.stops
    state = matcher.start() if matcher is not None else 0
    value = bytearray()
    outcome = HoleOutcome("", [])
    # A phrase can only newly appear in the last (longest phrase + new piece) bytes.
    overlap = max((len(p.encode()) for p, _ in stops), default=0)
    for _ in range(request.limit):
        if matcher is not None:
            forced = matcher.forced(state)
            if forced is not None:
                value += forced
                _settle(seq, start, outcome, bytes(value), retokenize=True)
                return _finish(outcome, value, on_piece, len(forced))
        logits = seq.logits()
        peak = float(logits.max())
        log_total = peak + float(np.log(np.exp(logits - peak, dtype=np.float64).sum()))
        if matcher is not None:
            logits = logits.copy()  # the backend's logits are a read-only view of llama.cpp's buffer
            matcher.mask_logits(state, logits)
        if outcome.margin is None:
            outcome.margin = top_two_margin(logits)
        token = sampler.choose(logits)
        if not np.isfinite(logits[token]):
            raise ConstraintError(request.span, f"no token can continue the value of {request.var} after "
                                                f"{bytes(value).decode('utf-8', 'replace')!r}: its constraints "
                                                "cannot be met from here")
        outcome.token_logprobs.append(float(logits[token]) - log_total)
        outcome.sampled += 1
        if token in eog:
            return _finish(outcome, value, on_piece, 0)
        if matcher is not None:
            state = matcher.advance(state, token)
        piece = token_bytes[token]
        searched_from = max(0, len(value) - overlap)
        value += piece
        cut = _stop_cut(value, stops, searched_from) if stops else None
        if cut is not None:
            if on_piece is not None:
                on_piece(piece[: max(0, cut - (len(value) - len(piece)))])
            outcome.tokens.append(token)
            del value[cut:]
            _settle(seq, start, outcome, bytes(value), pending=[token])
            return _finish(outcome, value, None, 0)
        seq.append([token])
        outcome.tokens.append(token)
        if on_piece is not None:
            on_piece(piece)
    if matcher is not None and not matcher.accepts(state):
        raise ConstraintError(request.span, f"the value of {request.var} was still incomplete after "
                                            f"{request.limit} tokens ({bytes(value).decode('utf-8', 'replace')!r}): "
                                            "raise max_tokens or loosen its constraints")
    return _finish(outcome, value, None, 0)


def _finish(outcome: HoleOutcome, value: bytearray, on_piece: Callable[[bytes], None] | None,
            tail: int) -> HoleOutcome:
    if on_piece is not None and tail:
        on_piece(bytes(value[-tail:]))
    outcome.text = bytes(value).decode("utf-8", errors="replace")
    return outcome


def _stop_cut(value: bytearray, stops: tuple[tuple[str, bool], ...], searched_from: int) -> int | None:
    """Where the value ends if a stop phrase now appears in it (the earliest one wins), else None."""
    best: int | None = None
    for phrase, keep in stops:
        encoded = phrase.encode()
        at = value.find(encoded, searched_from)
        if at >= 0:
            end = at + len(encoded) if keep else at
            if best is None or end < best:
                best = end
    return best


def _settle(seq: Any, start: int, outcome: HoleOutcome, kept: bytes, *, pending: list[int] | None = None,
            retokenize: bool = False) -> None:
    """Make the cache hold the prompt and exactly the bytes ``kept`` of the value.

    Tokens wholly inside ``kept`` stay (``pending`` ones, not yet evaluated, are evaluated now); a partial tail is
    tokenized and appended. With ``retokenize`` the whole value is tokenized afresh (canonical tokens after forced
    text) and only the tokens that differ are replaced.
    """
    model = seq.model
    tokens = outcome.tokens
    if retokenize:
        wanted = model.tokenize(kept.decode("utf-8", errors="ignore"))
        common = 0
        while common < min(len(tokens), len(wanted)) and tokens[common] == wanted[common]:
            common += 1
        if common < len(tokens):
            seq.truncate(start + common)
        if common < len(wanted):
            seq.append(wanted[common:])
        outcome.tokens = list(wanted)
        return
    whole, size = 0, 0
    for token in tokens:
        length = len(model.token_bytes[token])
        if size + length > len(kept):
            break
        whole, size = whole + 1, size + length
    evaluated = len(tokens) - len(pending or [])
    if whole < evaluated:
        seq.truncate(start + whole)
    to_append = tokens[evaluated:whole] if whole > evaluated else []
    rest = model.tokenize(kept[size:].decode("utf-8", errors="ignore")) if size < len(kept) else []
    if to_append or rest:
        seq.append(to_append + rest)
    outcome.tokens = tokens[:whole] + rest
