"""Decoding one hole: the token loop, with masks, stop phrases and token limits.

The loop reads llama.cpp's logits in place, masks them (the constraint's automaton says which tokens may come
next), picks a token, and feeds it back. Stop phrases need no mask: the decoded bytes are watched and, when a
phrase appears (inside a token or across several), the value is cut there and the cache rewound to the kept text.

The loop's state is a :class:`HoleCursor`, so that decoders over several runs can advance many holes by one token
each in a single batch, and beam search can copy a hole half-way through.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import numpy as np

from lmlang.decoding.sampler import Sampler, log_normalizer, top_two_margin
from lmlang.errors import ConstraintError
from lmlang.source import Span

_HALF = math.log(0.5)


class Matcher(Protocol):  # lmlang.masks.TokenMatcher, as the decoder uses it
    def start(self) -> int: ...
    def choices(self, state: int, logits: np.ndarray, out: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]: ...
    def advance(self, state: int, token: int) -> int: ...
    def accepts(self, state: int) -> bool: ...
    def forced(self, state: int) -> bytes | None: ...
    def sole(self, state: int) -> int | None: ...
    def forced_text(self, state: int) -> bytes: ...
    def only_end(self, state: int) -> bool: ...


@dataclass
class HoleOutcome:
    """What one hole produced: its text, the tokens now in the cache for it, and their scores."""

    text: str
    tokens: list[int]
    token_logprobs: list[float] = field(default_factory=list)  # of each token the decoder chose, in order
    margin: float | None = None
    # Tokens chosen by the decoder: the model's steps. Forced text and the tokens the constraint alone decides
    # (which ride in the step before them) are not chosen.
    sampled: int = 0
    # For the views (lmlang.result.token_pieces): each step's bytes (None: the end of text), log-probability,
    # whether it was forced, and the model's likeliest token when the constraints forbade it.
    steps: list[tuple[bytes | None, float, bool, bytes | None]] = field(default_factory=list)
    cut: bytes | None = None  # what a stop phrase cut off the value's end
    healed_tokens: int = 0  # leading tokens that only re-wrote the prompt's healed bytes (not the value's)

    @property
    def logprob(self) -> float:
        return float(sum(self.token_logprobs))

    @property
    def mean_logprob(self) -> float | None:
        return self.logprob / len(self.token_logprobs) if self.token_logprobs else None


@dataclass(frozen=True)
class Candidates:
    """The next token's choices. ``logits[i]`` scores token ``ids[i]`` -- or token ``i`` when ``ids`` is None and
    ``logits`` is the whole row, at -inf where the constraint forbids. ``log_total`` is the log of the model's
    unmasked normalizer, so that :meth:`logprob` is the model's own log-probability of the choice."""

    logits: np.ndarray
    ids: np.ndarray | None
    log_total: float

    def token(self, i: int) -> int:
        return int(i) if self.ids is None else int(self.ids[i])

    def logprob(self, i: int) -> float:
        return float(self.logits[i]) - self.log_total

    def pick(self, sampler: Sampler) -> tuple[int, float]:
        """The token ``sampler`` chooses, and its log-probability."""
        i = sampler.choose(self.logits)
        return self.token(i), self.logprob(i)


@dataclass
class HoleRequest:
    var: str
    span: Span | None
    stops: tuple[tuple[str, bool], ...]
    limit: int
    matcher: Matcher | None
    min_tokens: int = 0  # before this many tokens, neither an end of text nor a stop phrase ends the value
    # The prompt's last token's bytes, taken back from the cache: the first tokens re-write them, and the value is
    # what follows (lmlang.masks.healing). ``matcher`` then matches them first; a hole without a matcher of its
    # own has ``healing``, which matches them alone and is dropped once they are written.
    heal: bytes = b""
    healing: Matcher | None = None


