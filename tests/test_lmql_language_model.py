"""LMQL's language as LMQL's own tests use it, run on SmolLM2: the structure LMQL guarantees (issue 11, items 2
and 3). Values are short (a few tokens) to keep the tests fast."""

from __future__ import annotations

import pytest

import lmlang
from lmlang.decoding import decorator

pytestmark = pytest.mark.model

# A module global a where clause names, as LMQL's tests write it.
nl = "\n"


def test_a_first_hole_without_text_before_it_starts_from_bos(smollm2) -> None:
    result = lmlang.run('"[RESPONSE]" where len(TOKENS(RESPONSE)) < 4', model="smollm2")
    assert result.prompt == result.variables["RESPONSE"] and result.stats.generated_tokens > 0


def test_lower_case_stops_at_runs(smollm2) -> None:
    result = lmlang.run('"Say hello. Hello[GREETINGS]" where stops_at(GREETINGS, ".") and len(TOKENS(GREETINGS)) < 6',
                        model="smollm2")
    value = result.variables["GREETINGS"]
    assert "." not in value[:-1]


def test_return_none_gives_none_and_no_return_the_result(smollm2) -> None:
    @lmlang.query(model="smollm2")
    def none_return_value():
        '''lmql
        "Hi, [COMPLETION]." where len(TOKENS(COMPLETION)) == 2
        return None
        '''

    @lmlang.query(model="smollm2")
    def no_return():
        '''lmql
        "Hi,[COMPLETION]" where len(TOKENS(COMPLETION)) == 2
        '''

    assert none_return_value() is None
    assert none_return_value.run().returned
    assert isinstance(no_return(), lmlang.Result) and not no_return.run().returned

    @lmlang.query(model="smollm2")
    def nested_none():
        '''lmql
        "[TEST: none_return_value]."
        return context.prompt
        '''

    @lmlang.query(model="smollm2")
    def nested_no_return_in_query():
        '''lmql
        "[TEST: no_return]."
        return (TEST, context.prompt)
        '''

    assert nested_none() == "None."
    # Without `return`, a nested query is a macro: its text stays in the prompt and is the hole's value.
    value, prompt = nested_no_return_in_query()
    assert value.startswith("Hi,") and len(value) > 3 and prompt == value + "."


def test_a_nested_macro_keeps_its_loop_text(smollm2) -> None:
    source = '''
@lmql.query
def items_list(n: int):
    """lmql
    for i in range(n):
        "-[ITEM]\\n" where STOPS_AT(ITEM, "\\n") and len(TOKENS(ITEM)) < 4
    """

"A list of things to pack:\\n[ITEMS: items_list(2)]"
'''
    result = lmlang.run(source, model="smollm2")
    items = result.variables["ITEMS"]
    assert items.startswith("-") and items.count("-") >= 2
    assert result.prompt == "A list of things to pack:\n" + items


def test_pre_decorators_with_one_argument(smollm2) -> None:
    seen = []

    @decorator.pre
    def fixed(variable):
        seen.append(variable.name)
        return "Fixed Value"

    @decorator.pre
    def passthrough(variable):
        return variable

    @lmlang.query(model="smollm2")
    def q():
        '''lmql
        "Say 'this is a test':\\n[@fixed RESPONSE] and[@passthrough OTHER]" where len(TOKENS(OTHER)) < 3
        return RESPONSE
        '''

    assert q() == "Fixed Value" and seen == ["RESPONSE"]


def test_a_module_global_in_a_where_clause(smollm2) -> None:
    @lmlang.query(model="smollm2")
    def q():
        '''lmql
        "Write a word:[W]" where STOPS_BEFORE(W, nl) and len(TOKENS(W)) < 4
        return W
        '''

    assert "\n" not in q()


def test_query_functions_as_methods_and_nested_methods(smollm2) -> None:
    class Nested:
        def __init__(self):
            self.a = 12

        @lmlang.query(model="smollm2")
        def chain_of_thought(self):
            '''lmql
            "A. Let's think step by step ({self.a}):[ANSWER]" where len(TOKENS(ANSWER)) < 3
            return "cot-" + str(self.a)
            '''

        @lmlang.query(model="smollm2")
        def question(self):
            '''lmql
            "Q: Why is the sky blue?\\n[ANSWER: self.chain_of_thought]"
            return ANSWER
            '''

    assert Nested().question() == "cot-12"


def test_a_keyword_input_not_in_the_signature_reaches_the_query(smollm2) -> None:
    @lmlang.query(model="smollm2")
    def q():
        '''lmql
        "Q: Hi {extra}.[WHO]" where len(TOKENS(WHO)) < 2
        return extra
        '''

    assert q(extra="there") == "there"


def test_from_a_python_variable_and_argmax_n_from_an_input(smollm2) -> None:
    model_name = "smollm2"

    @lmlang.query
    def q(n):
        '''lmql
        argmax(n=n)
            "Q: Hi {n}. A: [WHO]"
        from
            model_name
        where
            len(TOKENS(WHO)) < 3
        '''

    result = q(1)
    assert isinstance(result, lmlang.Result) and result.model == "smollm2"
    assert lmlang.compile('"Hi[X]" where len(TOKENS(X)) < 2\nreturn 1', ).run(model="smollm2").return_value == 1


def test_context_inside_a_query(smollm2) -> None:
    result = lmlang.run('"Say hi:[X]" where len(TOKENS(X)) < 3\nreturn context.prompt', model="smollm2")
    assert result.return_value == result.prompt


def test_a_query_without_holes_returns_one_result_for_n_2(smollm2) -> None:
    result = lmlang.run('sample(n=2)\n"Just text"\nreturn "Something"', model="smollm2")
    assert isinstance(result, lmlang.Result) and result.return_value == "Something"


def test_beam_var_runs_as_beam(smollm2) -> None:
    source = '"Q: What colour is the sky?\\nA:[A]" where len(TOKENS(A)) < 3'
    as_beam_var = lmlang.compile("beam_var(n=2)\n" + source).run(model="smollm2")
    as_beam = lmlang.compile("beam(n=2)\n" + source).run(model="smollm2")
    assert [r.variables for r in as_beam_var] == [r.variables for r in as_beam]


def test_a_query_input_shadows_a_cascade_measure(smollm2) -> None:
    source = '''
cascade "smollm2" until margin(CAP) >= threshold:
    "The capital of France is[CAP]" where len(TOKENS(CAP)) < 3
'''
    result = lmlang.run(source, model="smollm2", threshold=0.0)
    assert result.variables["CAP"]


def test_distribution_candidates_see_the_query_names(smollm2) -> None:
    source = '''
words = ["yes", "no", "maybe"]
"Is the sky blue? Answer:[A]" distribution A in [" " + w for w in words if w != skip]
'''
    result = lmlang.run(source, model="smollm2", skip="maybe")
    assert [c for c, _ in result.distributions["A"]] == [" yes", " no"]


def test_a_where_generator_expression_sees_the_query_names(smollm2) -> None:
    source = '''
ok = "0123456789 "
"Count to three: 1, 2,[X]" where all(ch in ok for ch in X) and len(TOKENS(X)) < 3
'''
    try:
        result = lmlang.run(source, model="smollm2")
    except lmlang.ConstraintError as err:  # the predicate is checked on the final value; it saw `ok`
        assert "does not satisfy" in err.message
    else:
        assert all(ch in "0123456789 " for ch in result.variables["X"])
