"""The decoders a query may name, with the arguments each takes.

One table serves the grammar checks, the runtime and the editor.
"""

from __future__ import annotations

from dataclasses import dataclass

# Arguments every decoder accepts: bounds on the work and the model's context.
COMMON_ARGS = ("max_len", "max_tokens", "seed", "n_ctx", "chunksize", "openai_chunksize", "verbose", "cache")


@dataclass(frozen=True)
class DecoderSpec:
    name: str
    args: tuple[str, ...]
    doc: str


DECODERS: dict[str, DecoderSpec] = {
    d.name: d
    for d in (
        DecoderSpec("argmax", (), "Greedy decoding: at each step the most likely allowed token."),
        DecoderSpec("sample", ("n", "temperature", "top_k", "top_p"), "Sampling with a temperature; n > 1 returns n results."),
        DecoderSpec("beam", ("n",), "Beam search over the whole program; n results ranked by total log-probability."),
        DecoderSpec("beam_sample", ("n", "temperature"), "Beam search that samples the continuations of each beam."),
        DecoderSpec("best_k", ("k", "n"), "The k most likely results, ranked."),
    )
}


def decoder_args(name: str) -> frozenset[str]:
    """Every keyword argument the decoder ``name`` accepts."""
    return frozenset(DECODERS[name].args + COMMON_ARGS)
