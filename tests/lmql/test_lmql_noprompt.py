"""Port of LMQL's test_noprompt.py: a query whose first hole has no text before it starts from the model's
beginning of sequence."""

from __future__ import annotations

import pytest

import lmlang.lmql as lmql

pytestmark = [pytest.mark.model, pytest.mark.usefixtures("smollm2")]


def tokens(text: str) -> int:
    return len(lmql.tokenizer("smollm2")(text)["input_ids"])


def test_noprompt() -> None:
    @lmql.query(model="smollm2")
    def noprompt():
        '''lmql
        "[RESPONSE]" where len(TOKENS(RESPONSE)) < 6
        '''

    result = noprompt()
    assert result.prompt == result.variables["RESPONSE"] and tokens(result.prompt) < 6


def test_noprompt_beam() -> None:
    @lmql.query(model="smollm2")
    async def noprompt_beam():
        '''lmql
        beam(n=2)
        "[RESPONSE]" where len(TOKENS(RESPONSE)) < 4
        '''

    results = lmql.main(noprompt_beam)
    assert len(results) == 2
    assert results[0].logprob >= results[1].logprob


def test_noprompt_with_constraints() -> None:
    @lmql.query(model="smollm2")
    def noprompt_choice():
        '''lmql
        "[RESPONSE]" where RESPONSE in ["YES", "NO"]
        return RESPONSE
        '''

    assert noprompt_choice() in ("YES", "NO")


@lmql.query
def nested_query():
    '''lmql
    "[RESPONSE]" where RESPONSE in ["YES", "NO"]
    return RESPONSE
    '''


def test_noprompt_with_nested_query() -> None:
    @lmql.query(model="smollm2")
    def outer():
        '''lmql
        "[RESPONSE: nested_query]"
        return RESPONSE
        '''

    assert outer() in ("YES", "NO")


@lmql.query
def nested_static(value):
    '''lmql
    if value == 'a': return "YES"
    else: return "NO"
    '''


def test_noprompt_with_nested_static_query() -> None:
    @lmql.query(model="smollm2")
    def outer():
        '''lmql
        "[RESPONSE: nested_static('a')]"
        return RESPONSE
        '''

    assert outer() == "YES"