class HoleCursor:
    """A hole being generated into one sequence (a ``models.llama.Sequence``), one chosen token at a time.

    Each step is :meth:`take_forced`, or :meth:`scores` then :meth:`take` of a token; ``take`` returns the token
    the caller must append to the sequence (alone, or batched with other cursors' tokens) before the next step.
    Once ``done``, the cache holds the prompt followed by exactly the value's tokens.
    """

    def __init__(self, seq: Any, request: HoleRequest, on_piece: Callable[[bytes], None] | None = None) -> None:
        self.seq = seq
        self.request = request
        self.on_piece = on_piece
        self.start = len(seq.tokens)
        self.matcher = request.matcher if request.matcher is not None else request.healing
        self.state = self.matcher.start() if self.matcher is not None else 0
        self.value = bytearray()  # the bytes written, the healed ones first: the value is what follows them
        self._healed = len(request.heal)
        self._written = 0  # tokens taken, chosen or decided by the constraint: what token bounds count
        self._rewriting = 0  # tokens that wrote healed bytes only: not the value's, so not counted
        self.outcome = HoleOutcome("", [])
        self.done = False
        self._buffer: np.ndarray | None = None  # scratch row of the normalizer, then the masked logits
        self._wanted: int | None = None  # this step's likeliest token, when the constraints forbid it
        # A phrase can only newly appear in the last (longest phrase + new piece) bytes.
        self._overlap = max((len(p.encode()) for p, _ in request.stops), default=0)

    def copy(self, seq: Any) -> HoleCursor:
        """This cursor continuing in ``seq``, a fork of its sequence; the copy streams nothing."""
        other = copy.copy(self)
        other.seq, other.on_piece, other.value = seq, None, bytearray(self.value)
        other._buffer = None
        other.outcome = HoleOutcome(self.outcome.text, list(self.outcome.tokens), list(self.outcome.token_logprobs),
                                    self.outcome.margin, self.outcome.sampled, list(self.outcome.steps))
        return other

    @property
    def logprob(self) -> float:
        return self.outcome.logprob

    @property
    def text(self) -> bytes:
        """The value so far: the bytes written after the healed ones."""
        return bytes(self.value[self._healed:])

    @property
    def _healing(self) -> bool:
        """Whether the healed bytes are still being written."""
        return len(self.value) < self._healed

    def _shown(self, before: int, end: int | None = None) -> bytes:
        """The value's part of the bytes written from ``before`` (to ``end``): none of the healed ones."""
        return bytes(self.value[max(before, self._healed):end])

    @property
    def counted(self) -> int:
        """The value's tokens chosen so far, as its token bounds count them (a token that only re-wrote healed
        bytes is not one of them)."""
        return self._written - self._rewriting

    @property
    def _too_short(self) -> bool:
        """Whether the value may not end yet: it has fewer than ``min_tokens`` tokens."""
        return self.counted < self.request.min_tokens

    def take_forced(self) -> bool:
        """When the constraint leaves one way to go on, write it into the cache and finish; whether it did."""
        matcher = self.matcher
        forced = matcher.forced(self.state) if matcher is not None else None
        if forced is None:
            return False
        if self.outcome.margin is None:  # the model had no choice to make
            self.outcome.margin = 1.0
        before = len(self.value)
        self.value += forced
        self.outcome.steps.append((self._shown(before), 0.0, True, None))
        _settle(self.seq, self.start, self.outcome, bytes(self.value), retokenize=True)
        request = self.request
        count = len(self.outcome.tokens) - leading_within(self.outcome.tokens, self.seq.model.token_bytes,
                                                           self._healed)
        if count > request.limit:
            text = self.text.decode("utf-8", "replace")
            raise ConstraintError(request.span, f"the value of {request.var} can only be {text!r}, which takes "
                                                f"{count} tokens, over its limit of "
                                                f"{request.limit}: raise max_tokens or loosen its constraints")
        self._finish(len(forced))
        return True

    def ends_here(self) -> bool:
        """When the value is complete and the constraint lets nothing follow, finish without asking the model for
        logits (ending adds nothing to the value's log-probability, as forced text does not); whether it did."""
        matcher = self.matcher
        if matcher is None or self._too_short or not matcher.only_end(self.state):
            return False
        if self.outcome.margin is None:
            self.outcome.margin = 1.0
        self.outcome.steps.append((None, 0.0, True, None))
        self._finish(0)
        return True

    def sole_tokens(self) -> list[int]:
        """The tokens the constraint decides from here, one after the other, up to, not including, one that would
        end the value (a stop phrase, the token limit): each token that is the only one allowed, and, where the
        constraint forces a text that several tokenizations could spell (``, "age": `` in JSON), that text in the
        model's own tokenization but for its last token, which the model chooses (it may join what follows)."""
        matcher = self.matcher
        if matcher is None:
            return []
        pieces = self.seq.model.token_bytes
        chain: list[int] = []
        state, value, count = self.state, bytearray(self.value), self.counted
        while count + 1 < self.request.limit:
            sole = matcher.sole(state)
            upcoming = [sole] if sole is not None else self._spelt(matcher.forced_text(state))[:-1]
            if not upcoming:
                break
            for token in upcoming:
                following = matcher.advance(state, token)
                before = len(value)
                value += pieces[token]
                ends = count + 1 >= self.request.limit or self._stop_in(value, before, count + 1) is not None
                if following < 0 or ends:
                    return chain
                chain.append(token)
                state, count = following, count + 1
        return chain

    def _spelt(self, text: bytes) -> list[int]:
        """``text``'s tokens as the model's tokenizer writes it, or none when they do not spell it exactly."""
        whole = text[: _whole_characters(text)]
        if not whole:
            return []
        model = self.seq.model
        tokens = model.tokenize(whole.decode("utf-8"))
        return tokens if b"".join(model.token_bytes[t] for t in tokens) == whole else []

    def take_sole(self, token: int, logits: np.ndarray) -> None:
        """Add ``token``, which :meth:`sole_tokens` gave, scored by the model's ``logits`` before it: the value
        and its scores are what a step choosing it as the only allowed token would give."""
        if self._buffer is None:
            self._buffer = np.empty_like(logits)
        _, log_total = log_normalizer(logits, self._buffer)
        top = int(logits.argmax())
        self._wanted = top if top != token else None
        self.take(token, float(logits[token]) - log_total, chosen=False)

    def scores(self) -> Candidates:
        """The choices for the next token: only the allowed ones when a constraint leaves few, else the whole
        row (masked, in a buffer of the cursor's own: the backend's logits are a read-only view of llama.cpp's)."""
        return self._candidates(*self._normalized())

    def choose(self, sampler: Sampler) -> tuple[int, float]:
        """The next token ``sampler`` picks under the constraint, and its log-probability."""
        raw, peak, log_total = self._normalized()
        leaving, self._wanted = None, None
        if sampler.greedy and self.matcher is not None and self.outcome.margin is not None and not self._healing:
            quick, leaving = self._top_if_allowed(raw, peak, log_total)
            if quick is not None:
                return quick
        return self._candidates(raw, peak, log_total, leaving).pick(sampler)

    def _normalized(self) -> tuple[np.ndarray, float, float]:
        """The step's raw logits, their peak and log-normalizer; the buffer then holds exp(raw - peak)."""
        raw = self.seq.logits()
        if self._buffer is None:
            self._buffer = np.empty_like(raw)
        return (raw, *log_normalizer(raw, self._buffer))

    def _leaving(self, peak: float, log_total: float) -> float:
        """The mass (relative to the peak's) the constraint forbids where the value is complete: what ending it
        gets. Reads exp(raw - peak) from the buffer, so it comes before the mask is written there."""
        matcher = self.matcher
        if matcher is None or not matcher.accepts(self.state) or self._too_short:
            return 0.0
        total = math.exp(log_total - peak)
        return total - matcher.allowed_mass(self.state, self._buffer, total)

    def _candidates(self, raw: np.ndarray, peak: float, log_total: float, leaving: float | None = None) -> Candidates:
        ids, logits = None, raw
        matcher = self.matcher
        if matcher is not None:
            if leaving is None:
                leaving = self._leaving(peak, log_total)
            ids, logits = matcher.choices(self.state, raw, self._buffer)
            if leaving > 0:
                ids, logits = _end_where_leaving(raw, ids, logits, peak, leaving, self.seq.model.eog_tokens)
        if self._too_short:
            ids, logits = _without(self.seq.model.eog_tokens, ids, logits, raw)
        if self._healing:
            # The prompt holds the healed bytes: the model's choices are weighed among the tokens that write
            # them, not against tokens that would have contradicted the prompt.
            log_total = _log_sum(logits)
            self._wanted = None
        elif matcher is not None or self._too_short:
            top = int(raw.argmax())
            at = top if ids is None else next(iter(np.flatnonzero(ids == top)), None)
            self._wanted = top if at is None or not np.isfinite(logits[at]) else None
        if self.outcome.margin is None and np.count_nonzero(np.isfinite(logits)) >= 2:
            # The margin is the first choice's: a step with one token allowed (a lone space before digits that
            # differ, the start two listed values share) is no choice.
            self.outcome.margin = top_two_margin(logits)
        return Candidates(logits, ids, log_total)

    def _top_if_allowed(self, raw: np.ndarray, peak: float,
                        log_total: float) -> tuple[tuple[int, float] | None, float | None]:
        """The model's own likeliest token, when the mask would not change what argmax picks: it is allowed, and
        ending the value could not take its place (the mass the mask would give to ending is under the top
        token's share). What llama.cpp's grammar sampler also does: no mask at all on most greedy steps. Also
        the ending mass when it had to be measured, for the masked step to reuse."""
        top = int(raw.argmax())
        matcher = self.matcher
        assert matcher is not None
        if matcher.advance(self.state, top) < 0 or (self._too_short and top in self.seq.model.eog_tokens):
            return None, None
        logprob = float(raw[top]) - log_total
        if not matcher.accepts(self.state) or logprob > _HALF:
            return (top, logprob), None
        # Under half the mass, the top token could lose to ending: weigh what ending would get.
        leaving = self._leaving(peak, log_total)
        eog = self.seq.model.eog_tokens
        end = max(eog, key=lambda t: raw[t]) if eog else top
        if end != top and math.exp(float(raw[end]) - peak) + leaving >= 1.0:  # the top's weight is exp(0)
            return None, leaving
        return (top, logprob), leaving

    def take(self, token: int, logprob: float, chosen: bool = True) -> int | None:
        """Add ``token`` (``chosen`` by the decoder, else decided by the constraint); the token to append to the
        sequence now, or None when nothing is to be appended (the hole ended and its value is in the cache)."""
        request, outcome, value = self.request, self.outcome, self.value
        if not np.isfinite(logprob):
            raise ConstraintError(request.span, f"no token can continue the value of {request.var} after "
                                                f"{self.text.decode('utf-8', 'replace')!r}: its constraints "
                                                "cannot be met from here")
        outcome.sampled += chosen
        self._written += 1
        seq = self.seq
        wanted = None if self._wanted is None else seq.model.token_bytes[self._wanted]
        self._wanted = None
        if token in seq.model.eog_tokens:
            outcome.token_logprobs.append(logprob)
            outcome.steps.append((None, logprob, False, wanted))
            self._finish(0)
            return None
        piece = seq.model.token_bytes[token]
        before = len(value)
        value += piece
        if len(value) <= self._healed:
            # Only the prompt's own bytes again: part of the prompt, not of the value or its score.
            self._rewriting += 1
        else:
            outcome.token_logprobs.append(logprob)
            outcome.steps.append((self._shown(before), logprob, False, wanted))
        if self.matcher is not None:
            self.state = self.matcher.advance(self.state, token)
            if self.matcher is not request.matcher and not self._healing:  # healed: nothing more to match
                self.matcher, self.state = None, 0
        cut = self._stop_in(value, before, self.counted)
        if cut is not None:
            if self.on_piece is not None:
                self.on_piece(self._shown(before, max(before, cut)))
            outcome.tokens.append(token)
            outcome.cut = bytes(value[cut:])
            del value[cut:]
            _settle(seq, self.start, outcome, bytes(value), pending=[token])
            self.on_piece = None
            self._finish(0)
            return None
        outcome.tokens.append(token)
        if self.on_piece is not None and len(value) > self._healed:
            self.on_piece(self._shown(before))
        if self.counted >= request.limit:
            if self._healing or self.matcher is not None and not self.matcher.accepts(self.state):
                raise ConstraintError(request.span, f"the value of {request.var} was still incomplete after "
                                                    f"{request.limit} tokens ({self.text.decode('utf-8', 'replace')!r}): "
                                                    "raise max_tokens or loosen its constraints")
            whole = _whole_characters(value)
            if whole < len(value):  # the limit cut a character in two: the value ends before it
                del value[whole:]
                _settle(seq, self.start, outcome, bytes(value), pending=[token])
                self._finish(0)
                return None
            self._finish(0)
        return token

    def preview(self, token: int) -> tuple[bytes, bool]:
        """The value's bytes if ``token`` were taken, and whether that would end the hole; nothing changes."""
        model = self.seq.model
        if token in model.eog_tokens:
            return bytes(self.value), True
        value = self.value + model.token_bytes[token]
        cut = self._stop_in(value, len(self.value), self.counted + 1)
        if cut is not None:
            return bytes(value[:cut]), True
        return bytes(value), self.counted + 1 >= self.request.limit

    def _stop_in(self, value: bytes | bytearray, before: int, tokens: int) -> int | None:
        """Where a stop phrase ending after byte ``before`` (in the newest piece) cuts ``value``, a value of
        ``tokens`` tokens; None when none does, or while the value is shorter than the token minimum."""
        if not self.request.stops or tokens < self.request.min_tokens:
            return None
        return _stop_cut(value, self.request.stops, max(self._healed, before - self._overlap), before)

    def _finish(self, tail: int) -> None:
        if self.on_piece is not None and tail:
            shown = self._shown(len(self.value) - tail)
            if shown:
                self.on_piece(shown)
        self.outcome.text = self.text.decode("utf-8", errors="replace")
        if self.outcome.margin is None:  # no step had more than one token to choose from
            self.outcome.margin = 1.0
        if self._healed:
            self.outcome.healed_tokens = leading_within(self.outcome.tokens, self.seq.model.token_bytes, self._healed)
        self.done = True


