"""The abstract syntax of lmlang: frozen dataclasses, each with the span it was read from.

Python code inside a query (expressions, simple statements) is kept as its source text together with its span:
Python itself compiles and runs it, so its semantics are exactly Python's, and ``Expr.python()`` gives Python's
own ``ast`` for analysis (the checker, the constraint compiler). lmlang's own constructs (query strings, holes,
clauses, nested queries, multi-model blocks) are nodes of their own.
"""

from __future__ import annotations

import ast as pyast
from dataclasses import dataclass
from typing import Union

from lmlang.source import Span


@dataclass(frozen=True)
class Node:
    span: Span


# ---------------------------------------------------------------------------------------------------- expressions


@dataclass(frozen=True)
class Expr(Node):
    """A Python expression, as written (``source`` is exactly ``span.text`` with line continuations kept)."""

    source: str

    def python(self) -> pyast.expression:
        """Python's AST of this expression (``mode="eval"``); positions are relative to ``source``."""
        return pyast.parse(self.source.strip() if "\n" not in self.source else f"({self.source})", mode="eval")

    def span_of(self, node: pyast.AST) -> Span:
        """The span in the file of a node of ``self.python()``."""
        wrapped = "\n" in self.source
        text = self.source.strip() if not wrapped else f"({self.source})"
        lead = 0 if wrapped else len(self.source) - len(self.source.lstrip())
        lines = text.split("\n")

        def offset(line: int, col: int) -> int:
            return sum(len(l) + 1 for l in lines[: line - 1]) + col

        start = offset(node.lineno, node.col_offset)  # type: ignore[attr-defined]
        end = offset(node.end_lineno or node.lineno, node.end_col_offset or node.col_offset)  # type: ignore[attr-defined]
        shift = self.span.start + lead - (1 if wrapped else 0)
        return Span(self.span.source, shift + start, shift + end)


@dataclass(frozen=True)
class Argument(Node):
    """``name=value`` or a positional ``value`` in a decoder clause or decorator."""

    name: str | None
    value: Expr


# ---------------------------------------------------------------------------------------------------- query strings


@dataclass(frozen=True)
class Text(Node):
    """Literal prompt text, with escapes (``[[``, ``]]``, ``{{``, ``}}`` and Python's own) already resolved."""

    text: str


@dataclass(frozen=True)
class Interpolation(Node):
    """``{expr}``: the value of a Python expression, formatted with ``str``."""

    expr: Expr


@dataclass(frozen=True)
class RoleTag(Node):
    """``{:system}``, ``{:user}``, ``{:assistant}``: what follows is that role's message (model's chat template)."""

    role: str


@dataclass(frozen=True)
class HoleType(Node):
    """The type annotation of a hole: ``int``, ``float``, a regex ``r"..."``, or a nested query call."""

    kind: str  # "int" | "float" | "regex" | "query"
    pattern: str | None = None  # for kind == "regex": the regex, string escapes resolved
    call: Expr | None = None  # for kind == "query": the call expression, e.g. ``nested(x, 3)``


@dataclass(frozen=True)
class Hole(Node):
    """``[NAME]``, ``[NAME: type]``, ``[@fn NAME]``: a place the model writes, bound to the variable ``name``."""

    name: str
    name_span: Span
    type: HoleType | None = None
    decorators: tuple[Expr, ...] = ()


Part = Union[Text, Interpolation, RoleTag, Hole]


@dataclass(frozen=True)
class QueryString(Node):
    """A query string: the prompt text it adds, in order. ``raw`` tells whether it had the ``r`` prefix."""

    parts: tuple[Part, ...]
    raw: bool = False

    @property
    def holes(self) -> tuple[Hole, ...]:
        return tuple(p for p in self.parts if isinstance(p, Hole))


# ---------------------------------------------------------------------------------------------------- clauses


@dataclass(frozen=True)
class DecoderClause(Node):
    """``argmax``, ``sample(n=3, temperature=0.8)``, ``beam(n=2)``…"""

    name: str
    args: tuple[Argument, ...] = ()


@dataclass(frozen=True)
class Distribution(Node):
    """``distribution VAR in <expr>``: the hole ``VAR`` is scored over the candidates, not generated."""

    var: str
    var_span: Span
    values: Expr


# ---------------------------------------------------------------------------------------------------- statements


@dataclass(frozen=True)
class QueryStmt(Node):
    """A query string used as a statement, with its optional inline ``where`` and ``distribution``."""

    string: QueryString
    where: Expr | None = None
    distribution: Distribution | None = None


