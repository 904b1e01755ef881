"""The AST building pass: Lark's parse tree of a query turned into :class:`~lmlang.syntax.ast.Program` with exact
spans, checking what the grammar leaves open (the order of clauses, the shape of a decoder clause).

Part of the parser: ``lmlang.syntax.parser`` hands it the tree of one parse, and a way to parse the docstring of
a nested query function, which it builds in turn.
"""

from __future__ import annotations

import ast as pyast
import re
import textwrap
from typing import Callable

from lark import Token, Tree

from lmlang.decoding.catalog import DECODERS, LMQL_ONLY
from lmlang.errors import LmlangSyntaxError
from lmlang.source import Source, Span
from lmlang.syntax import ast
from lmlang.syntax.layout import indent_width
from lmlang.syntax.querystring import literal_body, read_query_string

# Decorators that turn a function into a nested query whose docstring is the query.
QUERY_DECORATORS = ("lmql.query", "lmlang.query")

# Lark's tree of a text (the source's text with parts blanked out, same offsets) whose blocks start at a given
# column, and where its line breaks start by where they end.
ParseTree = Callable[[str, int], tuple[Tree, dict[int, int]]]


class Builder:
    """Turns Lark's tree into the AST; checks what the grammar leaves open (clause order, decoder shape)."""

    def __init__(self, source: Source, newlines: dict[int, int], parse_tree: ParseTree) -> None:
        self.source = source
        self.parse_tree = parse_tree
        self.text = source.text
        self.newlines = newlines
        self.python_only = 0  # > 0 inside a plain function: strings there are Python, not prompts
        self.body_indent = 0  # the indentation of the query's body, which its strings' later lines lose

    # -------------------------------------------------------------------------------------------- positions

    def span(self, node: Tree | Token) -> Span:
        return self.source.span(_start(node), self.end(node))

    def end(self, node: Tree | Token) -> int:
        """Where ``node``'s text ends, without the line break, comment and indentation its tree may cover."""
        if isinstance(node, Token):
            return node.end_pos
        end = node.meta.end_pos
        while end in self.newlines:
            end = self.newlines[end]
        while end > 0 and self.text[end - 1] in " \t\f":
            end -= 1
        return end

    def expr(self, node: Tree | Token) -> ast.Expr:
        span = self.span(node)
        return ast.Expr(span, span.text)

    def fail(self, span: Span, message: str) -> LmlangSyntaxError:
        return LmlangSyntaxError(span, message)

    # -------------------------------------------------------------------------------------------- programs

    def program(self, tree: Tree, start: int, end: int) -> ast.Program:
        self.body_indent = self._column(start)
        items = [c for c in tree.children if isinstance(c, Tree)]
        parts = ProgramParts()
        for item in items:
            self._add_item(parts, item)
        if parts.decoder is None and parts.body:
            parts.decoder = self._modern_decoder(items[0])
            if parts.decoder is not None:
                parts.body = parts.body[1:]
        span = self.source.span(start, end)
        return ast.Program(span, tuple(parts.body), parts.decoder, parts.model, parts.where, parts.distribution)

    def _add_item(self, parts: ProgramParts, item: Tree) -> None:
        kind = item.data
        if kind in ("model_clause", "where_clause", "distribution_clause"):
            self._add_clause(parts, item)
            return
        if parts.clauses_started:
            raise self.fail(self.span(item), "statements come before the from/where/distribution clauses: move this statement up")
        if kind == "decoder_block":
            parts.decoder = self._second_decoder(parts, item) or self.decoder(item.children[0], mis_indent=item.children[1])
            first = next((c for c in item.children[1:] if isinstance(c, Tree)), None)
            outer, self.body_indent = self.body_indent, self._column(_start(first)) if first is not None else 0
            try:
                parts.body.extend(self.statements(item.children[1:]))
            finally:
                self.body_indent = outer
        elif kind == "standalone":
            self._second_decoder(parts, item)
            self._standalone(parts, item)
        else:
            parts.body.extend(self.statement(item))

    def _second_decoder(self, parts: ProgramParts, item: Tree) -> None:
        """A Python preamble may come before the decoder, but only one decoder."""
        if parts.decoder is None:
            return None
        if item.data == "decoder_block":
            raise self.fail(self.span(item.children[1]).shifted(0, 1), "unexpected indent")
        raise self.fail(self.span(item.children[0]), "a second decoder clause: a query has one decoder, at its start")

    def _add_clause(self, parts: ProgramParts, item: Tree) -> None:
        parts.clauses_started = True
        keyword = item.children[0]
        what = {"model_clause": "model", "where_clause": "where", "distribution_clause": "distribution"}[item.data]
        if getattr(parts, what) is not None:
            raise self.fail(self.span(keyword), f"a second '{keyword.lower()}' clause: a query has at most one, combine them")
        if what == "distribution":
            setattr(parts, what, self.distribution(item.children))
        else:
            setattr(parts, what, self.expr(item.children[1]))

    def _standalone(self, parts: ProgramParts, item: Tree) -> None:
        head, *strings, model, where, distribution = item.children
        parts.decoder = self.decoder(head, mis_indent=None)
        query = self.query_string([s.children[0] for s in strings])
        parts.body.append(ast.QueryStmt(query.span, query))
        parts.model = self.expr(model.children[1]) if model is not None else None
        parts.where = self.expr(where.children[1]) if where is not None else None
        parts.distribution = self.distribution(distribution.children) if distribution is not None else None

    def decoder(self, head: Tree, mis_indent: Tree | None) -> ast.DecoderClause:
        expr = self.expr(head) if head.data != "expr_stmt" else self.expr(head.children[0])
        call = _decoder_shape(expr)
        if call is None or (head.data == "expr_stmt" and any(c is not None for c in head.children[1:])):
            if mis_indent is not None:
                raise self.fail(self.span(mis_indent).shifted(0, 1), "unexpected indent")
            raise self.fail(expr.span, "expected a decoder like argmax or sample(temperature=0.8) before the query")
        name, node = call
        if mis_indent is not None and name.lower() not in DECODERS and isinstance(node, pyast.Call) and node.args:
            raise self.fail(self.span(mis_indent).shifted(0, 1), "unexpected indent")
        arguments = []
        for keyword in node.keywords if isinstance(node, pyast.Call) else ():
            if keyword.arg is None:
                raise self.fail(expr.span_of(keyword), "decoder arguments are written name=value, as in sample(temperature=0.8)")
            value_span = expr.span_of(keyword.value)
            arguments.append(ast.Argument(expr.span_of(keyword), keyword.arg, ast.Expr(value_span, value_span.text)))
        if isinstance(node, pyast.Call) and node.args:
            raise self.fail(expr.span_of(node.args[0]), "decoder arguments are written name=value, as in sample(temperature=0.8)")
        return ast.DecoderClause(expr.span, name.lower(), tuple(arguments))

    def _modern_decoder(self, first: Tree) -> ast.DecoderClause | None:
        """``sample(temperature=0.8)`` alone on the first line, followed by statements at the same indentation."""
        if first.data != "simple_stmt" or len(first.children) != 1:
            return None
        statement = first.children[0]
        if statement.data != "expr_stmt" or any(c is not None for c in statement.children[1:]):
            return None
        if not isinstance(statement.children[0], Tree) or statement.children[0].data not in ("python__var", "python__funccall"):
            return None
        shape = _decoder_shape(self.expr(statement.children[0]))
        if shape is None or (shape[0].lower() not in DECODERS and shape[0].lower() not in LMQL_ONLY):
            return None
        return self.decoder(statement, mis_indent=None)

    def distribution(self, children: list) -> ast.Distribution:
        keyword, variable, values = children
        variable_span = self.span(variable)
        return ast.Distribution(self.span(keyword).to(self.span(values)), variable_span.text, variable_span, self.expr(values))

    # -------------------------------------------------------------------------------------------- statements

    def statements(self, nodes: list) -> list[ast.Stmt]:
        result: list[ast.Stmt] = []
        for node in nodes:
            if isinstance(node, Tree):
                result.extend(self.statement(node))
        return result

    def block(self, tree: Tree) -> tuple[ast.Stmt, ...]:
        return tuple(self.statements(tree.children))

    def statement(self, tree: Tree) -> list[ast.Stmt]:
        kind = tree.data
        if kind == "simple_stmt":
            return [self.small_statement(child) for child in tree.children if isinstance(child, Tree)]
        if kind == "model_clause":
            raise self.fail(self.span(tree), "a 'from' model clause belongs at the end of the query, after its body")
        if kind == "import_from":
            return [self.python_statement(tree, "import")]
        handler = getattr(self, f"_{kind}", None)
        if handler is None:
            return [self.python_statement(tree, kind.replace("python__", "").replace("_stmt", "").replace("def", ""))]
        return [handler(tree)]

    def small_statement(self, tree: Tree) -> ast.Stmt:
        kind = tree.data
        if kind == "expr_stmt":
            return self.expression_statement(tree)
        if kind == "return_stmt":
            value = tree.children[0]
            return ast.Return(self.span(tree), self.expr(value) if value is not None else None)
        names = {"assign_stmt": "assign", "import_name": "import", "yield_stmt": "yield"}
        return self.python_statement(tree, names.get(kind, kind.replace("_stmt", "")))

    def python_statement(self, tree: Tree, kind: str) -> ast.PyStmt:
        span = self.span(tree)
        try:
            # later lines keep the file's indentation: indent the first line to match, then dedent
            pyast.parse(textwrap.dedent(" " * (span.column - 1) + span.text))
        except SyntaxError as error:
            raise self.fail(_python_error_span(span, error), f"not valid Python: {error.msg}") from None
        return ast.PyStmt(span, kind, span.text)

    def expression_statement(self, tree: Tree) -> ast.Stmt:
        value, where, distribution = tree.children
        strings = _string_tokens(value)
        if strings is None or self.python_only:
            if where is not None or distribution is not None:
                clause = where if where is not None else distribution
                reason = "a query string" if strings is None else "a query string in a query, not in a plain Python function"
                raise self.fail(self.span(clause.children[0]), f"'{clause.children[0].lower()}' can only follow {reason}")
            return self.python_statement(tree, "expr")
        query = self.query_string(strings)
        constraint = self.expr(where.children[1]) if where is not None else None
        dist = self.distribution(distribution.children) if distribution is not None else None
        return ast.QueryStmt(self.span(tree), query, constraint, dist)

    def query_string(self, strings: list[Token]) -> ast.QueryString:
        return read_query_string(self.source, [(s.start_pos, s.end_pos) for s in strings], self.body_indent)

    def _column(self, offset: int) -> int:
        """The indentation of the line ``offset`` stands on, if only blanks come before it there."""
        line_start = self.text.rfind("\n", 0, offset) + 1
        lead = self.text[line_start:offset]
        return len(lead) if not lead.strip() else len(lead) - len(lead.lstrip())

    # -------------------------------------------------------------------------------------------- compound statements

    def _if_stmt(self, tree: Tree) -> ast.If:
        test, body, *rest = tree.children
        branches = [(self.expr(test), self.block(body))]
        orelse: tuple[ast.Stmt, ...] = ()
        for clause in rest:
            if clause is None:
                continue
            if clause.data == "elif_clause":
                branches.append((self.expr(clause.children[0]), self.block(clause.children[1])))
            else:
                orelse = self.block(clause.children[0])
        return ast.If(self.span(tree), tuple(branches), orelse)

    def _while_stmt(self, tree: Tree) -> ast.While:
        test, body, orelse = tree.children
        return ast.While(self.span(tree), self.expr(test), self.block(body), self._else(orelse))

    def _for_stmt(self, tree: Tree, is_async: bool = False, start: int | None = None) -> ast.For:
        target, iterable, body, orelse = tree.children
        span = self.span(tree) if start is None else self.source.span(start, self.end(tree))
        return ast.For(span, self.expr(target), self.expr(iterable), self.block(body), self._else(orelse), is_async)

    def _else(self, clause: Tree | None) -> tuple[ast.Stmt, ...]:
        return self.block(clause.children[0]) if clause is not None else ()

    def _async_stmt(self, tree: Tree) -> ast.Stmt:
        inner = tree.children[1]
        start = _start(tree)
        if inner.data == "for_stmt":
            return self._for_stmt(inner, is_async=True, start=start)
        if inner.data == "funcdef":
            return self._funcdef(inner, decorators=(), is_async=True, start=start)
        return self.python_statement(tree, "with")

    def _decorated(self, tree: Tree) -> ast.Stmt:
        *decorators, definition = tree.children
        exprs = tuple(self.expr(d.children[0]) for d in decorators)
        start = _start(tree)
        if definition.data == "async_stmt" and definition.children[1].data == "funcdef":
            return self._funcdef(definition.children[1], exprs, is_async=True, start=start)
        if definition.data == "funcdef":
            return self._funcdef(definition, exprs, is_async=False, start=start)
        return self.python_statement(tree, "class" if definition.data == "classdef" else "with")

    def _funcdef(self, tree: Tree, decorators: tuple[ast.Expr, ...] = (), is_async: bool = False,
                 start: int | None = None) -> ast.FunctionDef | ast.QueryDef:
        name, parameters, returns, body = tree.children
        span = self.source.span(_start(tree) if start is None else start, self.end(tree))
        params = self.span(parameters).text if parameters is not None else ""
        query_decorator = next((d for d in decorators if _query_decorator(d) is not None), None)
        if query_decorator is not None:
            return self._query_def(span, str(self.span(name).text), params, body, decorators, query_decorator, is_async)
        self.python_only += 1
        try:
            statements = self.block(body)
        finally:
            self.python_only -= 1
        returns_expr = self.expr(returns) if returns is not None else None
        return ast.FunctionDef(span, self.span(name).text, params, statements, decorators, is_async, returns_expr)

    def _query_def(self, span: Span, name: str, params: str, body: Tree, decorators: tuple[ast.Expr, ...],
                   query_decorator: ast.Expr, is_async: bool) -> ast.QueryDef:
        docstring = _docstring(body)
        if docstring is None:
            raise self.fail(span, f"the body of query function '{name}' must be its query, as a docstring '''lmql ...'''")
        return ast.QueryDef(
            span,
            name,
            params,
            _parameter_names(params),
            self._nested_program(docstring),
            decorators,
            self._decorator_options(query_decorator),
            is_async,
        )

    def _nested_program(self, docstring: Token) -> ast.Program:
        start, end, _ = literal_body(self.source, docstring.start_pos, docstring.end_pos)
        marker = re.match(r"[ \t]*lmql[ \t]*(?=\r?\n|$)", self.text[start:end])
        if marker:
            start += marker.end()
        while end > start and self.text[end - 1].isspace():
            end -= 1
        first = re.compile(r"\s*").match(self.text, start).end()
        line_start = self.text.rfind("\n", 0, first) + 1
        indent_text = self.text[line_start:first]
        masked = re.sub(r"[^\n]", " ", self.text[:start]) + self.text[start:end] + "\n"
        tree, newlines = self.parse_tree(masked, indent_width(indent_text))
        return Builder(self.source, newlines, self.parse_tree).program(tree, first, end)

    def _decorator_options(self, decorator: ast.Expr) -> tuple[ast.Argument, ...]:
        node = decorator.python().body
        if not isinstance(node, pyast.Call):
            return ()
        if node.args:
            raise self.fail(decorator.span_of(node.args[0]), "options of a query function are written name=value, as in @lmql.query(decoder=\"sample\")")
        options = []
        for keyword in node.keywords:
            value_span = decorator.span_of(keyword.value)
            options.append(ast.Argument(decorator.span_of(keyword), keyword.arg, ast.Expr(value_span, value_span.text)))
        return tuple(options)

    def _cascade_stmt(self, tree: Tree) -> ast.Cascade:
        _, *models, condition, body = tree.children
        return ast.Cascade(self.span(tree), tuple(self.expr(m) for m in models),
                           self.expr(condition) if condition is not None else None, self.block(body))

    def _route_stmt(self, tree: Tree) -> ast.Route:
        _, *parts = tree.children
        header = [c for c in parts if c is not None and not (isinstance(c, Tree) and c.data == "route_arm")]
        arms = [c for c in parts if isinstance(c, Tree) and c.data == "route_arm"]
        return ast.Route(
            self.span(tree),
            tuple(self._argument(a) for a in header),
            tuple((self.expr(arm.children[0]), self.block(arm.children[1])) for arm in arms),
        )

    def _ensemble_stmt(self, tree: Tree) -> ast.Ensemble:
        _, *models, var, options, body = tree.children
        var_span = self.span(var)
        return ast.Ensemble(self.span(tree), tuple(self.expr(m) for m in models), var_span.text, var_span,
                            tuple(self._argument(o) for o in options.children), self.block(body))

    def _argument(self, node: Tree | Token) -> ast.Argument:
        if isinstance(node, Tree) and node.data in ("argvalue", "ensemble_option"):
            name, value = node.children
            return ast.Argument(self.span(node), self.span(name).text, self.expr(value))
        return ast.Argument(self.span(node), None, self.expr(node))