def decode_hole(seq: Any, request: HoleRequest, sampler: Sampler,
                on_piece: Callable[[bytes], None] | None = None) -> HoleOutcome:
    """Generate the value of one hole into ``seq`` (a ``models.llama.Sequence``), leaving the cache holding the
    prompt followed by exactly the value's tokens."""
    return generate(HoleCursor(seq, request, on_piece), sampler)


# The token step, shared by every decoding loop: ``settle`` before asking the model (forced text, or an end nothing
# may extend), then ``step`` with the token chosen (the loop's own way: greedy, sampled, or beam proposals), append
# the tokens it returns to the sequence, alone or batched with other cursors', and ``score_chain`` with the logits
# before each token after the first.

def settle(cursor: HoleCursor) -> bool:
    """Finish the hole without the model where the constraint decides the rest (forced text) or allows only its
    end; whether it did."""
    return cursor.take_forced() or cursor.ends_here()


def step(cursor: HoleCursor, chosen: tuple[int, float], fast_forward: bool = True) -> list[int]:
    """Take the ``chosen`` token (and its log-probability); the tokens to append to the cursor's sequence now:
    the chosen one, then (``fast_forward``) the tokens the constraint alone decides after it (a fixed separator,
    the rest of the only word that fits), which ride in the same llama_decode. Empty when the hole ended and its
    value is in the cache already."""
    follow = cursor.take(*chosen)
    if follow is None:
        return []
    return [follow, *(cursor.sole_tokens() if fast_forward and not cursor.done else [])]


