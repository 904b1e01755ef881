"""Port of LMQL's test_f.py: lmql.F prompt functions and positional inputs to run_sync."""

from __future__ import annotations

import asyncio

import pytest

import lmlang.lmql as lmql

pytestmark = [pytest.mark.model, pytest.mark.usefixtures("smollm2")]

SUMMARY_LIMIT = "len(TOKENS(SUMMARY)) < 6"


def summarizer(**options):
    return lmql.F("Summarize this text: {text}: [SUMMARY]", SUMMARY_LIMIT, model="smollm2", **options)


def test_f_function_gives_its_variable() -> None:
    assert isinstance(summarizer()(text="This is a test."), str)


def test_f_function_takes_positional_input() -> None:
    summarize = summarizer()
    assert summarize("This is a test.") == summarize(text="This is a test.")


def test_f_function_binds_positional_inputs_in_order() -> None:
    two = lmql.F("Summarize this text: {text1}{text2}: [SUMMARY]", SUMMARY_LIMIT, model="smollm2")
    one = summarizer()
    joined = two("This is ", "a test.")
    assert isinstance(joined, str)
    assert joined == one("This is a test.")  # the same prompt, so the same argmax value


def test_f_function_with_two_holes_gives_a_dict() -> None:
    pair = lmql.F("A: [X] B: [Y]", "len(TOKENS(X)) < 3 and len(TOKENS(Y)) < 3", model="smollm2")
    value = pair()
    assert isinstance(value, dict) and set(value) == {"X", "Y"}


def test_async_f_function() -> None:
    summarize = summarizer(is_async=True)
    pending = summarize(text="This is a test.")
    assert asyncio.iscoroutine(pending)
    assert isinstance(asyncio.run(pending), str)


def test_async_f_function_over_a_list() -> None:
    summarize = summarizer(is_async=True)
    data = ["A dog walks into a bar.", "A cat goes for a walk."]

    async def over_all():
        return await asyncio.gather(*(summarize(text) for text in data))

    values = asyncio.run(over_all())
    assert len(values) == 2 and all(isinstance(v, str) for v in values)


def test_run_sync_positional_inputs() -> None:
    source = '''lmql
    "Summarize this text: {t1}{t2}: [SUMMARY]" where len(TOKENS(SUMMARY)) < 4
    return SUMMARY
    '''
    by_position = lmql.run_sync(source, "This is ", "a test.", model="smollm2")
    by_name = lmql.run_sync(source, t1="This is ", t2="a test.", model="smollm2")
    assert isinstance(by_position, str) and by_position == by_name