class ProgramParts:
    def __init__(self) -> None:
        self.body: list[ast.Stmt] = []
        self.decoder: ast.DecoderClause | None = None
        self.model: ast.Expr | None = None
        self.where: ast.Expr | None = None
        self.distribution: ast.Distribution | None = None
        self.clauses_started = False


# ---------------------------------------------------------------------------------------------------- tree helpers


def _start(node: Tree | Token) -> int:
    return node.start_pos if isinstance(node, Token) else node.meta.start_pos


def _string_tokens(node: Tree | Token) -> list[Token] | None:
    """The string literal tokens if ``node`` is only string literals (a query string), else None."""
    if isinstance(node, Tree) and node.data == "string":
        return [node.children[0]]
    if isinstance(node, Tree) and node.data == "python__string_concat":
        tokens = [_string_tokens(child) for child in node.children]
        if all(t is not None for t in tokens):
            return [token for group in tokens for token in group]
    return None


def _docstring(body: Tree) -> Token | None:
    statements = [c for c in body.children if isinstance(c, Tree)]
    first = statements[0] if statements else None
    if first is None or first.data != "simple_stmt" or len(statements) > 1 or len(first.children) != 1:
        return None
    statement = first.children[0]
    if statement.data != "expr_stmt" or any(c is not None for c in statement.children[1:]):
        return None
    strings = _string_tokens(statement.children[0])
    return strings[0] if strings is not None and len(strings) == 1 else None


