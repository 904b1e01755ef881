"""Golden ASTs for each construct of the language, and the exactness of spans."""

from __future__ import annotations

import pytest

from astdump import dump, nodes, spans
from lmlang.syntax import KEYWORDS, grammar_path, parse
from lmlang.syntax.ast import Expr, Hole, PyStmt, QueryDef, QueryStmt, Route


def body(text: str) -> tuple:
    return dump(parse(text).body)


def only(text: str):
    program = parse(text)
    assert len(program.body) == 1
    return program.body[0]


# ---------------------------------------------------------------------------------------------------- standalone form


def test_one_line_standalone_query() -> None:
    program = parse('argmax "Q: [A]" from "m" where len(A) < 10')
    assert dump(program.decoder) == ("DecoderClause", {"name": "argmax"})
    assert program.model.source == '"m"'
    assert program.where.source == "len(A) < 10"
    assert dump(program.body) == (
        ("QueryStmt", {"string": ("QueryString", {"parts": (("Text", {"text": "Q: "}), ("Hole", {"name": "A"}))})}),
    )


def test_block_standalone_query_with_clauses_on_their_own_lines() -> None:
    program = parse(
        'sample(temperature=0.8, n=3)\n    "Q: [A]"\n    x = 1\nfrom\n    "m"\nwhere\n    len(A) < 10\n'
        'distribution\n    A in ["a", "b"]\n'
    )
    assert dump(program.decoder) == (
        "DecoderClause",
        {"name": "sample", "args": (("Argument", {"name": "temperature", "value": "0.8"}), ("Argument", {"name": "n", "value": "3"}))},
    )
    assert [type(s).__name__ for s in program.body] == ["QueryStmt", "PyStmt"]
    assert program.model.source == '"m"'
    assert program.where.source == "len(A) < 10"
    assert dump(program.distribution) == ("Distribution", {"var": "A", "values": '["a", "b"]'})


@pytest.mark.parametrize("where, frm", [("WHERE", "FROM"), ("Where", "From"), ("where", "from")])
def test_clause_keywords_in_any_case(where: str, frm: str) -> None:
    program = parse(f'ARGMAX\n    "[A]"\n{frm} "m"\n{where} INT(A)\n')
    assert program.decoder.name == "argmax"
    assert program.model.source == '"m"'
    assert program.where.source == "INT(A)"


def test_where_clause_continues_over_lines_joined_by_and_or() -> None:
    program = parse('argmax\n    "[A][B]"\nwhere\n    INT(A) and\n    INT(B)\n    or len(A) < 3\n')
    assert program.where.source == "INT(A) and\n    INT(B)\n    or len(A) < 3"
    assert program.where.python() is not None


def test_python_preamble_before_the_decoder() -> None:
    program = parse('import re\nx = 2\nargmax\n    "[A]"\nfrom "m"\n')
    assert program.decoder.name == "argmax"
    assert [s.kind for s in program.body[:2]] == ["import", "assign"]


# ---------------------------------------------------------------------------------------------------- modern form


def test_query_string_with_inline_where_and_distribution() -> None:
    statement = only('"Q: [A]" where len(TOKENS(A)) < 10 and STOPS_AT(A, ".")')
    assert isinstance(statement, QueryStmt)
    assert statement.where.source == 'len(TOKENS(A)) < 10 and STOPS_AT(A, ".")'
    statement = only('"Hello [WHO]" distribution WHO in ["Alice", "Bob"]')
    assert dump(statement.distribution) == ("Distribution", {"var": "WHO", "values": '["Alice", "Bob"]'})


@pytest.mark.parametrize("first", ["argmax", "sample(temperature=0.8, n=3)", "beam(n=2)", "best_k(k=2)"])
def test_decoder_on_the_first_line(first: str) -> None:
    program = parse(f'{first}\n"Q: [A]"\n')
    assert program.decoder.name == first.split("(")[0]
    assert len(program.body) == 1


def test_a_call_on_the_first_line_is_not_a_decoder_unless_it_names_one() -> None:
    program = parse('print("hi")\n"Q: [A]"\n')
    assert program.decoder is None
    assert dump(program.body[0]) == ("PyStmt", {"kind": "expr", "source": 'print("hi")'})


def test_adjacent_string_literals_form_one_query_string() -> None:
    statement = only('"Q: " \'[A]\' r"\\d"')
    assert dump(statement.string.parts) == (("Text", {"text": "Q: "}), ("Hole", {"name": "A"}), ("Text", {"text": "\\d"}))
    assert statement.string.raw


# ---------------------------------------------------------------------------------------------------- Python statements


PYTHON = '''\
x: int = 3
a, b = 1, 2
x += 1
del a
assert x, "message"
global g
nonlocal_ok = True
import os.path as p, re
from collections import (OrderedDict,
                         defaultdict)
from . import sibling
raise ValueError("x") from None
print(f"{x!r}", *[a], **{"k": b}); pass
z = lambda q, *r, **s: q if q else (w := 3)
s = x[1:2, ::3]
y = [j async for j in k] if False else {i: i for i in range(3)}
t = await thing() if x else ...
'''