@dataclass(frozen=True)
class PyStmt(Node):
    """A simple Python statement (assignment, expression, import, pass, break, continue, assert, del, global,
    nonlocal, raise), run by Python as written. ``kind`` names it for tools: "assign", "expr", "import", ..."""

    kind: str
    source: str


@dataclass(frozen=True)
class Return(Node):
    value: Expr | None = None


@dataclass(frozen=True)
class If(Node):
    """``if``/``elif``/``else``: ``branches`` are the (test, body) pairs in order."""

    branches: tuple[tuple[Expr, tuple[Stmt, ...]], ...]
    orelse: tuple[Stmt, ...] = ()


@dataclass(frozen=True)
class For(Node):
    target: Expr  # the loop target as written, e.g. ``i`` or ``k, v``
    iter: Expr
    body: tuple[Stmt, ...]
    orelse: tuple[Stmt, ...] = ()
    is_async: bool = False


@dataclass(frozen=True)
class While(Node):
    test: Expr
    body: tuple[Stmt, ...]
    orelse: tuple[Stmt, ...] = ()


@dataclass(frozen=True)
class FunctionDef(Node):
    """A plain Python function. Its body is Python: query strings inside it are ordinary string statements."""

    name: str
    params: str  # the parameter list as written, without parentheses: ``a, b=2, *args``
    body: tuple[Stmt, ...]
    decorators: tuple[Expr, ...] = ()
    is_async: bool = False
    returns: Expr | None = None


@dataclass(frozen=True)
class QueryDef(Node):
    """A nested query: a function decorated with ``@lmlang.query``/``@lmql.query`` whose docstring is a query.

    ``options`` are the decorator's arguments (``decoder=``, ``model=``, ...); ``query`` is the docstring parsed.
    """

    name: str
    params: str
    param_names: tuple[str, ...]
    query: Program
    decorators: tuple[Expr, ...] = ()
    options: tuple[Argument, ...] = ()
    is_async: bool = False


@dataclass(frozen=True)
class Cascade(Node):
    """``cascade "m1", "m2" until <condition>:`` block (run by the multi-model runtime)."""

    models: tuple[Expr, ...]
    condition: Expr | None
    body: tuple[Stmt, ...]


@dataclass(frozen=True)
class Route(Node):
    """``route ...:`` block (run by the multi-model runtime). ``arms`` are (selector, body) pairs."""

    header: tuple[Argument, ...]
    arms: tuple[tuple[Expr, tuple[Stmt, ...]], ...]


@dataclass(frozen=True)
class Ensemble(Node):
    """``ensemble "m1", "m2" vote VAR, samples=k, temperature=t:`` block (run by the multi-model runtime).

    ``var`` is the hole voted on; ``options`` are the ``name=value`` options after it, as written.
    """

    models: tuple[Expr, ...]
    var: str
    var_span: Span
    options: tuple[Argument, ...]
    body: tuple[Stmt, ...]


MultiModelBlock = Union[Cascade, Route, Ensemble]  # run by lmlang.multimodel, not by the decoder alone
Stmt = Union[QueryStmt, PyStmt, Return, If, For, While, FunctionDef, QueryDef, MultiModelBlock]


@dataclass(frozen=True)
class Program(Node):
    """A whole query (a file, or a nested query's docstring).

    ``body`` holds every statement in order, Python preamble included. ``where`` and ``distribution`` are the
    clause-level forms (standalone LMQL syntax); statements may also carry their own inline ones.
    """

    body: tuple[Stmt, ...]
    decoder: DecoderClause | None = None
    model: Expr | None = None
    where: Expr | None = None
    distribution: Distribution | None = None


def walk(stmts: tuple[Stmt, ...]):
    """Every statement in ``stmts`` and in their nested bodies, depth first, nested queries excluded."""
    for stmt in stmts:
        yield stmt
        if isinstance(stmt, If):
            for _, body in stmt.branches:
                yield from walk(body)
            yield from walk(stmt.orelse)
        elif isinstance(stmt, (For, While)):
            yield from walk(stmt.body)
            yield from walk(stmt.orelse)
        elif isinstance(stmt, FunctionDef):
            yield from walk(stmt.body)
        elif isinstance(stmt, (Cascade, Ensemble)):
            yield from walk(stmt.body)
        elif isinstance(stmt, Route):
            for _, body in stmt.arms:
                yield from walk(body)


def holes(program: Program) -> tuple[Hole, ...]:
    """Every hole of the program's own query strings, in source order."""
    return tuple(h for s in walk(program.body) if isinstance(s, QueryStmt) for h in s.string.holes)
