"""What routes measure with a model: probabilities of labels after a prompt, and embeddings of texts.

An embedding is the model's ``embed(text)``: its last hidden states averaged over the text's tokens by llama.cpp,
compared by cosine. Embeddings are cached per model file and text, since a route embeds the same examples for
every input.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lmlang.decoding.decoder import Decoder
from lmlang.interpret.prompt import Prompt

_embeddings: dict[tuple[str, str], np.ndarray] = {}


def label_probabilities(decoder: Decoder, prompt_text: str, labels: list[str]) -> tuple[list[float], int]:
    """P(label | prompt) normalised over the labels (as ``distribution`` scores candidates); prompt tokens spent."""
    prompt = Prompt(decoder.model, decoder.pool)
    prompt.add_text(prompt_text)
    try:
        seq = prompt.flush()
        spacer = "" if prompt_text[-1:].isspace() else " "
        continuations = [label if label[:1].isspace() else spacer + label for label in labels]
        scores = np.array(decoder.score_continuations(seq, continuations))
        spent = prompt.prefill_tokens + sum(len(decoder.model.tokenize(t)) for t in continuations)
    finally:
        prompt.close()
    probabilities = np.exp(scores - scores.max())
    probabilities /= probabilities.sum()
    return [float(p) for p in probabilities], spent


def embed(decoder: Decoder, text: str) -> tuple[np.ndarray, int]:
    """The embedding of ``text`` by the decoder's model, and the prompt tokens it cost (0 when cached)."""
    model = decoder.model
    key = (str(model.path), text)
    if key in _embeddings:
        return _embeddings[key], 0
    vector = np.asarray(model.embed(text), dtype=np.float64)
    _embeddings[key] = vector
    return vector, len(model.tokenize(text, bos=True))


def cosine(a: Any, b: Any) -> float:
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.dot(a, b) / norm) if norm else 0.0
