"""LMQL's language as LMQL's own tests use it, and Python's scoping rules: the parts that need no model.

Regression tests of issue 11 (items 2 and 3); those that run a query on SmolLM2 are in test_lmql_language_model.py.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import lmlang
from lmlang.check import check
from lmlang.constraints import plan_hole
from lmlang.errors import ConstraintError, NotEnforcedError
from lmlang.interpret.execution import NO_RETURN, CompiledProgram, Finished, HoleEvent
from lmlang.source import Source
from lmlang.syntax import ast, parse

ROOT = Path(__file__).resolve().parent.parent


def where(text: str) -> ast.Expr:
    source = Source("query.lmq", "where " + text)
    return ast.Expr(source.span(6, len(source.text)), text)


def plan(var: str, text: str, env=None):
    return plan_hole(var, [where(text)], None, env or {}, {}, ("X", "P"))


def problems(text: str) -> list[str]:
    return [e.message for e in check(parse(text, "q.lmq"))]


def finish_value(source: str, values: list, **inputs):
    """The value the program finishes with, answering its holes with ``values``."""
    execution = CompiledProgram(parse(source), tuple(sorted(inputs))).start(inputs)
    answers = iter(values)
    while True:
        event = execution.next_event()
        if isinstance(event, Finished):
            return event.value
        execution.resume(next(answers) if isinstance(event, HoleEvent) else None)


# ------------------------------------------------------------------------------------------ constraint spellings


def test_lower_case_stop_functions_are_lmqls_spellings() -> None:
    assert plan("X", 'stops_at(X, ".")').stops == ((".", True),)
    assert plan("X", 'stops_before(X, "\\n") and len(TOKENS(X)) < 5').stops == (("\n", False),)
    assert problems('"Hello[GREETINGS]" where stops_at(GREETINGS, ".") and stops_before(GREETINGS, "!")') == []


def test_spellings_lmql_does_not_accept_stay_unknown() -> None:
    # LMQL's operation registry has TOKENS and INT in upper case only; int(X) is Python's int.
    assert any("unknown constraint function 'tokens'" in m for m in problems('"[X]" where len(tokens(X)) < 5'))


# ------------------------------------------------------------------------------------------ or, stops, token bounds


def test_or_of_token_bounds_is_their_union() -> None:
    p = plan("X", "len(TOKENS(X)) < 20 or len(TOKENS(X)) < 30")
    assert (p.max_tokens, p.min_tokens) == (29, 0)
    assert plan("X", "len(TOKENS(X)) > 3 or len(TOKENS(X)) < 10").max_tokens is None
    with pytest.raises(NotEnforcedError, match="gap"):
        plan("X", "len(TOKENS(X)) < 3 or len(TOKENS(X)) > 10")


def test_stops_inside_or_end_the_value_at_any_of_their_phrases() -> None:
    assert set(plan("X", 'STOPS_AT(X, ".") or STOPS_BEFORE(X, "!")').stops) == {(".", True), ("!", False)}
    # As in LMQL: a stop condition holds for every value, so the `or` does, and only its phrases act.
    p = plan("X", 'len(TOKENS(X)) > 10 or STOPS_AT(X, "review")')
    assert p.stops == (("review", True),) and p.min_tokens == 0
    with pytest.raises(ConstraintError, match="condition of its own"):
        plan("X", 'not STOPS_AT(X, ".")')


def test_a_stop_no_listed_value_contains_is_accepted() -> None:
    p = plan("P", 'STOPS_AT(P, "END") and P in [" A man has", "B"]')
    assert p.finish("B") == "B"
    with pytest.raises(ConstraintError, match="can never end"):  # endless values: surely a mistake
        plan("X", 'INT(X) and STOPS_AT(X, "\\n")')


# ------------------------------------------------------------------------------------------ scoping


def test_generator_expressions_and_lambdas_in_where_see_the_query_names() -> None:
    p = plan("X", "all(ch in ok for ch in X)", env={"ok": "abc"})
    assert p.finish("cab") == "cab"
    with pytest.raises(ConstraintError):
        p.finish("cad")
    assert plan("X", "(lambda v: v.startswith(prefix))(X)", env={"prefix": "a"}).finish("ab") == "ab"
    assert plan("X", "X in [w for w in words if w != skip]", env={"words": ["a", "b"], "skip": "b"}).finish("a") == "a"


def test_a_query_name_shadows_a_constraint_function() -> None:
    p = plan("X", "INT(X)", env={"INT": lambda v: v == "seven"})  # the query's own INT, a predicate
    assert p.automaton is None and p.finish("seven") == "seven"
    assert problems('INT = str.isalpha\n"[X]" where INT(X)') == []



PRELUDE_QUERY = """nl = "\\n"
seen = []
def f(): return 12
argmax
    "Q: {f()} [X]" where STOPS_AT(X, nl)
    seen.append(X)
    return seen, "nl" in locals(), "nl" in globals(), "given" in locals(), "given" in globals()
from
    "smollm2"
