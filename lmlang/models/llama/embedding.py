"""Embeddings (``route ..., examples=``): the mean of a model's last hidden states over a text, computed in a
small second llama.cpp context on the same weights, so embedding never disturbs the sequences."""

from __future__ import annotations

from typing import Callable

import llama_cpp as llama
import numpy

from lmlang.errors import ModelError
from lmlang.models.llama.ffi import Batch

# Most tokens of a text to embed: routes embed requests and short examples, and the embedding context's KV cache
# is allocated for this many on first use.
N_EMBED_CTX = 512
# Tokens per llama_decode. llama.cpp computes and keeps logits for every token of a pooled batch (1 MiB each for
# Gemma's 262k vocabulary), so one batch of 512 tokens would hold on to 1 GiB; the text goes in slices of this
# many instead.
N_EMBED_BATCH = 32


def pooled_sum(ctx: object, batch: Batch, width: int, tokens: list[int], name: str,
               failure: Callable[[int], ModelError]) -> numpy.ndarray:
    """The sum of the last hidden states (``width`` of them per token) over ``tokens``, decoded in slices of the
    context's batch.

    llama.cpp averages over each decode on its own; attention is causal, so the states of a slice do not depend
    on the slicing, and each slice's mean times its length adds up to the sum over the text.
    """
    # Each text is pooled alone: nothing of the previous one may stay in the cache.
    llama.llama_memory_clear(llama.llama_get_memory(ctx), False)
    total = numpy.zeros(width, numpy.float64)
    size = llama.llama_n_ubatch(ctx)
    for start in range(0, len(tokens), size):
        part = tokens[start : start + size]
        status = batch.decode_text(ctx, part, start)
        if status != 0:
            raise failure(status)
        pointer = llama.llama_get_embeddings_seq(ctx, 0)
        if not pointer:
            raise ModelError(None, f"llama.cpp returned no embedding for a text with {name}")
        total += numpy.ctypeslib.as_array(pointer, shape=total.shape) * len(part)
    return total
