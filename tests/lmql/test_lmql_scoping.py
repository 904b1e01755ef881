"""Port of LMQL's test_scoping.py: which names a query sees (its inputs, its own variables, the names where it is
defined), the decoder clause reading an input, and output_variables."""

from __future__ import annotations

import asyncio

import pytest

import lmlang.lmql as lmql

pytestmark = [pytest.mark.model, pytest.mark.usefixtures("smollm2")]


def test_query_locals_and_globals() -> None:
    @lmql.query
    async def q(actual_input: str = None):
        '''lmql
        a = 12

        def f(): return 12

        class A: pass

        argmax
            "Q: Hi {actual_input} {a}{f}{A}"
            for id in ['A', 'a', 'f']:
                assert locals().get(id) is None and globals().get(id) is not None, id
            assert "actual_input" in locals().keys()
            assert "actual_input" not in globals().keys()
        from
            "smollm2"
        '''

    asyncio.run(q())


def test_decoder_clause_reads_an_input() -> None:
    result = asyncio.run(lmql.run('''lmql
    argmax(n=n)
        "Q: Hi {n}. A: [WHO]"
        assert "n" in locals().keys()
    from
        "smollm2"
    where
        len(TOKENS(WHO)) < 4
    ''', n=1))
    assert result.prompt.startswith("Q: Hi 1. A: ")


def test_output_variables() -> None:
    @lmql.query
    async def q():
        '''lmql
        argmax "Q: Hi {n}. A: [WHO]" from "smollm2" where len(TOKENS(WHO)) < 4
        '''

    assert q.output_variables == ["WHO"]


def test_output_variables_in_order_without_repeats() -> None:
    q = lmql.query('"[A] and [B], [A] again"', is_async=False)
    assert q.output_variables == ["A", "B"]


def test_python_capture() -> None:
    def f(a):
        return 12 + a

    @lmql.query
    async def q():
        '''lmql
        argmax
            "Q: Hi {f(1)}. A: [WHO]"
        from
            "smollm2"
        where
            len(TOKENS(WHO)) < 4
        '''

    assert asyncio.run(q()).prompt.startswith("Q: Hi 13")


def test_python_capture_in_context() -> None:
    def f(a):
        return 12 + a

    @lmql.query
    async def q():
        '''lmql
        argmax
            "Q: Hi {f(1)}. A: [WHO]"
            assert context.prompt.startswith("Q: Hi 13")
        from
            "smollm2"
        where
            len(TOKENS(WHO)) < 4
        '''

    asyncio.run(q())
