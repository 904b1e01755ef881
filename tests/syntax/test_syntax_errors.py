"""Syntax errors: words, not terminal names; the span of the offending token; rendering with a caret."""

from __future__ import annotations

import re

import pytest

from lmlang.errors import LmlangSyntaxError
from lmlang.syntax import parse


def error_of(text: str) -> LmlangSyntaxError:
    with pytest.raises(LmlangSyntaxError) as error:
        parse(text, "q.lmq")
    return error.value


@pytest.mark.parametrize(
    "text, message, line, column",
    [
        ("x = \n", "expected an expression", 1, 5),
        ('for i in range(3)\n    "x"\n', "expected ':' after the for header", 1, 18),
        ("while x\n    pass\n", "expected ':' after the while header", 1, 8),
        ('x = "abc\n', "unterminated string: add the closing \"", 1, 5),
        ('"""abc\n', 'unterminated string: add the closing """', 1, 1),
        ('"a"\n    "b"\n', "unexpected indent", 2, 5),
        ('if x:\n"a"\n', "expected an indented block after the if header", 2, 1),
        ("if x:\n    pass\n  y = 1\n", "indentation matches no enclosing block", 3, 3),
        ("f(1, 2\n", "'(' is never closed: add the matching ')'", 1, 2),
        ("x = [1,\ndef f(): pass\n", "'[' is never closed", 1, 5),
        ('"[A]" where\n', "expected an expression, found the end of the line", 1, 12),
        ("x = 1 +* 2\n", "expected an expression, found '*'", 1, 8),
        ("x = $\n", "unexpected character '$'", 1, 5),
        ('"[X]" where X in \\ \n    ["a"]\n', "a backslash that continues a line must end it", 1, 18),
        ('x = "[A]" where len(A) < 3\n', "'where' can only follow a query string", 1, 11),
        ('where len(A) < 10\n"a"\n', "statements come before the from/where/distribution clauses", 2, 1),
        ('argmax\n    "[A]"\nwhere INT(A)\nwhere INT(A)\n', "a second 'where' clause", 4, 1),
        ('print(1)\n    "x"\n', "unexpected indent", 2, 5),
        ('def f():\n    "Q [A]" where len(A) < 2\n', "'where' can only follow a query string in a query", 2, 13),
        ("@lmql.query\ndef f():\n    x = 1\n", "the body of query function 'f' must be its query", 1, 1),
        ("x + 1 = 3\n", "not valid Python: cannot assign to expression", 1, 1),
        ('route:\n    "x"\n', "expected 'case', found a string", 2, 5),
        ("cascade \"a\" until:\n    pass\n", "expected an expression, found ':'", 1, 18),
        ('ensemble "a":\n    pass\n', "expected ',' or 'vote', found ':'", 1, 13),
        ('ensemble "a" vote:\n    pass\n', "expected a name, found ':'", 1, 18),
        ('ensemble "a" vote A, 2:\n    pass\n', "expected a name, found a number", 1, 22),
        ('ensemble "a" vote A\n    pass\n', "expected ':' after the ensemble header", 1, 20),
        ('sample(0.8)\n"[A]"\n', "decoder arguments are written name=value", 1, 8),
    ],
)
def test_error_messages_and_positions(text: str, message: str, line: int, column: int) -> None:
    error = error_of(text)
    assert message in error.message
    assert (error.span.line, error.span.column) == (line, column)


TERMINAL_NAME = re.compile(r"\b(_?[A-Z]{2,}(?:_[A-Z]+)*|__ANON_\d+|python__\w+|\$END)\b")


@pytest.mark.parametrize(
    "text",
    ["x = \n", "x y\n", "def f(:\n  pass\n", "if x\n", "(\n", "x = )\n", "import\n", "from\n", "class\n",
     "lambda\n", "x[\n", "return return\n", "for in x:\n  pass\n", "a = b = \n", "distribution\n", "argmax(\n"],
)
def test_messages_never_name_lark_terminals(text: str) -> None:
    message = error_of(text).message
    assert not TERMINAL_NAME.search(message.replace("'", " ")), message


def test_render_shows_file_line_column_and_caret() -> None:
    rendered = error_of('x = 1\nfor i in y\n    "[A]"\n').render()
    assert rendered == (
        "q.lmq:2:11: error: expected ':' after the for header\n"
        "    for i in y\n"
        "              ^"
    )


def test_no_lark_exception_escapes() -> None:
    for text in ["\x00", "'''", "x = (]\n", "\tif x:\n", "  x = 1\n", "@\n", "]\n", "def f(x):\n  '''lmql\n  '''\n"]:
        try:
            parse(text)
        except LmlangSyntaxError:
            pass
