"""The decoders a query may name, with the arguments each takes.

One table serves the grammar checks, the runtime and the editor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

# LMQL's decoder options that mean nothing for a local model, and why: accepted, so that LMQL queries run
# unchanged, and each one given is reported with a warning.
NO_EFFECT = {
    "chunksize": "lmlang makes no API requests to cut into chunks",
    "openai_chunksize": "lmlang makes no API requests to cut into chunks",
    "openai_nonstop": "lmlang makes no OpenAI requests",
    "chunk_timeout": "lmlang makes no API requests to time out",
    "verbose": "set LMLANG_DEBUG=1 to see llama.cpp's own log",
    "n_ctx": "a model's context size is set when it loads (4096 tokens)",
    "step_budget": "lmlang bounds the work by max_tokens (per hole) and max_len",
}
# Arguments every decoder accepts: bounds on the work, the seed, reuse of cached prompts (`cache`, LMQL's name),
# whether a hole may re-write the prompt's last token (`token_healing`, on unless set False).
COMMON_ARGS = ("max_len", "max_tokens", "seed", "cache", "token_healing", *NO_EFFECT)
# LMQL's experimental decoders that lmlang does not have.
LMQL_ONLY = {
    "var": "LMQL's experimental variable-level beam search",
}


@dataclass(frozen=True)
class DecoderSpec:
    name: str
    args: tuple[str, ...]
    doc: str


DECODERS: dict[str, DecoderSpec] = {
    d.name: d
    for d in (
        DecoderSpec("argmax", ("n",), "Greedy decoding: at each step the most likely allowed token (one result: n=1)."),
        DecoderSpec("sample", ("n", "temperature", "top_k", "top_p"), "Sampling with a temperature; n > 1 returns n results."),
        DecoderSpec("beam", ("n",), "Beam search over the whole program; n results ranked by total log-probability."),
        DecoderSpec("beam_sample", ("n", "temperature"), "Beam search that samples the continuations of each beam."),
        DecoderSpec("best_k", ("k", "n"), "The k most likely results, ranked."),
        # LMQL ranks beam_var's results by log-probability over length**0.7 (the model's tokens only); here it is
        # beam, ranked by total log-probability like every other search.
        DecoderSpec("beam_var", ("n",), "LMQL's beam_var, run as beam(n=...): n results ranked by total "
                                         "log-probability (LMQL ranks them normalized by length)."),
    )
}


def decoder_args(name: str) -> frozenset[str]:
    """Every keyword argument the decoder ``name`` accepts."""
    return frozenset(DECODERS[name].args + COMMON_ARGS)


def argument_problem(name: str, value: Any) -> str | None:
    """What is wrong with the value of a decoder argument, in the words the checker and the runtime both use;
    None when nothing is (or the argument is not one whose values are restricted)."""
    if name in ("n", "k", "max_tokens") and (not isinstance(value, int) or value < 1):
        return f"the decoder argument {name} must be a positive whole number, not {value!r}"
    if name == "token_healing" and not (value is True or value is False or value == "any"):
        return f'the decoder argument token_healing must be True, False or "any", not {value!r}'
    return None


def carried_over(args: Mapping[str, Any], decoder: str) -> dict[str, Any]:
    """The arguments that stay when ``decoder`` replaces another: those it takes. Not a count for argmax, which
    takes n only so that LMQL's ``argmax(n=1)`` reads."""
    return {k: v for k, v in args.items() if k in decoder_args(decoder) and (k, decoder) != ("n", "argmax")}