"""


def test_the_prelude_of_a_standalone_query_binds_its_globals() -> None:
    # As in LMQL, the Python before the decoder clause is the query's module: its names are globals, the
    # inputs locals; each run has globals of its own, and a where clause sees the prelude's names.
    program = CompiledProgram(parse(PRELUDE_QUERY), ("given",))
    assert program.generated.prelude_globals == {"nl", "seen", "f"}
    assert program.free_names & {"nl", "seen", "f"} == set()
    first, second = program.start({"given": 1}), program.start({"given": 2})
    for execution, value in ((first, "a"), (second, "b")):
        while not isinstance(event := execution.next_event(), HoleEvent):
            execution.resume(None)
        assert event.env["nl"] == "\n"
        execution.resume(value)
    assert first.next_event().value == (["a"], False, True, True, False)
    assert second.next_event().value == (["b"], False, True, True, False)
    # Without a decoder clause after it, Python at the start of a query is the query's own, as before.
    assert finish_value('a = 1\n"[X]"\nreturn "a" in locals()', ["x"])


# ------------------------------------------------------------------------------------------ the checker


def test_argmax_n_from_an_input_is_accepted() -> None:
    assert problems('argmax(n=n)\n"Q: Hi {n}. A: [WHO]" where len(TOKENS(WHO)) < 10') == []
    assert any("argmax gives one result" in m for m in problems('argmax(n=2)\n"[X]"'))


def test_a_query_string_with_an_lmql_marker_line_and_deeper_indentation_compiles() -> None:
    query = lmlang.compile('''lmql
        argmax(n=n)
            "Q: Hi {n}. A: [WHO]"
            assert "n" in locals().keys()
        from
            "smollm2"
        where
            len(TOKENS(WHO)) < 10
        ''')
    assert query.program.decoder is not None and query.program.decoder.name == "argmax"


# ------------------------------------------------------------------------------------------ query text


def text_of(source: str) -> list[str]:
    return [p.text for s in parse(source).body if isinstance(s, ast.QueryStmt) for p in s.string.parts
            if isinstance(p, ast.Text)]


def test_triple_quoted_text_loses_the_body_indentation_as_in_lmql() -> None:
    source = 'argmax\n    """\n    My name is Peter.\n    {{\n        "name": "[NAME]\n    }}\n    """\nfrom "smollm2"\n'
    assert text_of(source) == ['\nMy name is Peter.\n{\n    "name": "', "\n}\n"]
    # A line continued with a backslash too.
    assert text_of('argmax\n    "for your \\\n    next trip"\n') == ["for your next trip"]
    # In the modern form the body is not indented: the text stays as written.
    assert text_of('"""A\n   B"""\n') == ["A\n   B"]


def test_nested_query_docstring_body_indentation_is_stripped() -> None:
    source = ("@lmql.query\ndef inner():\n    \'\'\'lmql\n    argmax\n        \"\"\"Line one\n        line two [X]\"\"\"\n"
              "    \'\'\'\n\"[Y: inner]\"\n")
    inner = next(s for s in parse(source).body if isinstance(s, ast.QueryDef))
    assert inner.query.body[0].string.parts[0].text == "Line one\nline two "



def test_a_query_function_defined_in_a_function_keeps_its_nested_query_docstring() -> None:
    # Its source is indented; dedenting that text would dedent the docstring too, whose lines after a "\n"
    # escape inside a nested query's docstring start at column 0 of the value.
    @lmlang.query
    def packing():
        '''lmql
        @lmql.query
        def items_list(n: int):
            """lmql
            for i in range(n):
                "-[ITEM]\n" where STOPS_AT(ITEM, "\n")
            """

        "To pack:\n[ITEMS: items_list(2)]"
        '''

    body = packing.query.program.body
    assert isinstance(body[0], ast.QueryDef) and isinstance(body[0].query.body[0], ast.For)
    assert [p.text for p in body[1].string.parts if isinstance(p, ast.Text)] == ["To pack:\n"]


# ------------------------------------------------------------------------------------------ return


def test_return_none_is_a_value_and_no_return_is_none_of_them() -> None:
    assert finish_value('"Hi [X]"\nreturn None\nreturn "Something"', ["x"]) is None
    assert finish_value('"Hi [X]"', ["x"]) is NO_RETURN
    source = 'if a > 0:\n    return None\nelif a == 0:\n    return\nelse:\n    return "Something"\nreturn "Never"'
    assert finish_value(source, [], a=1) is None
    assert finish_value(source, [], a=0) is NO_RETURN
    assert finish_value(source, [], a=-1) == "Something"
    # A plain function's bare return is Python's.
    assert finish_value('def f():\n    return\nreturn f()', []) is None


# ------------------------------------------------------------------------------------------ docstrings without source

DOCSTRING_QUERY = '''
import lmlang
@lmlang.query
def capital(country):
    """lmql
    # a comment's "quote
    "Q: capital of {country}?\\nA:[CITY]" where STOPS_BEFORE(CITY, "\\n")
    return CITY
    """
q = capital.query
texts = [p.text for p in q.program.body[0].string.parts if hasattr(p, "text")]
'''


def test_a_docstring_query_with_escapes_compiles_under_exec() -> None:
    namespace: dict = {}
    exec(DOCSTRING_QUERY, namespace)  # noqa: S102 - what the test is about
    assert namespace["texts"] == ["Q: capital of ", "?\nA:"]
    assert namespace["q"].program.body[0].where.source == 'STOPS_BEFORE(CITY, "\\n")'


def test_a_docstring_query_with_escapes_compiles_under_python_c() -> None:
    code = DOCSTRING_QUERY + "print(texts)\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == repr(["Q: capital of ", "?\nA:"])


def test_comprehension_and_lambda_variables_are_not_holes_to_the_checker() -> None:
    assert problems('ok = "abc"\n"[X]" where all(ch in ok for ch in X) and (lambda v: v != "")(X)') == []