def score_chain(cursor: HoleCursor, tokens: list[int], logits: list[np.ndarray]) -> None:
    """Score the fast-forwarded tokens of a :func:`step` (``tokens[1:]``) with the logits before each."""
    for token, row in zip(tokens[1:], logits):
        cursor.take_sole(token, row)


def generate(cursor: HoleCursor, sampler: Sampler) -> HoleOutcome:
    """Step ``cursor`` to the end of its hole, one llama_decode per token the model chooses.

    The last chosen token is only pushed: whatever comes next (the next step, or the prompt's text after the hole)
    evaluates it.
    """
    seq = cursor.seq
    while not settle(cursor):
        tokens = step(cursor, cursor.choose(sampler))
        if not tokens:
            break
        seq.push(tokens)
        if len(tokens) > 1:
            score_chain(cursor, tokens, seq.logits_along(len(tokens)))
        if cursor.done:
            break
    return cursor.outcome


def _end_where_leaving(raw: np.ndarray, ids: np.ndarray | None, logits: np.ndarray, peak: float, leaving: float,
                       eog: frozenset[int]) -> tuple[np.ndarray | None, np.ndarray]:
    """Where the value is complete, a token the constraint forbids means the model wants to write something
    else: its probability (``leaving``, relative to the peak's) goes to ending the value, on the likeliest end
    token. Without this, `[N: int]` after a number the model considers finished could only go on with digits
    until the token limit."""
    if not eog:
        return ids, logits
    end = max(eog, key=lambda t: raw[t])
    if ids is None:
        at = end
    else:
        found = np.flatnonzero(ids == end)
        if len(found):
            at = int(found[0])
        else:  # not allowed by the mask itself: it joins the choices with only the leaving mass
            ids, logits, at = np.append(ids, end), np.append(logits, -np.inf).astype(logits.dtype), len(ids)
    kept = math.exp(float(logits[at]) - peak) if np.isfinite(logits[at]) else 0.0
    logits[at] = peak + math.log(kept + leaving)
    return ids, logits


