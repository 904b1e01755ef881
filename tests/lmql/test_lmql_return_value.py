"""Port of LMQL's test_return_value.py: a query's value is its `return` value (None too), else its result."""

from __future__ import annotations

import pytest

import lmlang.lmql as lmql

pytestmark = [pytest.mark.model, pytest.mark.usefixtures("smollm2")]


@lmql.query(model="smollm2")
def none_return_value():
    '''lmql
    "Hi, [COMPLETION]." where len(TOKENS(COMPLETION)) == 2
    return None
    return "Something"
    '''


@lmql.query(model="smollm2")
def some_return_value():
    '''lmql
    "Hi, [COMPLETION]." where len(TOKENS(COMPLETION)) == 2
    return "Something"
    '''


@lmql.query(model="smollm2")
def nested_no_return():
    '''lmql
    "Hi,[COMPLETION]" where len(TOKENS(COMPLETION)) == 2
    '''


@lmql.query
def two_path_return(a: int):
    '''lmql
    if a > 0:
        return None
    elif a == 0:
        return
    else:
        return "Something"

    return "Never"
    '''


@lmql.query
def early_return_with_nothing():
    '''lmql
    return
    return "Something"
    '''


@lmql.query
def early_conditionally_return_with_nothing(a: int):
    '''lmql
    if a > 0:
        return
    return "Something"
    '''


def test_return_none() -> None:
    assert none_return_value() is None


def test_return_none_with_beam_2() -> None:
    values = none_return_value(decoder="beam", n=2)
    assert values == [None, None]


def test_return_some_value() -> None:
    assert some_return_value() == "Something"


def test_nested_query_returning_none_shows_none() -> None:
    @lmql.query(model="smollm2")
    def nested_none():
        '''lmql
        "[TEST: none_return_value]."
        return context.prompt
        '''

    assert nested_none() == "None."


def test_nested_query_value_replaces_its_text() -> None:
    @lmql.query(model="smollm2")
    def nested_some():
        '''lmql
        "[TEST: some_return_value]."
        return context.prompt
        '''

    assert nested_some() == "Something."


def test_nested_query_value_replaces_its_text_in_result_prompt() -> None:
    @lmql.query(model="smollm2")
    def nested_some():
        '''lmql
        "[TEST: some_return_value]."
        '''

    result = nested_some()
    assert result.prompt == "Something." and result.variables["TEST"] == "Something"


def test_nested_query_without_return_is_a_macro() -> None:
    @lmql.query(model="smollm2")
    def nested_no_return_in_query():
        '''lmql
        "[TEST: nested_no_return]."
        '''

    result = nested_no_return_in_query()
    assert result.prompt.startswith("Hi,") and result.prompt.endswith(".")
    assert result.variables["TEST"] == result.prompt[:-1]


def test_no_return_gives_the_result() -> None:
    value = nested_no_return()
    assert type(value) is lmql.LMQLResult
    assert value.prompt.startswith("Hi,") and set(value.variables) == {"COMPLETION"}


def test_no_return_with_sample_2_gives_two_results() -> None:
    values = nested_no_return(decoder="sample", n=2)
    assert len(values) == 2 and all(type(v) is lmql.LMQLResult for v in values)


def test_two_path_return_none() -> None:
    assert two_path_return(1) is None


def test_two_path_return() -> None:
    assert two_path_return(-1) == "Something"
    assert type(two_path_return(0)) is lmql.LMQLResult


def test_two_path_return_with_sample_2() -> None:
    assert two_path_return(-1, decoder="sample", n=2) == "Something"


def test_early_bare_return_gives_the_result() -> None:
    assert type(early_return_with_nothing()) is lmql.LMQLResult
    assert type(early_conditionally_return_with_nothing(1)) is lmql.LMQLResult
    assert early_conditionally_return_with_nothing(-1) == "Something"
