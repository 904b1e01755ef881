"""Port of LMQL's test_qstrings.py: how a query string splits into text, holes, interpolations and role tags.

LMQL's own parser also reads a lone ``]`` after a hole as text, per-hole decoders (``[argmax WHO]``), calls as hole
names (``[f(WHO)]``) and arbitrary tags (``{:b}``); lmlang refuses these with
an error that says what to write instead, and the last cases check that."""

from __future__ import annotations

import pytest

from lmlang.errors import LmlangSyntaxError
from lmlang.syntax import parse
from lmlang.syntax.ast import Hole, Interpolation, RoleTag, Text


def parts(literal: str) -> list[tuple[str, str]]:
    out = []
    for part in parse(f'"{literal}"').body[0].string.parts:
        if isinstance(part, Text):
            out.append(("text", part.text))
        elif isinstance(part, Hole):
            out.append(("hole", part.name))
        elif isinstance(part, Interpolation):
            out.append(("expr", part.expr.source))
        elif isinstance(part, RoleTag):
            out.append(("tag", part.role))
    return out


@pytest.mark.parametrize("literal, expected", [
    ("hello [world]", [("text", "hello "), ("hole", "world")]),
    ("hello [[world]]", [("text", "hello [world]")]),
    ("hello [[[world]]]", [("text", "hello ["), ("hole", "world"), ("text", "]")]),
    ("hello [[[[world]]]]", [("text", "hello [[world]]")]),
    ("hello {{world}}", [("text", "hello {world}")]),
    ("hello {{{world}}}", [("text", "hello {"), ("expr", "world"), ("text", "}")]),
    ("hello {{{{world}}}}", [("text", "hello {{world}}")]),
    ("hello [[world]] {{world}}", [("text", "hello [world] {world}")]),
    ("hello [world] {world} ", [("text", "hello "), ("hole", "world"), ("text", " "), ("expr", "world"),
                                ("text", " ")]),
    ("hello {world [nested]}", [("text", "hello "), ("expr", "world [nested]")]),
])
def test_brackets_and_braces(literal: str, expected: list[tuple[str, str]]) -> None:
    assert parts(literal) == expected


@pytest.mark.parametrize("literal, expected", [
    ("[WHO]", [("hole", "WHO")]),
    ("Hello[WHO]{abc}", [("text", "Hello"), ("hole", "WHO"), ("expr", "abc")]),
    ("Hello[WHO][WHAT]!", [("text", "Hello"), ("hole", "WHO"), ("hole", "WHAT"), ("text", "!")]),
    ("Hello[WHO]! {:user}", [("text", "Hello"), ("hole", "WHO"), ("text", "! "), ("tag", "user")]),
    ("Hello[WHO:int]!", [("text", "Hello"), ("hole", "WHO"), ("text", "!")]),
    ("Hello[WHO:Person]!", [("text", "Hello"), ("hole", "WHO"), ("text", "!")]),
    ("Hello[WHO:f(1,2,{'a':3})]!", [("text", "Hello"), ("hole", "WHO"), ("text", "!")]),
    ("Hello[@stream @chat(a=12) WHO]!", [("text", "Hello"), ("hole", "WHO"), ("text", "!")]),
    ("Hello[@lmql.test WHO]!", [("text", "Hello"), ("hole", "WHO"), ("text", "!")]),
])
def test_holes_with_types_and_decorators(literal: str, expected: list[tuple[str, str]]) -> None:
    assert parts(literal) == expected


def test_decorator_expressions_are_kept() -> None:
    hole = parse('"Hello[@stream @chat(a=12) WHO]!"').body[0].string.parts[1]
    assert [d.source for d in hole.decorators] == ["stream", "chat(a=12)"]


def test_type_with_a_string_holding_brackets_and_newline() -> None:
    hole = parse('"Say:[RESPONSE : test(s=\'[INST] foo bar baz\\n> \')]"').body[0].string.parts[1]
    assert hole.name == "RESPONSE" and hole.type.kind == "query"


@pytest.mark.parametrize("literal", ["hello [world]]", "[[hello world]", "Hello[argmax WHO]!", "Hello [f(WHO)]!",
                                     "Hello[WHO]! {:b}"])
def test_forms_lmlang_refuses_with_a_clear_error(literal: str) -> None:
    with pytest.raises(LmlangSyntaxError) as raised:
        parse(f'"{literal}"')
    assert raised.value.span is not None and raised.value.message