def test_simple_python_statements_keep_their_text() -> None:
    statements = parse(PYTHON).body
    kinds = [s.kind for s in statements]
    assert kinds == ["assign", "assign", "assign", "del", "assert", "global", "assign", "import", "import", "import",
                     "raise", "expr", "pass", "assign", "assign", "assign", "assign"]
    assert statements[8].source == "from collections import (OrderedDict,\n                         defaultdict)"


def test_if_elif_else() -> None:
    assert body('if a:\n    "[A]"\nelif b: "[B]"\nelse:\n    pass\n') == (
        ("If", {
            "branches": (("a", (("QueryStmt", {"string": ("QueryString", {"parts": (("Hole", {"name": "A"}),)})}),)),
                         ("b", (("QueryStmt", {"string": ("QueryString", {"parts": (("Hole", {"name": "B"}),)})}),))),
            "orelse": (("PyStmt", {"kind": "pass", "source": "pass"}),),
        }),
    )


def test_for_else_while_break_continue_return() -> None:
    statements = parse(
        "def f(n):\n    for k, v in d.items():\n        break\n    else:\n        continue\n"
        "    while n > 0:\n        n -= 1\n    else:\n        return n\n    return\n"
    ).body
    function = statements[0]
    loop, while_loop, final = function.body
    assert (loop.target.source, loop.iter.source) == ("k, v", "d.items()")
    assert dump(loop.orelse) == (("PyStmt", {"kind": "continue", "source": "continue"}),)
    assert while_loop.test.source == "n > 0"
    assert dump(while_loop.orelse) == (("Return", {"value": "n"}),)
    assert dump(final) == ("Return", {})


def test_async_for_and_function_definitions() -> None:
    statements = parse(
        "@decorate(1)\n@other\nasync def f(a, b=2, *args, c, **kw) -> int:\n    async for x in y:\n        pass\n"
        "def g(): return 1\n"
    ).body
    f, g = statements
    assert (f.name, f.params, f.is_async, f.returns.source) == ("f", "a, b=2, *args, c, **kw", True, "int")
    assert [d.source for d in f.decorators] == ["decorate(1)", "other"]
    assert f.body[0].is_async
    assert (g.name, g.params, dump(g.body)) == ("g", "", (("Return", {"value": "1"}),))


def test_strings_in_a_plain_function_are_python() -> None:
    function = only('def f():\n    "a docstring [not a hole"\n    return 1\n')
    assert dump(function.body[0]) == ("PyStmt", {"kind": "expr", "source": '"a docstring [not a hole"'})


def test_class_try_with_are_python_statements() -> None:
    statements = parse(
        "@dataclass\nclass P:\n    name: str\ntry:\n    x = 1\nexcept E as e:\n    pass\nfinally:\n    pass\n"
        "with open(f) as h:\n    pass\n"
    ).body
    assert [s.kind for s in statements] == ["class", "try", "with"]
    assert statements[0].source == "@dataclass\nclass P:\n    name: str"


def test_comments_blank_lines_and_line_continuations() -> None:
    statements = parse('# leading comment\n\nx = (1 +\n     2)  # trailing\n\n\ny = 1 + \\\n    2\n"[A]"  # c\n').body
    assert [getattr(s, "source", None) for s in statements[:2]] == ["x = (1 +\n     2)", "y = 1 + \\\n    2"]
    assert isinstance(statements[2], QueryStmt)


# ---------------------------------------------------------------------------------------------------- nested queries


NESTED = """\
import lmql

@lmql.query(decoder="sample", temperature=0.7)
async def pick(choices: list, n=2):
    '''lmql
    argmax
        "Among {choices}: [ANSWER]" where ANSWER in choices
    from "m"
    '''

@lmlang.query
def plain():
    \"\"\"
    "[X]"
    return X
    \"\"\"
"""


def test_nested_query_definitions() -> None:
    _, pick, plain = parse(NESTED, "nested.lmq").body
    assert isinstance(pick, QueryDef) and isinstance(plain, QueryDef)
    assert (pick.name, pick.params, pick.param_names, pick.is_async) == ("pick", "choices: list, n=2", ("choices", "n"), True)
    assert dump(pick.options) == (("Argument", {"name": "decoder", "value": '"sample"'}),
                                  ("Argument", {"name": "temperature", "value": "0.7"}))
    assert pick.query.decoder.name == "argmax"
    assert pick.query.model.source == '"m"'
    assert pick.query.body[0].where.source == "ANSWER in choices"
    assert [type(s).__name__ for s in plain.query.body] == ["QueryStmt", "Return"]


