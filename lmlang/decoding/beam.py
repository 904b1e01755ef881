"""Scripted beam search over whole programs: ``beam(n)``, ``beam_sample(n, temperature)`` and ``best_k(k)``.

Every beam is a run of its own (Python state, prompt, cache sequence). At each step every beam standing at a hole
proposes its next tokens (the ``n`` likeliest the constraints allow that lead to distinct texts, or ``n`` drawn for
``beam_sample``); of all proposals and of the beams whose program has finished, the ``n`` with the highest total log-probability survive.
A beam chosen more than once is forked (its execution by replay, its sequence by a copy in the cache), the chosen
tokens of all beams are evaluated in one llama_decode, and a beam whose hole ends runs its program on to its next
hole. Finished beams wait, competing with their final score, until no beam is left at a hole. ``best_k(k)`` is
beam search of width ``k``.

Beams are distinct by text. Two paths can write the same text with different tokens (" x." in one token, or " x"
and "." a step later; " dog", or " d" after which the constraint forces "og", written at once as the single-run
decoder does); they are one hypothesis, and only the likelier path to that text stays. Since paths can reach the
text at different steps, every beam remembers the places its path passed and with what score: a proposal
arriving where another live beam has already been is dropped if that beam got there likelier, and otherwise that
beam (the continuation of the worse path, which the better one can re-derive) is dropped instead. A path whose
rest the constraint decides but the model has yet to score token by token (" d" when only "o", then only "g" may
follow) shares its text's place with the other path to it until the scores tell them apart. Without all this, the
duplicates would only merge when both finish, and ``beam(n)`` would return fewer than ``n`` results where ``n``
distinct ones exist.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Mapping

from lmlang.decoding.decoder import Decoder
from lmlang.decoding.hole import HoleCursor, settle, step
from lmlang.decoding.run import OpenHole, Run
from lmlang.decoding.sampler import Sampler
from lmlang.decoding.settings import DecoderSettings
from lmlang.interpret.execution import CompiledProgram, Finished


@dataclass
class Beam:
    run: Run
    hole: OpenHole | None = None  # None once the program has finished
    value: Any = None  # the program's return value, once finished
    # Every place (its goal, see Place) this beam's path has reached, with its score there; copied when it forks.
    passed: dict[bytes, float] = field(default_factory=dict)

    @property
    def score(self) -> float:
        return self.run.logprob + (self.hole.cursor.logprob if self.hole is not None else 0.0)


def search(decoder: Decoder, program: CompiledProgram, inputs: Mapping[str, Any], settings: DecoderSettings,
           runs: list[Run]) -> list[tuple[Run, Any]]:
    """Up to ``settings.results`` finished runs with their return values, best first; ``runs`` holds every live
    run, for the caller to close."""
    width = settings.results
    sampler = settings.sampler(0)
    start = decoder.start(program, inputs)
    runs.append(start)
    beams = [Beam(start)]
    _enter(decoder, beams[0], settings, sampler)
    while any(beam.hole is not None for beam in beams):
        beams = _step(decoder, beams, width, settings, sampler, runs)
    beams.sort(key=lambda beam: -beam.score)
    return [(beam.run, beam.value) for beam in beams]


def _enter(decoder: Decoder, beam: Beam, settings: DecoderSettings, sampler: Sampler) -> None:
    """Run the beam's program to its next hole that needs a choice (forced values are written on the way)."""
    run = beam.run
    while True:
        hole = decoder.next_hole(run, settings, sampler)
        if isinstance(hole, Finished):
            beam.hole, beam.value = None, hole.value
            return
        if not settle(hole.cursor):  # as the single-run decoder enters a hole
            beam.hole = hole
            return
        run.execution.resume(decoder.close_hole(run, hole, hole.cursor.outcome))


def _settle_hole(hole: OpenHole) -> bool:
    """After a chosen token, as the single-run decoder does: once no single token is the only one allowed (those
    are the model's to score, one step each), write what the constraint forces, or end a value nothing may
    extend; whether the hole is done."""
    cursor = hole.cursor
    return not cursor.sole_tokens() and settle(cursor)


