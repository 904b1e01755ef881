"""Fixtures of the decoder tests: plain llama-cpp-python on the same file, and a count of llama_decode calls."""

from __future__ import annotations

from typing import Iterator

import numpy as np
import pytest


@pytest.fixture(scope="session")
def plain_smollm2(smollm2):
    """llama-cpp-python's own ``Llama`` on SmolLM2's file: the independent reference for log-probabilities."""
    from lmlang.models.llama import plain_llama

    return plain_llama(smollm2, n_ctx=512, logits_all=True, flash_attn=False, n_threads=2)


def plain_logprob(llm, prompt: list[int], continuation: list[int]) -> float:
    """log P(continuation | prompt) by evaluating prompt + continuation in one llama-cpp-python call."""
    llm.reset()
    llm.eval(prompt + continuation)
    scores = np.asarray(llm.scores[: len(prompt) + len(continuation)], dtype=np.float64)
    total = 0.0
    for j, token in enumerate(continuation):
        row = scores[len(prompt) - 1 + j]
        total += row[token] - (row.max() + np.log(np.exp(row - row.max()).sum()))
    return float(total)


@pytest.fixture
def decode_calls(smollm2) -> Iterator[list[int]]:
    """The batch size of every llama_decode call SmolLM2 makes during the test."""
    calls: list[int] = []
    batch = smollm2._batch
    original = batch.decode

    def counting(ctx, rows):
        calls.append(len(rows))
        return original(ctx, rows)

    batch.decode = counting
    try:
        yield calls
    finally:
        del batch.decode


@pytest.fixture
def clean_cache(smollm2) -> None:
    """No idle sequences kept from earlier tests: every sequence id is free and the KV cells are unfragmented.

    llama.cpp's logits depend slightly on where in the KV cache a sequence's cells lie (the order of sums
    changes, and the 8-bit quantization of activations can flip on such a difference); an exact comparison with
    llama-cpp-python's single-sequence evaluation therefore starts from an empty cache, as llama-cpp-python does.
    """
    from lmlang.query import decoder_for

    decoder_for(smollm2).pool.clear()
    assert smollm2.clear_cache()
