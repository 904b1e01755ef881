"""Shared fixtures: each real model is loaded once per test session."""

from __future__ import annotations

import pytest

from lmlang.models import llama


@pytest.fixture(scope="session")
def smollm2() -> llama.Model:
    return llama.load("smollm2")


@pytest.fixture(scope="session")
def gemma() -> llama.Model:
    return llama.load("gemma3-270m")
