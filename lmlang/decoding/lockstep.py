"""``sample(n=...)``: n runs of the program advanced together, one token of each per llama_decode.

The runs are forks of one run taken at its first hole, so the prompt up to there is evaluated once and shared in
the cache. Each run has its own sampler (seeded ``seed + i``), so a seeded result does not depend on how the runs
were batched.
"""

from __future__ import annotations

from typing import Any, Mapping

from lmlang.decoding.decoder import Decoder
from lmlang.decoding.hole import HoleCursor, score_chain, settle, step
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
    holes: dict[int, OpenHole] = {}
    values: dict[int, Any] = {}

    def advance(i: int) -> None:
        hole = decoder.next_hole(runs[i], settings, samplers[i])
        if isinstance(hole, Finished):
            values[i] = hole.value
        else:
            holes[i] = hole

    event = decoder.advance(first, settings, samplers[0], None)
    if isinstance(event, HoleEvent):
        # The first hole is opened once (its prompt evaluated, healed as a lone run's is) and copied into every fork.
        opened = decoder.open_hole(first, event, settings, None)
        runs.extend(first.fork() for _ in samplers[1:])
        holes[0] = opened
        for i in range(1, len(runs)):
            holes[i] = OpenHole(opened.event, opened.plan, opened.cursor.copy(runs[i].prompt.seq))
    else:
        runs.extend(first.fork() for _ in samplers[1:])
        for i in range(len(runs)):
            advance(i)
    while holes:
        # As one run alone steps (hole.generate), but each step's tokens of every run are evaluated in one batch,
        # and only where the run needs the logits after them.
        stepped: list[tuple[HoleCursor, list[int]]] = []
        for i, hole in holes.items():
            cursor = hole.cursor
            if settle(cursor):
                continue
            tokens = step(cursor, cursor.choose(samplers[i]))
            if tokens:
                cursor.seq.push(tokens)
                if len(tokens) > 1 or not (cursor.done or settle(cursor)):
                    stepped.append((cursor, tokens))
        if stepped:
            rows = decoder.model.evaluate_pushed([cursor.seq for cursor, _ in stepped],
                                                 [len(tokens) for _, tokens in stepped])
            for (cursor, tokens), logits in zip(stepped, rows):
                score_chain(cursor, tokens, logits)
        ended = [i for i, hole in holes.items() if hole.cursor.done]
        for i in ended:
            hole = holes.pop(i)
            runs[i].execution.resume(decoder.close_hole(runs[i], hole, hole.cursor.outcome))
            advance(i)
    order = sorted(values, key=lambda i: -runs[i].logprob)
    return [(runs[i], values[i]) for i in order]