def leading_within(tokens: list[int], pieces: list[bytes], size: int) -> int:
    """How many of the first ``tokens`` lie wholly in the first ``size`` bytes they spell."""
    count, used = 0, 0
    for token in tokens:
        used += len(pieces[token])
        if used > size:
            break
        count += 1
    return count


def _log_sum(logits: np.ndarray) -> float:
    """log(sum(exp(logits))) over the finite ones (-inf when none is)."""
    peak = float(logits.max(initial=-np.inf))
    if not np.isfinite(peak):
        return peak
    return peak + math.log(float(np.exp(logits - peak, dtype=np.float64).sum()))


def _without(tokens: frozenset[int], ids: np.ndarray | None, logits: np.ndarray,
             raw: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
    """The choices without ``tokens`` (the ends of text, while the value is too short to end)."""
    if ids is not None:
        keep = ~np.isin(ids, list(tokens))
        return ids[keep], logits[keep]
    if logits is raw:  # the backend's read-only row: copied once, in the few steps this applies
        logits = raw.copy()
    logits[list(tokens)] = -np.inf
    return None, logits


def _stop_cut(value: bytes | bytearray, stops: tuple[tuple[str, bool], ...], searched_from: int,
              ends_after: int) -> int | None:
    """Where the value ends if a stop phrase now appears in it, ending after byte ``ends_after`` (where the new
    piece starts: an occurrence ending before was seen already, or came before a minimum length), else None. The
    phrase whose occurrence is complete first wins (ties: the shorter value), as the constraint's mask reads it."""
    best: tuple[int, int] | None = None  # (where the phrase's occurrence ends, where the value ends)
    for phrase, keep in stops:
        encoded = phrase.encode()
        at = value.find(encoded, searched_from)
        while 0 <= at and at + len(encoded) <= ends_after:
            at = value.find(encoded, at + 1)
        if at >= 0:
            candidate = (at + len(encoded), at + len(encoded) if keep else at)
            if best is None or candidate < best:
                best = candidate
    return None if best is None else best[1]


def _whole_characters(value: bytes | bytearray) -> int:
    """How many leading bytes of ``value`` are whole UTF-8 characters: all but an unfinished last one."""
    for back in range(1, min(4, len(value)) + 1):
        byte = value[-back]
        if byte < 0x80:
            return len(value)
        if byte >= 0xC0:  # the lead byte of the last character: is the character all there?
            need = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return len(value) if back >= need else len(value) - back
    return len(value)


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