def _step(decoder: Decoder, beams: list[Beam], width: int, settings: DecoderSettings, sampler: Sampler,
          runs: list[Run]) -> list[Beam]:
    """One token more on every surviving beam that stands at a hole."""
    places = [_Places(beam) for beam in beams]
    proposals: list[tuple[float, int, int, float, Place]] = []  # (total score, beam, token, logprob, place)
    for i, beam in enumerate(beams):
        if beam.hole is None:  # a finished beam proposes itself (token -1)
            proposals.append((beam.score, i, -1, 0.0, places[i].after(-1)))
        else:
            proposals.extend((beam.score + logprob, i, token, logprob, place)
                             for token, logprob, place in _extensions(beam.hole, places[i], width, sampler))
    if not proposals:  # every beam is stuck: report it as the single-run decoder would
        stuck = beams[0].hole
        assert stuck is not None
        stuck.cursor.take(0, float("-inf"))
    proposals.sort(key=lambda p: -p[0])
    chosen: dict[int, list[tuple[Place, float, int, float]]] = {}  # beam -> (place, score, token, logprob)
    reached: set[bytes] = set()  # where the chosen proposals stand
    slots: dict[bytes, int] = {}  # the texts they lead to, each with how many paths to it were chosen
    beaten: set[int] = set()  # beams another path to the same text has beaten
    for score, i, token, logprob, place in proposals:
        if i in beaten or place.now in reached:
            continue
        if slots.get(place.goal, 0) >= _PATHS or (place.goal not in slots and len(slots) == width):
            continue
        earlier = [j for j, other in enumerate(beams) if j != i and j not in beaten and place.goal in other.passed]
        if any(beams[j].passed[place.goal] >= score for j in earlier):
            continue  # a likelier path has reached this text already
        for j in earlier:
            beaten.add(j)
            for picked, *_ in chosen.pop(j, []):  # only by rounding: a beam's proposals score below its past
                reached.discard(picked.now)
                slots[picked.goal] -= 1
                if not slots[picked.goal]:
                    del slots[picked.goal]
        reached.add(place.now)
        slots[place.goal] = slots.get(place.goal, 0) + 1
        chosen.setdefault(i, []).append((place, score, token, logprob))
    for i, beam in enumerate(beams):
        if i not in chosen:
            _drop(beam, runs)
    survivors: list[Beam] = []
    seqs, tokens = [], []
    for i, picks in chosen.items():
        family = [beams[i]] + [_fork(beams[i]) for _ in picks[1:]]  # forked before the parent moves on
        runs.extend(beam.run for beam in family[1:])
        for beam, (place, score, token, logprob) in zip(family, picks):
            survivors.append(beam)
            beam.passed[place.goal] = score
            if beam.hole is not None:
                # Sole tokens are not fast-forwarded: a beam scores them one step each, comparable with the
                # other beams' steps (see Place).
                follow = step(beam.hole.cursor, (token, logprob), fast_forward=False)
                if follow:
                    seqs.append(beam.hole.cursor.seq)
                    tokens.extend(follow)
    if seqs:
        decoder.model.decode_step(seqs, tokens)
    for beam in survivors:
        hole = beam.hole
        if hole is not None and (hole.cursor.done or _settle_hole(hole)):
            beam.run.execution.resume(decoder.close_hole(beam.run, hole, hole.cursor.outcome))
            _enter(decoder, beam, settings, sampler)
    return _distinct(survivors, runs)


def _extensions(hole: OpenHole, places: _Places, width: int, sampler: Sampler) -> list[tuple[int, float, Place]]:
    """The hole's best next tokens (or drawn, for ``beam_sample``), each with its log-probability and place,
    leading to ``width`` distinct texts: tokens that lead to one place are one choice, so more are looked at until
    ``width`` texts are found or no token is left."""
    choices = hole.cursor.scores()
    count = width
    while True:
        found: dict[bytes, tuple[int, float, Place]] = {}
        positions = sampler.expand(choices.logits, count)
        for at in positions:
            token, logprob = choices.token(at), choices.logprob(at)
            place = places.after(token)
            if place.now not in found or found[place.now][1] < logprob:
                found[place.now] = (token, logprob, place)
        if len({place.goal for _, _, place in found.values()}) >= width or len(positions) < count:
            return list(found.values())
        count *= 2


