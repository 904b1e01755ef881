"""The two real vocabularies, as lmlang Vocabulary objects, built once per session from the loaded models."""

from __future__ import annotations

import pytest

from lmlang.masks import Vocabulary


def vocabulary_of(model) -> Vocabulary:
    return model.vocabulary()


@pytest.fixture(scope="session")
def smollm2_vocab(smollm2) -> Vocabulary:
    return vocabulary_of(smollm2)


@pytest.fixture(scope="session")
def gemma_vocab(gemma) -> Vocabulary:
    return vocabulary_of(gemma)


@pytest.fixture(scope="session", params=["smollm2", "gemma"])
def vocab(request) -> Vocabulary:
    return request.getfixturevalue(f"{request.param}_vocab")
