"""The decoding strategies, registered by the decoder names a query uses (``argmax``, ``sample``, ``beam``...).

A strategy drives the runs of a program on one :class:`Decoder` and returns the finished runs with their return
values, best first. ``argmax`` (and ``sample`` with n=1) drives one run; ``sample(n=...)`` drives ``n`` runs in
lockstep (:mod:`.lockstep`) and ``beam``, ``beam_sample`` and ``best_k`` search over runs (:mod:`.beam`): their
runs share the evaluated prefix in the cache and advance one token each per llama_decode.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Mapping, Protocol

from lmlang.decoding import beam, lockstep
from lmlang.decoding.catalog import DECODERS
from lmlang.decoding.decoder import Decoder
from lmlang.decoding.run import Run
from lmlang.decoding.settings import DecoderSettings, TextSink
from lmlang.errors import UsageError
from lmlang.interpret.execution import CompiledProgram
from lmlang.result import Result


class Strategy(Protocol):
    def __call__(self, decoder: Decoder, program: CompiledProgram, inputs: Mapping[str, Any],
                 settings: DecoderSettings, runs: list[Run], on_text: TextSink | None) -> list[tuple[Run, Any]]:
        """The finished runs and their return values, best first. Every run made goes into ``runs``, for the
        caller to close; text goes to ``on_text`` as it is produced, if the strategy streams."""
        ...


@dataclass(frozen=True)
class Registered:
    strategy: Strategy
    streams: bool  # whether it sends the text to ``on_text`` itself (else the best result's text is sent at the end)


STRATEGIES: dict[str, Registered] = {}


def register(name: str, strategy: Strategy, *, streams: bool = False) -> None:
    """Make ``strategy`` the one the decoder ``name`` runs (replacing any registered before)."""
    STRATEGIES[name] = Registered(strategy, streams)


def single(decoder: Decoder, program: CompiledProgram, inputs: Mapping[str, Any], settings: DecoderSettings,
           runs: list[Run], on_text: TextSink | None) -> list[tuple[Run, Any]]:
    """One run, its holes generated one after the other with the settings' token chooser."""
    run = decoder.start(program, inputs)
    runs.append(run)
    return [(run, decoder.drive(run, settings, settings.sampler(0), on_text))]


def sample(decoder: Decoder, program: CompiledProgram, inputs: Mapping[str, Any], settings: DecoderSettings,
           runs: list[Run], on_text: TextSink | None) -> list[tuple[Run, Any]]:
    """One sampled run, or ``n`` advanced together."""
    if settings.results > 1:
        return lockstep.sample(decoder, program, inputs, settings, runs)
    return single(decoder, program, inputs, settings, runs, on_text)


def search(decoder: Decoder, program: CompiledProgram, inputs: Mapping[str, Any], settings: DecoderSettings,
           runs: list[Run], on_text: TextSink | None) -> list[tuple[Run, Any]]:
    return beam.search(decoder, program, inputs, settings, runs)


register("argmax", single, streams=True)
register("sample", sample)
for _name in ("beam", "beam_sample", "best_k", "beam_var"):
    register(_name, search)


def run(decoder: Decoder, program: CompiledProgram, inputs: Mapping[str, Any], settings: DecoderSettings,
        on_text: TextSink | None = None) -> list[Result]:
    """The results of the program under ``settings``: one, or ``settings.results`` ranked best first."""
    registered = STRATEGIES.get(settings.name)
    if registered is None:
        raise UsageError(settings.span, f"unknown decoder '{settings.name}': use one of {', '.join(DECODERS)}")
    streams = registered.streams or (settings.name == "sample" and settings.results == 1)
    started = time.perf_counter()
    runs: list[Run] = []
    try:
        finished = registered.strategy(decoder, program, inputs, settings, runs, on_text if streams else None)
    finally:
        for made in runs:
            made.prompt.close()
    elapsed = time.perf_counter() - started
    results = [decoder.result(made, value, elapsed) for made, value in finished]
    if on_text is not None and not streams and results:  # several runs advanced together: show the best one
        on_text(results[0].prompt, False)
    return results
