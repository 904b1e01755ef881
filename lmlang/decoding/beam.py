"""Scripted beam search over whole programs: ``beam(n)``, ``beam_sample(n, temperature)`` and ``best_k(k)``.

Every beam is a run of its own (Python state, prompt, cache sequence). At each step every beam standing at a hole
proposes its next tokens (the ``n`` likeliest the constraints allow, or ``n`` drawn for ``beam_sample``); of all
proposals and of the beams whose program has finished, the ``n`` with the highest total log-probability survive.
A beam chosen more than once is forked (its execution by replay, its sequence by a copy in the cache), the chosen
tokens of all beams are evaluated in one llama_decode, and a beam whose hole ends runs its program on to its next
hole. Finished beams wait, competing with their final score, until no beam is left at a hole. Proposals and
beams that reach the same text are merged. ``best_k(k)`` is beam search of width ``k``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from lmlang.decoding.decoder import Decoder
from lmlang.decoding.run import OpenHole, Run
from lmlang.decoding.sampler import Sampler
from lmlang.decoding.settings import DecoderSettings
from lmlang.interpret.execution import CompiledProgram, Finished


@dataclass
class Beam:
    run: Run
    hole: OpenHole | None = None  # None once the program has finished
    value: Any = None  # the program's return value, once finished

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
        if not hole.cursor.take_forced():
            beam.hole = hole
            return
        run.execution.resume(decoder.close_hole(run, hole, hole.cursor.outcome))


def _step(decoder: Decoder, beams: list[Beam], width: int, settings: DecoderSettings, sampler: Sampler,
          runs: list[Run]) -> list[Beam]:
    """One token more on every surviving beam that stands at a hole."""
    proposals: list[tuple[float, int, int, float]] = []  # (total score, beam, token or -1 when finished, logprob)
    for i, beam in enumerate(beams):
        if beam.hole is None:
            proposals.append((beam.score, i, -1, 0.0))
            continue
        choices = beam.hole.cursor.scores()
        for at in sampler.expand(choices.logits, width):
            logprob = choices.logprob(at)
            proposals.append((beam.score + logprob, i, choices.token(at), logprob))
    if not proposals:  # every beam is stuck: report it as the single-run decoder would
        stuck = beams[0].hole
        assert stuck is not None
        stuck.cursor.take(0, float("-inf"))
    proposals.sort(key=lambda p: -p[0])
    chosen: dict[int, list[tuple[float, int, int, float]]] = {}
    reached: set[tuple[str, bytes, int, bool]] = set()
    for proposal in proposals:
        outcome = _reaches(beams[proposal[1]], proposal[2])
        if outcome not in reached:
            reached.add(outcome)
            chosen.setdefault(proposal[1], []).append(proposal)
            if len(reached) == width:
                break
    for i, beam in enumerate(beams):
        if i not in chosen:
            _drop(beam, runs)
    survivors: list[Beam] = []
    seqs, tokens = [], []
    for i, picks in chosen.items():
        family = [beams[i]] + [_fork(beams[i]) for _ in picks[1:]]  # forked before the parent moves on
        runs.extend(beam.run for beam in family[1:])
        for beam, (_, _, token, logprob) in zip(family, picks):
            survivors.append(beam)
            if beam.hole is not None:
                follow = beam.hole.cursor.take(token, logprob)
                if follow is not None:
                    seqs.append(beam.hole.cursor.seq)
                    tokens.append(follow)
    if seqs:
        decoder.model.decode_step(seqs, tokens)
    for beam in survivors:
        if beam.hole is not None and beam.hole.cursor.done:
            hole = beam.hole
            beam.run.execution.resume(decoder.close_hole(beam.run, hole, hole.cursor.outcome))
            _enter(decoder, beam, settings, sampler)
    return _distinct(survivors, runs)


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


def _reaches(beam: Beam, token: int) -> tuple[str, bytes, int, bool]:
    """Where a proposal leads: the text, the hole's value, the hole, and whether the value is complete. Proposals
    that lead to the same place by different tokens (" \n" or " " + "\n"; an end of text or a stop phrase) are
    one hypothesis, and only the likeliest of them is kept."""
    if beam.hole is None:
        return beam.run.prompt.text, b"", -1, True
    value, complete = beam.hole.cursor.preview(token)
    return beam.run.prompt.text, value, beam.hole.event.site.index, complete


def _fork(beam: Beam) -> Beam:
    run = beam.run.fork()
    hole = beam.hole
    if hole is not None:
        hole = OpenHole(hole.event, hole.plan, hole.cursor.copy(run.prompt.seq))
    return Beam(run, hole, beam.value)


def _drop(beam: Beam, runs: list[Run]) -> None:
    """Free a beam that lost: its cache sequence is released at once, not kept for reuse."""
    runs.remove(beam.run)
    seq = beam.run.prompt.seq
    if seq is not None:
        seq.release()
        beam.run.prompt.seq = None