def _distinct(beams: list[Beam], runs: list[Run]) -> list[Beam]:
    """One beam per text: beams that reached the same text by different tokens (" \n" or " " + "\n", a stop
    phrase cutting different tokens) are one hypothesis; the likelier is kept."""
    kept: dict[tuple[str, bytes, int], Beam] = {}
    for beam in sorted(beams, key=lambda b: -b.score):
        hole = beam.hole
        key = (beam.run.prompt.text, bytes(hole.cursor.value) if hole else b"", hole.event.site.index if hole else -1)
        if key in kept:
            _drop(beam, runs)
        else:
            kept[key] = beam
    return list(kept.values())


@dataclass(frozen=True)
class Place:
    """Where a proposal leads (digests: every beam keeps the places it passed). ``now`` is where the beam stands
    after the step: its prompt's text, the hole, its value and whether the value is complete. ``goal`` is the
    value it must become when the constraint leaves it one way to go on (" d" under ``in [" dog", " cat"]`` has
    the goal " dog", complete), else ``now``: paths with one goal are one text, whatever their tokens."""

    now: bytes
    goal: bytes


# Paths to one text kept side by side in a step (" dog", and " d" whose rest the model has yet to score): the
# next steps compare them and keep the likelier; they count as one of the n texts.
_PATHS = 2


class _Places:
    """The places a beam's proposals lead to. Proposals that reach one place by different tokens (" \n" or " " +
    "\n"; an end of text or a stop phrase) are one hypothesis."""

    def __init__(self, beam: Beam) -> None:
        self.beam = beam
        self.prompt = hashlib.blake2b(beam.run.prompt.text.encode("utf-8", "surrogatepass"), digest_size=16)
        if beam.hole is not None:
            self.prompt.update(beam.hole.event.site.index.to_bytes(8, "little", signed=True))

    def after(self, token: int) -> Place:
        """The place taking ``token`` leads to (-1: the finished beam staying as it is)."""
        hole = self.beam.hole
        if hole is None:
            here = self.prompt.digest()
            return Place(here, here)
        value, complete = hole.cursor.preview(token)
        rest = None
        if not complete:
            value, complete, rest = _settled(hole.cursor, token, value)
        now = self._digest(value, complete)
        return Place(now, now if rest is None else self._digest(value + rest, True))

    def _digest(self, value: bytes, complete: bool) -> bytes:
        place = self.prompt.copy()
        place.update(b"\1" if complete else b"\0")
        place.update(value)
        return place.digest()


def _settled(cursor: HoleCursor, token: int, value: bytes) -> tuple[bytes, bool, bytes | None]:
    """The value ``token`` leaves and whether it is complete, once :func:`_settle_hole` has run after it; and the
    rest the constraint still forces on it when the model has that rest to score token by token (else None)."""
    matcher = cursor.matcher
    if matcher is None:
        return value, False, None
    state = matcher.advance(cursor.state, token)
    if state < 0:
        return value, False, None
    forced = matcher.forced(state)
    if matcher.sole(state) is not None:  # one token allowed: the next step takes it (see _settle_hole)
        return value, False, forced
    if forced is not None:
        return value + forced, True, None
    return value, matcher.only_end(state) and cursor.counted + 1 >= cursor.request.min_tokens, None


def _fork(beam: Beam) -> Beam:
    run = beam.run.fork()
    hole = beam.hole
    if hole is not None:
        hole = OpenHole(hole.event, hole.plan, hole.cursor.copy(run.prompt.seq))
    return Beam(run, hole, beam.value, dict(beam.passed))


def _drop(beam: Beam, runs: list[Run]) -> None:
    """Free a beam that lost: its cache sequence is released at once, not kept for reuse."""
    runs.remove(beam.run)
    seq = beam.run.prompt.seq
    if seq is not None:
        seq.release()
        beam.run.prompt.seq = None