def _decoder_shape(expr: ast.Expr) -> tuple[str, pyast.expr] | None:
    """``(name, node)`` if ``expr`` is a bare name or a call of one, as a decoder clause is."""
    try:
        node = expr.python().body
    except SyntaxError:
        return None
    callee = node.func if isinstance(node, pyast.Call) else node
    return (callee.id, node) if isinstance(callee, pyast.Name) else None


def _query_decorator(decorator: ast.Expr) -> ast.Expr | None:
    node = decorator.python().body
    target = node.func if isinstance(node, pyast.Call) else node
    return decorator if pyast.unparse(target) in QUERY_DECORATORS else None


def _parameter_names(params: str) -> tuple[str, ...]:
    arguments = pyast.parse(f"def _({params}): pass").body[0].args  # type: ignore[attr-defined]
    names = [a.arg for a in arguments.posonlyargs + arguments.args]
    names += [arguments.vararg.arg] if arguments.vararg else []
    names += [a.arg for a in arguments.kwonlyargs]
    names += [arguments.kwarg.arg] if arguments.kwarg else []
    return tuple(names)


def _python_error_span(span: Span, error: SyntaxError) -> Span:
    lines = span.text.split("\n")
    line = min(max((error.lineno or 1) - 1, 0), len(lines) - 1)
    offset = sum(len(l) + 1 for l in lines[:line]) + max((error.offset or 1) - 1, 0)
    return span.shifted(min(offset, len(span.text) - 1), 1)

