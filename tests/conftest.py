"""Shared fixtures: each real model is loaded once per test session (``load`` caches it per process).

A test that uses a real model's fixture is marked ``model`` (``pytest -m "not model"`` runs the logic tests alone,
on the fake model of ``tests/fakemodel.py``)."""

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


MODEL_FIXTURES = {"smollm2", "gemma", "model"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if MODEL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.model)
