"""The inside of query strings: holes, interpolations, role tags, escapes, and their spans."""

from __future__ import annotations

import pytest

from astdump import dump
from lmlang.errors import LmlangSyntaxError
from lmlang.syntax import parse
from lmlang.syntax.ast import Hole, Interpolation, QueryStmt


def parts(literal: str) -> tuple:
    statement = parse(literal).body[0]
    assert isinstance(statement, QueryStmt)
    return dump(statement.string.parts)


def test_text_and_holes() -> None:
    assert parts('"Q: [A] and [B_2]!"') == (
        ("Text", {"text": "Q: "}), ("Hole", {"name": "A"}), ("Text", {"text": " and "}), ("Hole", {"name": "B_2"}),
        ("Text", {"text": "!"}),
    )


def test_hole_types() -> None:
    assert parts('"[N: int][F:float][S: str][D: r\'[0-9]{2}\'][E: \'a\\\\d\'][Q: nested(x, 3)][R: helper]"') == (
        ("Hole", {"name": "N", "type": ("HoleType", {"kind": "int"})}),
        ("Hole", {"name": "F", "type": ("HoleType", {"kind": "float"})}),
        ("Hole", {"name": "S"}),
        ("Hole", {"name": "D", "type": ("HoleType", {"kind": "regex", "pattern": "[0-9]{2}"})}),
        ("Hole", {"name": "E", "type": ("HoleType", {"kind": "regex", "pattern": "a\\d"})}),
        ("Hole", {"name": "Q", "type": ("HoleType", {"kind": "query", "call": "nested(x, 3)"})}),
        ("Hole", {"name": "R", "type": ("HoleType", {"kind": "query", "call": "helper"})}),
    )


def test_hole_decorators() -> None:
    assert parts('"[@strip A] [@fn(arg, k=[1]) @g B: int]"') == (
        ("Hole", {"name": "A", "decorators": ("strip",)}),
        ("Text", {"text": " "}),
        ("Hole", {"name": "B", "type": ("HoleType", {"kind": "int"}), "decorators": ("fn(arg, k=[1])", "g")}),
    )


def test_interpolations_with_nested_braces_and_strings() -> None:
    assert parts('"a {x} b {d[\'}\']} c {f({\'k\': [1, 2]})} {(lambda: 1)()}"') == (
        ("Text", {"text": "a "}), ("Interpolation", {"expr": "x"}), ("Text", {"text": " b "}),
        ("Interpolation", {"expr": "d['}']"}), ("Text", {"text": " c "}),
        ("Interpolation", {"expr": "f({'k': [1, 2]})"}), ("Text", {"text": " "}),
        ("Interpolation", {"expr": "(lambda: 1)()"}),
    )


def test_role_tags() -> None:
    assert parts('"{:system} Be brief.{:user}Hi{:assistant}[A]"') == (
        ("RoleTag", {"role": "system"}), ("Text", {"text": " Be brief."}), ("RoleTag", {"role": "user"}),
        ("Text", {"text": "Hi"}), ("RoleTag", {"role": "assistant"}), ("Hole", {"name": "A"}),
    )


def test_bracket_and_brace_escapes() -> None:
    assert parts('"[[x]] {{y}} [[[A]]]"') == (("Text", {"text": "[x] {y} ["}), ("Hole", {"name": "A"}), ("Text", {"text": "]"}))


def test_python_escapes_are_resolved_unless_raw() -> None:
    assert parts('"a\\n\\t\\"\\x41\\u00e9\\N{BULLET}\\d\\\nb"') == (("Text", {"text": 'a\n\t"A\u00e9\u2022\\db'}),)
    assert parts('r"a\\n[A]\\d"') == (("Text", {"text": "a\\n"}), ("Hole", {"name": "A"}), ("Text", {"text": "\\d"}))


@pytest.mark.parametrize("quote", ['"', "'", '"""', "'''"])
@pytest.mark.parametrize("prefix", ["", "r", "R", "f", "u", "rf"])
def test_every_python_quoting(prefix: str, quote: str) -> None:
    assert parts(f"{prefix}{quote}Q: [A]{quote}")[-1] == ("Hole", {"name": "A"})


def test_triple_quoted_multiline() -> None:
    assert parts('"""Line one\n  [A]\nlast"""') == (("Text", {"text": "Line one\n  "}), ("Hole", {"name": "A"}), ("Text", {"text": "\nlast"}))


def test_spans_point_at_the_characters() -> None:
    text = 'x = 1\n  \nr"Q: {x + 1} [@d  ANSWER: r\'[a-z]+\'] [[ok]] {:user}"'
    statement = parse(text).body[1]
    text_part, interpolation, space, hole, escaped, role = statement.string.parts
    assert text_part.span.text == "Q: "
    assert isinstance(interpolation, Interpolation)
    assert (interpolation.span.text, interpolation.expr.span.text) == ("{x + 1}", "x + 1")
    assert isinstance(hole, Hole)
    assert hole.span.text == "[@d  ANSWER: r'[a-z]+']"
    assert hole.name_span.text == "ANSWER"
    assert hole.type.span.text == "r'[a-z]+'"
    assert hole.decorators[0].span.text == "d"
    assert (escaped.span.text, escaped.text) == (" [[ok]] ", " [ok] ")
    assert role.span.text == "{:user}"
    assert (hole.span.line, hole.span.column) == (3, 14)


@pytest.mark.parametrize(
    "literal, message, caret",
    [
        ('"Q: [ ]"', "a hole needs a variable name, as in [ANSWER]", "[ ]"),
        ('"list [1, 2]"', "a hole needs a variable name, as in [ANSWER]", "[1, 2]"),
        ('"[A"', "expected ']' to close the hole [A", '"'),
        ('"[A B]"', "expected ']' to close the hole [A, found 'B'", "B"),
        ('"[A: ]"', "expected a type after ':' in the hole", ": ]"),
        ('"[A: 1 + 2]"', "a hole's type is int, float, a regex", "1 + 2"),
        ('"a ] b"', "a single ']' in a query string: write ]] for a literal ']'", "]"),
        ('"a } b"', "a single '}' in a query string: write }} for a literal '}'", "}"),
        ('"a {x"', "'{' of the interpolation is never closed", "{"),
        ('"a {}"', "empty {} in a query string", "{}"),
        ('"a {x:.2f}"', "format specs and conversions", ":.2f"),
        ('"a {x +}"', "an interpolation must be a Python expression", "x +"),
        ('"{:bot}"', "unknown role 'bot': use {:system}, {:user} or {:assistant}", "bot"),
        ('b"[A]"', "a query string cannot be a bytes literal", 'b"[A]"'),
        ('"\\x4"', "malformed '\\x' escape", "\\x"),
    ],
)
def test_query_string_errors(literal: str, message: str, caret: str) -> None:
    with pytest.raises(LmlangSyntaxError) as error:
        parse(literal)
    assert message in error.value.message
    assert error.value.span.text == caret


def test_lone_bracket_is_not_text_anywhere_but_a_plain_function() -> None:
    function = parse('def f():\n    "[1, 2]"\n').body[0]
    assert function.body[0].source == '"[1, 2]"'
