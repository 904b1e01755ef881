"""What routes measure with a model: probabilities of labels after a prompt, and the likeness of embeddings.

An embedding is the model's ``embed(text)``: its last hidden states averaged over the text's tokens by llama.cpp,
compared by cosine. The session keeps the embeddings it computed (``BlockRunner.embed``), since a route embeds
the same examples for every input.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lmlang.decoding.runner import ModelRunner


def label_probabilities(runner: ModelRunner, prompt_text: str, labels: list[str]) -> tuple[list[float], int]:
    """P(label | prompt) normalised over the labels (as ``distribution`` scores candidates); prompt tokens spent."""
    prompt = runner.prompt()
    prompt.add_text(prompt_text)
    try:
        seq = prompt.flush()
        spacer = "" if prompt_text[-1:].isspace() else " "
        continuations = [label if label[:1].isspace() else spacer + label for label in labels]
        scores = np.array(runner.score_continuations(seq, continuations))
        spent = prompt.prefill_tokens + sum(len(runner.model.tokenize(t)) for t in continuations)
    finally:
        prompt.close()
    probabilities = np.exp(scores - scores.max())
    probabilities /= probabilities.sum()
    return [float(p) for p in probabilities], spent


def embed(model: Any, text: str) -> tuple[np.ndarray, int]:
    """The embedding of ``text`` by ``model``, and the prompt tokens it cost."""
    return np.asarray(model.embed(text), dtype=np.float64), len(model.tokenize(text, bos=True))


def cosine(a: Any, b: Any) -> float:
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.dot(a, b) / norm) if norm else 0.0