def test_nested_query_spans_point_into_the_file() -> None:
    program = parse(NESTED, "nested.lmq")
    hole = program.body[1].query.body[0].string.holes[0]
    assert hole.span.text == "[ANSWER]"
    assert (hole.span.line, hole.span.column) == (7, 27)
    assert str(hole.span) == "nested.lmq:7:27"


def test_nested_query_errors_point_into_the_file() -> None:
    from lmlang.errors import LmlangSyntaxError

    text = "@lmql.query\ndef f():\n    '''lmql\n    \"[A]\" where\n    '''\n"
    with pytest.raises(LmlangSyntaxError) as error:
        parse(text)
    assert (error.value.span.line, error.value.span.column) == (4, 16)


# --------------------------------------------------------------------------------------------- cascade, route, ensemble


def test_cascade() -> None:
    assert body('cascade "smollm2", "gemma3-270m" until margin(CLS) >= 0.4:\n    "[CLS]"\n') == (
        ("Cascade", {
            "models": ('"smollm2"', '"gemma3-270m"'),
            "condition": "margin(CLS) >= 0.4",
            "body": (("QueryStmt", {"string": ("QueryString", {"parts": (("Hole", {"name": "CLS"}),)})}),),
        }),
    )
    assert only('cascade "a":\n    pass\n').condition is None


def test_route() -> None:
    route = only('route question, by="smollm2":\n    case "math":\n        "[X]"\n    case _:\n        pass\n')
    assert dump(route.header) == (("Argument", {"value": "question"}), ("Argument", {"name": "by", "value": '"smollm2"'}))
    assert [(label.source, len(block)) for label, block in route.arms] == [('"math"', 1), ("_", 1)]


def test_ensemble() -> None:
    statement = only('ensemble "smollm2", MODEL vote ANSWER, samples=2, temperature=0.8:\n    "[ANSWER]"\n')
    assert dump(statement) == ("Ensemble", {
        "models": ('"smollm2"', "MODEL"),
        "var": "ANSWER",
        "options": (("Argument", {"name": "samples", "value": "2"}),
                    ("Argument", {"name": "temperature", "value": "0.8"})),
        "body": (("QueryStmt", {"string": ("QueryString", {"parts": (("Hole", {"name": "ANSWER"}),)})}),),
    })
    assert statement.var_span.text == "ANSWER" and statement.options[0].span.text == "samples=2"
    assert only('ensemble "a" vote A:\n    pass\n').options == ()


def test_cascade_and_route_are_names_elsewhere() -> None:
    statement = only("x = route + cascade")
    assert isinstance(statement, PyStmt)


@pytest.mark.parametrize("word", ["ensemble", "cascade", "route"])
@pytest.mark.parametrize("text", ["{w} = 1", "{w}(x)", "{w} [0]", "{w}.vote()", "print({w})", "{w} if a else b",
                                  "{w} not in xs", "{w}, vote = 1, 2", "{w}", "{w}: int = 3", "{w} += 1"])
def test_statement_keywords_are_names_unless_their_statement_follows(word: str, text: str) -> None:
    # LMQL queries are Python: a variable called `route` or `cascade` must keep working.
    assert isinstance(only(text.format(w=word) + "\n"), PyStmt)


def test_route_without_arguments_is_still_a_statement() -> None:
    statement = only('route:  # the rules decide\n    case _:\n        "[A]"\n')
    assert isinstance(statement, Route) and statement.header == ()


# ---------------------------------------------------------------------------------------------------- spans, API


def test_every_span_is_exact_for_the_corpus(corpus_programs) -> None:
    for program in corpus_programs:
        for node, span in spans(program):
            assert 0 <= span.start <= span.end <= len(span.source.text)
            assert span.text == span.text.strip() or isinstance(node, (Expr,)) or type(node).__name__ in ("Text", "Program")
        for node in nodes(program):
            if isinstance(node, Expr):
                assert node.source == node.span.text
            if isinstance(node, Hole):
                assert node.span.text.startswith("[") and node.span.text.endswith("]")
                assert node.name_span.text == node.name
            if isinstance(node, QueryStmt):
                assert node.span.text.startswith(node.string.span.text)


def test_statement_spans() -> None:
    program = parse('x = 1  # c\nif x:\n    "[A]"  # d\n\n\nfor i in y:\n    pass\n')
    assert [s.span.text for s in program.body] == ["x = 1", 'if x:\n    "[A]"', "for i in y:\n    pass"]


def test_line_offset_moves_positions() -> None:
    program = parse('"[A]"', "file.py", line_offset=10)
    assert program.body[0].span.line == 11


def test_grammar_path_and_keywords() -> None:
    assert grammar_path().name == "lmlang.lark" and grammar_path().exists()
    assert {"where", "distribution", "from", "cascade", "route", "until", "ensemble", "vote", "if", "def"} <= KEYWORDS
    assert "argmax" not in KEYWORDS
