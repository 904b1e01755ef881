"""Port of LMQL's test_nested_queries.py: query functions nested as holes, `[ANSWER: fn]` and `[X: fn(args)]`."""

from __future__ import annotations

import pytest

import lmlang.lmql as lmql

pytestmark = [pytest.mark.model, pytest.mark.usefixtures("smollm2")]


def tokens(text: str) -> int:
    return len(lmql.tokenizer("smollm2")(text)["input_ids"])


def test_nested_query_defined_inside_a_query() -> None:
    @lmql.query(model="smollm2")
    def cot():
        '''lmql
        @lmql.query
        def chain_of_thought():
            """lmql
            "A: Let's think step by step. [ANSWER]" where len(TOKENS(ANSWER)) < 4
            return ANSWER.strip()
            """

        "Q: It is August 12th, 2020. What date was it 100 days ago? [ANSWER: chain_of_thought]"
        '''

    result = cot()
    answer = result.variables["ANSWER"]
    assert answer == answer.strip() and tokens(answer) < 4
    # the nested query's text leaves the prompt; its return value stays in its place
    assert result.prompt == "Q: It is August 12th, 2020. What date was it 100 days ago? " + answer


def test_nested_query_without_return_keeps_its_text() -> None:
    @lmql.query(model="smollm2")
    def packing():
        '''lmql
        @lmql.query
        def items_list(n: int):
            """lmql
            for i in range(n):
                "-[ITEM]\n" where STOPS_AT(ITEM, "\n") and len(TOKENS(ITEM)) < 4
            """

        "A list of things not to forget to pack for your next trip:\n[ITEMS: items_list(2)]"
        '''

    result = packing()
    items = result.variables["ITEMS"]
    assert isinstance(items, str) and items.count("-") >= 2
    assert result.prompt.endswith(items)


@lmql.query
def dateformat():
    '''lmql
    "(respond in DD/MM/YYYY) [ANSWER]" where len(TOKENS(ANSWER)) == 3
    return ANSWER.strip()
    '''


def test_same_nested_query_three_times() -> None:
    @lmql.query(model="smollm2")
    def multi_nested():
        '''lmql
        answers = []
        "Q: When was Obama born? [ANSWER: dateformat]\n"
        answers.append(ANSWER)
        "Q: When was Bruno Mars born? [ANSWER: dateformat]\n"
        answers.append(ANSWER)
        "Out of these, who was born last?[LAST]" where len(TOKENS(LAST)) == 2
        return answers, LAST
        '''

    answers, last = multi_nested()
    assert len(answers) == 2 and all(a == a.strip() for a in answers)
    assert tokens(last) == 2


@lmql.query
def one_of(choices: list):
    '''lmql
    "Among {choices}, what do you consider most likely? [ANSWER]" where ANSWER in choices
    return ANSWER
    '''


def test_nested_query_with_arguments() -> None:
    @lmql.query(model="smollm2")
    def capital():
        '''lmql
        "Q: What is the capital of France? [ANSWER: one_of(['Berlin', 'Paris', 'London'])]"
        return ANSWER
        '''

    assert capital() in ("Berlin", "Paris", "London")


@lmql.query
def cot_one_of(choices: list):
    '''lmql
    "A: Let's think step by step. [ANSWER: one_of(choices)]" where len(TOKENS(ANSWER)) < 4
    return ANSWER.strip()
    '''


def test_nested_query_nesting_another() -> None:
    @lmql.query(model="smollm2")
    def double_tail_call():
        '''lmql
        "The answer is [ANSWER: cot_one_of(['Hello', 'Greetings'])]"
        '''

    result = double_tail_call()
    assert result.variables["ANSWER"] in ("Hello", "Greetings")
    assert result.prompt == "The answer is " + result.variables["ANSWER"]


class NestedQueryMethods:
    def __init__(self) -> None:
        self.a = 12

    @lmql.query
    def chain_of_thought(self):
        '''lmql
        """A. Let's think step by step ({self.a}):
        [REASONING]
        Therefore the answer is[ANSWER]""" where STOPS_AT(ANSWER, ".") and len(TOKENS(ANSWER)) < 5 and len(TOKENS(REASONING)) < 5
        return ANSWER.strip()
        '''

    @lmql.query(model="smollm2")
    def question(self):
        '''lmql
        """Q: Why is the sky blue?
        [ANSWER: self.chain_of_thought]"""
        return ANSWER.strip().rstrip(".").capitalize()
        '''


def test_query_methods_nest() -> None:
    value = NestedQueryMethods().question()
    assert isinstance(value, str) and value == value.strip().rstrip(".").capitalize()
