"""Port of LMQL's test_decorators.py: `[@post @stream @pre VAR]`, as LMQL defines the three stages."""

from __future__ import annotations

import pytest

import lmlang.lmql as lmql

pytestmark = [pytest.mark.model, pytest.mark.usefixtures("smollm2")]


class DecoratorLog:
    def __init__(self) -> None:
        self.pre_input = None
        self.stream_input = None
        self.post_input = None


log = DecoratorLog()


@lmql.decorators.pre
def pre(variable):
    log.pre_input = variable
    return variable  # the variable itself: generate as usual


@lmql.decorators.streaming
def stream(s, context):
    log.stream_input = s


def post(value):
    log.post_input = value
    return value.replace("is", "IS")


def test_three_stages() -> None:
    @lmql.query(model="smollm2")
    def decorated():
        '''lmql
        argmax
            "Say 'this is a test':\n[@post @stream @pre RESPONSE]"
        where
            len(TOKENS(RESPONSE)) < 6
        '''

    result = decorated()
    assert log.pre_input.name == "RESPONSE"
    assert log.stream_input == log.post_input  # the last partial value streamed is the finished one
    assert result.variables["RESPONSE"] == log.post_input.replace("is", "IS")


def test_post_decorator_value_and_prompt() -> None:
    @lmql.query(model="smollm2")
    def inner_decorator():
        '''lmql
        seen = []

        def f(s):
            seen.append(s)
            return 12

        "Say 'this is a test':\n[@f RESPONSE]" where len(TOKENS(RESPONSE)) < 6
        return RESPONSE, seen
        '''

    value, seen = inner_decorator()
    assert value == 12 and len(seen) == 1 and isinstance(seen[0], str)


def test_post_decorator_rewrites_the_prompt() -> None:
    @lmql.query(model="smollm2")
    def inner_decorator():
        '''lmql
        def f(s):
            return 12

        "Say 'this is a test':\n[@f RESPONSE]" where len(TOKENS(RESPONSE)) < 6
        return context.prompt
        '''

    assert inner_decorator() == "Say 'this is a test':\n12"


def test_post_decorator_rewrites_the_result_prompt() -> None:
    @lmql.query(model="smollm2")
    def inner_decorator():
        '''lmql
        def f(s):
            return 12

        "Say 'this is a test':\n[@f RESPONSE]" where len(TOKENS(RESPONSE)) < 6
        '''

    result = inner_decorator()
    assert result.prompt == "Say 'this is a test':\n12" and result.variables["RESPONSE"] == 12


def test_streaming_decorator_sees_growing_values() -> None:
    @lmql.query(model="smollm2")
    def streaming():
        '''lmql
        partials = []

        @lmql.decorators.streaming
        def f(s, context):
            partials.append(s)

        "Say 'this is a test':\n[@f RESPONSE]" where len(TOKENS(RESPONSE)) < 6
        return RESPONSE, partials
        '''

    value, partials = streaming()
    assert partials and partials[-1] == value
    for before, after in zip(partials, partials[1:]):
        assert after.startswith(before)  # one decoding branch (argmax): each partial extends the one before


def test_pre_decorator_fixes_the_value() -> None:
    @lmql.query(model="smollm2")
    def fixed():
        '''lmql
        @lmql.decorators.pre
        def f(variable):
            return "Fixed Value"

        "Say 'this is a test':\n[@f RESPONSE]" where len(TOKENS(RESPONSE)) < 6
        return RESPONSE
        '''

    assert fixed() == "Fixed Value"
