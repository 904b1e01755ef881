"""``sample(n=...)``: n runs of the program advanced together, one token of each per llama_decode.

The runs are forks of one run taken at its first hole, so the prompt up to there is evaluated once and shared in
the cache. Each run has its own sampler (seeded ``seed + i``), so a seeded result does not depend on how the runs
were batched.
"""

from __future__ import annotations

from typing import Any, Mapping

from lmlang.decoding.decoder import Decoder
from lmlang.decoding.run import OpenHole, Run
from lmlang.decoding.settings import DecoderSettings
from lmlang.interpret.execution import CompiledProgram, Finished, HoleEvent


def sample(decoder: Decoder, program: CompiledProgram, inputs: Mapping[str, Any], settings: DecoderSettings,
           runs: list[Run]) -> list[tuple[Run, Any]]:
    """``settings.results`` finished runs with their return values, likeliest first; ``runs`` collects every
    run made, for the caller to close."""
    samplers = [settings.sampler(i) for i in range(settings.results)]
    first = decoder.start(program, inputs)
    runs.append(first)
    if isinstance(decoder.advance(first, settings, samplers[0], None), HoleEvent):
        first.prompt.flush(heal=decoder.heals(settings.token_healing))  # evaluated once, shared by every fork
    runs.extend(first.fork() for _ in samplers[1:])
    holes: dict[int, OpenHole] = {}
    values: dict[int, Any] = {}

    def advance(i: int) -> None:
        hole = decoder.next_hole(runs[i], settings, samplers[i])
        if isinstance(hole, Finished):
            values[i] = hole.value
        else:
            holes[i] = hole

    for i in range(len(runs)):
        advance(i)
    while holes:
        seqs, tokens, ended = [], [], []
        for i, hole in holes.items():
            cursor = hole.cursor
            if not cursor.take_forced():
                follow = cursor.take(*cursor.choose(samplers[i]))
                if follow is not None:
                    seqs.append(cursor.seq)
                    tokens.append(follow)
            if cursor.done:
                ended.append(i)
        if seqs:
            decoder.model.decode_step(seqs, tokens)
        for i in ended:
            hole = holes.pop(i)
            runs[i].execution.resume(decoder.close_hole(runs[i], hole, hole.cursor.outcome))
            advance(i)
    order = sorted(values, key=lambda i: -runs[i].logprob)
    return [(runs[i], values[i]) for i in order]
