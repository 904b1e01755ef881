"""What routes measure with a model: probabilities of labels after a prompt, and embeddings of texts.

An embedding is the backend's (``model.embed(text)``, llama.cpp's pooled hidden state) when it offers one.
Otherwise it is the model's next-token distribution after ``"{text}\\nThis text is about"``: a linear image of the
last hidden state, which places texts on the same topic near each other. Both are compared by cosine.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lmlang.decoding.decoder import Decoder
from lmlang.interpret.prompt import Prompt

_CUE = "\nThis text is about"

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
    if hasattr(model, "embed"):
        vector, spent = np.asarray(model.embed(text), dtype=np.float64), len(model.tokenize(text))
    else:
        vector, spent = _next_token_profile(decoder, text)
    _embeddings[key] = vector
    return vector, spent


def _next_token_profile(decoder: Decoder, text: str) -> tuple[np.ndarray, int]:
    prompt = Prompt(decoder.model, decoder.pool)
    prompt.add_text(text + _CUE)
    try:
        logits = np.asarray(prompt.flush().logits(), dtype=np.float64)
        spent = prompt.prefill_tokens
    finally:
        prompt.close()
    probabilities = np.exp(logits - logits.max())
    probabilities /= probabilities.sum()
    # Square roots: cosine of these is the Bhattacharyya coefficient of the two distributions.
    return np.sqrt(probabilities), spent


def cosine(a: Any, b: Any) -> float:
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.dot(a, b) / norm) if norm else 0.0
