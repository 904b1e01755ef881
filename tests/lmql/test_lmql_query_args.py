"""Port of LMQL's queryargs tests (test_query_args.py and queryargs/test_args.py, test_args_query_str.py,
test_args_run.py, test_sync.py, test_var_errors.py): how a query function binds its inputs and runtime options."""

from __future__ import annotations

import asyncio

import pytest

import lmlang
import lmlang.lmql as lmql

pytestmark = [pytest.mark.model, pytest.mark.usefixtures("smollm2")]

CONSTANT = 1
INPUT = "Hi there"


class Agent:
    def __init__(self) -> None:
        self.memory = ""

    @lmql.query
    async def interact(self, s: str, a=12):
        '''lmql
        argmax
            return s, a, self, CONSTANT
        from
            "smollm2"
        '''


@lmql.query
async def positional_only(s: str):
    '''lmql
    argmax
        return s
    from
        "smollm2"
    '''


@lmql.query
async def default_only(s: str = 'default'):
    '''lmql
    argmax
        return s
    from
        "smollm2"
    '''


@lmql.query
async def positional_and_default(s: str, a: int = 12):
    '''lmql
    argmax
        return s, a
    from
        "smollm2"
    '''


@lmql.query
async def capture(s: str):
    '''lmql
    argmax
        return s, CONSTANT
    from
        "smollm2"
    '''


@lmql.query
async def multi_kw_default(s: str = 'default', a: int = 12):
    '''lmql
    argmax
        return s, a
    from
        "smollm2"
    '''


@lmql.query(model="smollm2")
async def multi_kw_multiplicity(s: str = 'default', a: int = 12):
    '''lmql
    sample(n=2)

    "Hi [COMPLETION]" where len(TOKENS(COMPLETION)) == 2
    return s, a
    '''


def test_async_query_function_returns_a_coroutine() -> None:
    pending = positional_only(INPUT)
    assert asyncio.iscoroutine(pending)
    assert asyncio.run(pending) == INPUT


def test_method_query_positional_keyword_and_self() -> None:
    agent = Agent()
    s, a, me, captured = asyncio.run(agent.interact(INPUT, a=8, output_writer=lmql.stream("ANSWER")))
    assert (s, a, me, captured) == (INPUT, 8, agent, CONSTANT)
    s, a, me, captured = asyncio.run(agent.interact(INPUT))
    assert (s, a, me, captured) == (INPUT, 12, agent, CONSTANT)


def test_inputs_by_position_default_and_keyword() -> None:
    async def all_calls():
        return [
            await positional_only(INPUT),
            await default_only(),
            await default_only(s=INPUT),
            await positional_and_default(INPUT),
            await multi_kw_default(),
            await multi_kw_default(s=INPUT),
            await capture(INPUT),
        ]

    assert asyncio.run(all_calls()) == [INPUT, "default", INPUT, (INPUT, 12), ("default", 12), (INPUT, 12),
                                        (INPUT, CONSTANT)]


def test_no_hole_query_with_n_2_gives_one_value() -> None:
    assert asyncio.run(capture(INPUT, decoder="beam", n=2)) == (INPUT, CONSTANT)


def test_sample_n_2_returns_two_values() -> None:
    values = asyncio.run(multi_kw_multiplicity(s=INPUT, a=8))
    assert len(values) == 2
    assert all(v == (INPUT, 8) for v in values)


# queryargs/test_args_query_str.py: queries made from strings

noinput = lmql.query('''lmql
argmax
    return s
from
    "smollm2"
''')

positional_string = lmql.query('''lmql
argmax
    return s
from
    "smollm2"
''', input_variables=['s'])

multipos = lmql.query('''lmql
argmax
    return s, a
from
    "smollm2"
''', input_variables=['s', 'a'])


def test_string_query_without_input_fails_with_type_error() -> None:
    with pytest.raises(TypeError, match=r"\bs\b"):
        asyncio.run(noinput())
    with pytest.raises(lmlang.InputError):
        asyncio.run(noinput())


def test_string_query_inputs() -> None:
    async def all_calls():
        return [
            await noinput(s=INPUT, output_writer=lmql.printing),
            await positional_string(INPUT),
            await positional_string(s=INPUT),
            await multipos(INPUT, 8),
            await multipos(INPUT, a=8),
            await multipos(s=INPUT, a=8),
        ]

    with pytest.warns(lmlang.LmlangWarning, match="output_writer"):
        values = asyncio.run(all_calls())
    assert values == [INPUT, INPUT, INPUT, (INPUT, 8), (INPUT, 8), (INPUT, 8)]


def test_string_query_is_sync_on_request() -> None:
    sync = lmql.query('argmax\n    return s\nfrom\n    "smollm2"\n', input_variables=["s"], is_async=False)
    assert sync.is_async is False and sync(INPUT) == INPUT


def test_string_query_takes_input_variables_only() -> None:
    with pytest.raises(TypeError):
        asyncio.run(multipos(INPUT, 8, 9))


# queryargs/test_args_run.py

RETURN_S = '''lmql
argmax
    return s
from
    "smollm2"
'''


def test_run_without_input_fails() -> None:
    with pytest.raises(TypeError, match=r"\bs\b"):
        asyncio.run(lmql.run(RETURN_S))


def test_run_with_keyword_inputs() -> None:
    assert asyncio.run(lmql.run(RETURN_S, s=INPUT)) == INPUT
    multi = 'argmax\n    return s, a\nfrom\n    "smollm2"\n'
    assert asyncio.run(lmql.run(multi, s=INPUT, a=8)) == (INPUT, 8)


# queryargs/test_sync.py

def test_run_sync_and_sync_query_function() -> None:
    assert lmql.run_sync(RETURN_S, s=INPUT) == INPUT

    @lmql.query
    def sync_query(s: str):
        '''lmql
        argmax
            return s
        from
            "smollm2"
        '''

    assert sync_query.is_async is False
    assert sync_query(s=INPUT) == INPUT


def test_async_run_and_run_sync_inside_a_coroutine() -> None:
    # LMQL refuses run_sync inside a running event loop (it would need a nested loop); lmlang runs it, blocking.
    async def inside():
        return await lmql.run(RETURN_S, s=INPUT), lmql.run_sync(RETURN_S, s=INPUT)

    assert asyncio.run(inside()) == (INPUT, INPUT)


# queryargs/test_var_errors.py

def test_undefined_holes_in_where_are_refused() -> None:
    with pytest.raises(lmlang.LmlangError, match="ANSWER|OTHER"):
        @lmql.query
        async def undefined_holes(s: str):
            '''lmql
            argmax
                return s
            from
                "smollm2"
            where
                STOPS_AT(ANSWER, "test") and STOPS_AT(OTHER, "test")
            '''

        asyncio.run(undefined_holes("test"))


@lmql.query
async def noinput_but_specified():
    '''lmql
    argmax
        return s, CONSTANT
    from
        "smollm2"
    '''


def test_missing_input_then_given_by_keyword() -> None:
    with pytest.raises(TypeError, match=r"\bs\b"):
        asyncio.run(noinput_but_specified())


def test_keyword_input_outside_signature() -> None:
    assert asyncio.run(noinput_but_specified(s="test")) == ("test", CONSTANT)


MODEL = "smollm2"


def test_from_a_module_variable() -> None:
    @lmql.query
    async def external_model():
        '''lmql
        argmax
            "Hi[SEP]"
        from
            MODEL
        where
            len(TOKENS(SEP)) < 4
        '''

    assert asyncio.run(external_model()).model == "smollm2"
