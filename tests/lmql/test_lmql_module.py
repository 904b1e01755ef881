"""lmlang.lmql's own logic on queries without holes: model handles, which calls are async, how string queries bind
their inputs, and the errors LMQL programs expect. (A run with nothing to generate still loads the model.)"""

from __future__ import annotations

import asyncio
import inspect

import pytest

import lmlang
import lmlang.lmql as lmql

pytestmark = [pytest.mark.model, pytest.mark.usefixtures("smollm2")]


def test_model_handle_is_the_local_name() -> None:
    handle = lmql.model("local:llama.cpp:/models/tiny.gguf")
    assert handle == "/models/tiny.gguf" and handle.model_identifier == "local:llama.cpp:/models/tiny.gguf"
    assert lmql.model("local:smollm2") == "smollm2" and lmql.model(handle) is handle
    assert isinstance(handle, str)


def test_decorated_function_is_async_as_defined() -> None:
    @lmql.query
    def plain():
        '''lmql
        return 1
        '''

    @lmql.query(is_async=True)
    async def awaited():
        '''lmql
        return 1
        '''

    assert plain.is_async is False and awaited.is_async is True
    pending = awaited()
    assert inspect.iscoroutine(pending)
    assert asyncio.run(pending) == 1 and plain() == 1
    assert lmql.query(plain) is plain and lmql.is_query(plain)


def test_string_query_is_async_unless_asked() -> None:
    assert lmql.query("return 1").is_async is True
    assert lmql.query("return 1", is_async=False).is_async is False
    assert lmql.F("Hi [X]").is_async is False and lmql.F("Hi [X]", is_async=True).is_async is True


def test_input_variables_only_for_strings() -> None:
    def f():
        '''lmql
        return 1
        '''

    with pytest.raises(lmlang.UsageError):
        lmql.query(f, input_variables=["a"])


def test_string_query_positional_inputs_follow_first_use() -> None:
    q = lmql.query("return (b, a)", is_async=False)
    assert q(1, 2) == (1, 2)  # b is read first
    with pytest.raises(TypeError):
        q(1)


def test_string_query_sees_only_its_inputs() -> None:
    hidden = 5  # noqa: F841 - a local the string query must not see
    q = lmql.query("return hidden", is_async=False)
    with pytest.raises(lmql.UnresolvedVariableError) as raised:
        q()
    assert isinstance(raised.value, TypeError) and isinstance(raised.value, lmlang.InputError)
    assert q(hidden=6) == 6


def test_decorated_function_sees_where_it_is_defined() -> None:
    outer = 7

    @lmql.query
    def sees():
        '''lmql
        return outer
        '''

    assert sees() == 7


def test_f_escapes_quotes_and_newlines() -> None:
    f = lmql.F('He said "hi"\nthen [X]')
    assert f.lmql_code == '"He said \\"hi\\"\\nthen [X]"'
    assert f.output_variables == ["X"]


def test_run_is_a_coroutine_and_run_sync_is_not() -> None:
    pending = lmql.run("return a + 1", a=1)
    assert inspect.iscoroutine(pending) and asyncio.run(pending) == 2
    assert lmql.run_sync("return a + 1", 2) == 3


def test_async_calls_gathered_together_all_return() -> None:
    q = lmql.query("return a", input_variables=["a"])

    async def together():
        return await asyncio.gather(q(1), q(2), q(3))

    assert asyncio.run(together()) == [1, 2, 3]


@pytest.mark.model
def test_gathered_queries_share_decode_steps_and_answer_as_alone(smollm2) -> None:
    """LMQL maps a query over a list with asyncio.gather: the runs go on at once and share the model's steps."""
    q = lmql.query('"Word: {w}\\nSentiment:[L]" where L in [" positive", " negative"]\nreturn L',
                   input_variables=["w"])
    words = ["wonderful", "terrible", "delightful", "awful"]
    before = smollm2.shared_steps

    async def together():
        return await asyncio.gather(*(q(w) for w in words))

    gathered = asyncio.run(together())
    alone = [lmlang.compile('"Word: {w}\\nSentiment:[L]" where L in [" positive", " negative"]\nreturn L').run(
        "smollm2", w=w, deterministic=True).return_value for w in words]
    assert gathered == alone
    assert smollm2.shared_steps > before


def test_main_runs_async_and_sync_functions() -> None:
    assert lmql.main(lmql.query("return 4")) == 4
    assert lmql.main(lmql.query("return 5", is_async=False)) == 5


def test_default_model() -> None:
    assert lmql.get_default_model() == "smollm2"
    lmql.set_default_model("gemma3-270m")
    try:
        assert lmql.get_default_model() == "gemma3-270m"
    finally:
        lmql.set_default_model(None)


def test_output_writers_that_print_are_reported() -> None:
    q = lmql.query("return 1", is_async=False)
    with pytest.warns(lmlang.LmlangWarning, match="output_writer"):
        assert q(output_writer=lmql.printing) == 1
    assert q(output_writer=lmql.silent) == 1


def test_unknown_generate_option_is_an_error() -> None:
    with pytest.raises(lmlang.UsageError, match="colour"):
        lmql.generate_sync("Hi", max_tokens=2, model="smollm2", colour="red")


def test_scoring_result_aggregates() -> None:
    result = lmql.ScoringResult("p", ["a", "bb"], [-1.0, -3.0], [1, 2], "m")
    assert list(result.scores()) == [-1.0, -3.0]
    assert list(result.scores("mean")) == [-1.0, -1.5]
    assert result.argmax() == "a" and result.probs().sum() == pytest.approx(1.0)
    with pytest.raises(lmlang.UsageError):
        result.token_scores
