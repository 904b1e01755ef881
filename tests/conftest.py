"""Shared fixtures: each real model is loaded once per test session (``load`` caches it per process)."""

from __future__ import annotations

import pytest

from lmlang.models.llama import Model, load


@pytest.fixture(scope="session")
def smollm2() -> Model:
    return load("smollm2")


@pytest.fixture(scope="session")
def gemma() -> Model:
    return load("gemma3-270m")


@pytest.fixture(scope="session", params=["smollm2", "gemma3-270m"])
def model(request: pytest.FixtureRequest) -> Model:
    return load(request.param)
