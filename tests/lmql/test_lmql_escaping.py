"""Port of LMQL's test_escaping.py: doubled brackets and braces are literal text, also around holes."""

from __future__ import annotations

import json

import pytest

import lmlang.lmql as lmql

pytestmark = [pytest.mark.model, pytest.mark.usefixtures("smollm2")]


def test_curly_braces_around_a_hole() -> None:
    @lmql.query(model="smollm2")
    def curly():
        '''lmql
        argmax
            value = "[abc]"
            "{{ Say {value} 'this is a test':[RESPONSE] }}"
        where
            len(TOKENS(RESPONSE)) < 5
        '''

    result = curly()
    assert result.prompt == "{ Say [abc] 'this is a test':" + result.variables["RESPONSE"] + " }"


def test_curly_only_in_context() -> None:
    @lmql.query(model="smollm2")
    def curly_only():
        '''lmql
        argmax
            "{{ Say }}"
            return context.prompt
        '''

    assert curly_only() == "{ Say }"


def test_curly_and_square_only() -> None:
    @lmql.query(model="smollm2")
    def curly_only():
        '''lmql
        argmax
            "{{ Say }}"
        '''

    @lmql.query(model="smollm2")
    def square_only():
        '''lmql
        argmax
            "[[Say]]"
        '''

    assert curly_only().prompt == "{ Say }"
    assert square_only().prompt == "[Say]"


def test_square_around_a_hole() -> None:
    @lmql.query(model="smollm2")
    def square_with_var():
        '''lmql
        argmax
            "[[[Say]]]"
        where
            Say == "Hello"
        '''

    assert square_with_var().prompt == "[Hello]"


def test_square_bracket_as_a_constraint_value() -> None:
    @lmql.query(model="smollm2")
    def square_value():
        '''lmql
        argmax
            person = "test"
            "Hello {person}, my name is [NAME]. Nice to meet you!"
        where
            NAME in ["["]
        '''

    result = square_value()
    assert result.variables["NAME"] == "["
    assert result.prompt == "Hello test, my name is [. Nice to meet you!"


def test_json_template() -> None:
    @lmql.query(model="smollm2")
    def json_template():
        '''lmql
        argmax
            """
            Write a summary of Bruno Mars, the singer:
            {{
            "name": "[STRING_VALUE]",
            "age": [INT_VALUE],
            "top_songs": [[
                "[STRING_VALUE]",
                "[STRING_VALUE]"
            ]]
            }}
            """
        where
            STOPS_BEFORE(STRING_VALUE, '"') and INT(INT_VALUE) and len(TOKENS(INT_VALUE)) < 3 and len(TOKENS(STRING_VALUE)) < 6
        '''

    result = json_template()
    data = json.loads(result.prompt.split(":", 1)[1])
    assert set(data) == {"name", "age", "top_songs"} and isinstance(data["age"], int) and len(data["top_songs"]) == 2
