"""Port of LMQL's test_api.py: the generations API (generate, generate_sync, score, a model handle's methods)."""

from __future__ import annotations

import asyncio

import numpy
import pytest

import lmlang
import lmlang.lmql as lmql

pytestmark = [pytest.mark.model, pytest.mark.usefixtures("smollm2")]


@pytest.fixture(autouse=True)
def default_model():
    lmql.set_default_model(lmql.model("smollm2"))
    yield
    lmql.set_default_model(None)


def test_generate_sync() -> None:
    text = lmql.generate_sync("Test", max_tokens=6)
    assert isinstance(text, str) and text


def test_generate_sync_twice() -> None:
    first = lmql.generate_sync("Test", max_tokens=6)
    second = lmql.generate_sync("Test2", max_tokens=6)
    assert isinstance(first, str) and first and isinstance(second, str) and second


def test_generate_is_a_coroutine() -> None:
    pending = lmql.generate("Test", max_tokens=6)
    assert asyncio.iscoroutine(pending)
    text = asyncio.run(pending)
    assert isinstance(text, str) and text


def test_generate_respects_max_tokens() -> None:
    tokenizer = lmql.tokenizer("smollm2")
    text = lmql.generate_sync("Once upon a time", max_tokens=3)
    assert 0 < len(tokenizer(text)["input_ids"]) <= 3


def test_model_handle_generate() -> None:
    handle = lmql.model("smollm2")
    text = asyncio.run(handle.generate("Test", max_tokens=6))
    assert isinstance(text, str) and text


def test_model_handle_generates_n_samples() -> None:
    handle = lmql.model("smollm2")
    texts = asyncio.run(handle.generate("Test", max_tokens=6, temperature=0.2, n=2))
    assert isinstance(texts, list) and len(texts) == 2
    assert all(isinstance(t, str) and t for t in texts)


def test_model_handle_generates_twice_in_a_row() -> None:
    handle = lmql.model("smollm2")

    async def both():
        return await handle.generate("Test", max_tokens=6), await handle.generate("Test", max_tokens=6)

    first, second = asyncio.run(both())
    assert first == second  # argmax, and a run does not depend on the one before


def test_score_sync_one_value() -> None:
    result = lmql.score_sync("Test", "Test")
    assert isinstance(result, lmql.ScoringResult)
    assert result.continuations == ["Test"]
    assert result.scores().shape == (1,) and result.scores()[0] < 0
    assert result.logprobs().shape == (1,) and result.logprobs()[0] == pytest.approx(0.0)


def test_score_sync_two_values() -> None:
    result = lmql.score_sync("Hello", ["World", "Test"])
    assert len(result.continuations) == 2 and result.scores().shape == (2,)
    assert result.argmax() in ["World", "Test"]
    assert result.probs().sum() == pytest.approx(1.0)
    assert result.argmax() == ["World", "Test"][int(numpy.argmax(result.scores()))]
    for agg in ("mean", "normalized"):
        assert result.scores(agg).shape == (2,)


def test_score_is_a_coroutine_and_agrees_with_sync() -> None:
    awaited = asyncio.run(lmql.score("The capital of France is", [" Paris", " banana"]))
    direct = lmql.score_sync("The capital of France is", [" Paris", " banana"])
    assert awaited.argmax() == direct.argmax() == " Paris"
    assert awaited.scores() == pytest.approx(direct.scores())


def test_model_handle_score_sync() -> None:
    handle = lmql.model("local:smollm2")
    assert handle == "smollm2"
    assert handle.score_sync("The capital of France is", [" Paris", " banana"]).argmax() == " Paris"


def test_model_options_without_meaning_are_reported() -> None:
    with pytest.warns(lmlang.LmlangWarning, match="no effect"):
        lmql.model("smollm2", seed=123)
