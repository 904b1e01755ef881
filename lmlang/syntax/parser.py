"""From text to :class:`~lmlang.syntax.ast.Program`: Lark's LALR parser on ``grammar/lmlang.lark``, then a pass
that builds the AST with exact spans. The only module that imports lark; its exceptions never leave it.
"""

from __future__ import annotations

import ast as pyast
import functools
import re
import textwrap
import threading
from pathlib import Path
from typing import Iterator

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedInput, UnexpectedToken
from lark.indenter import Indenter

from lmlang.decoding.catalog import DECODERS, LMQL_ONLY
from lmlang.errors import LmlangSyntaxError
from lmlang.source import Source, Span
from lmlang.syntax import ast
from lmlang.syntax.querystring import literal_body, read_query_string

_PACKAGE_GRAMMAR = Path(__file__).resolve().parent.parent / "grammar" / "lmlang.lark"
_REPO_GRAMMAR = Path(__file__).resolve().parent.parent.parent / "grammar" / "lmlang.lark"

# Decorators that turn a function into a nested query whose docstring is the query.
_QUERY_DECORATORS = ("lmql.query", "lmlang.query")


def grammar_path() -> Path:
    """The grammar file: inside the installed package (wheel), else at the root of the source checkout."""
    return _PACKAGE_GRAMMAR if _PACKAGE_GRAMMAR.exists() else _REPO_GRAMMAR


def keywords() -> frozenset[str]:
    """Every keyword of the language: the words the grammar's terminals match."""
    words: set[str] = set()
    for terminal in _lark().terminals:
        pattern = terminal.pattern
        if pattern.type == "str" and re.fullmatch(r"[A-Za-z]\w*", pattern.value):
            words.add(pattern.value)
        elif terminal.name.endswith("_KW"):
            words.add(re.match(r"(?:\(\?i:)?([a-z]+)", pattern.value).group(1))  # the word, not its lookahead
    return frozenset(words)


class _Layout(Indenter):
    """Python's indentation rules, plus: inside a ``where`` constraint a line break next to ``and``/``or``
    continues the constraint; nested queries start at the docstring's indentation; and positions for errors."""

    NL_type = "_NEWLINE"
    OPEN_PAREN_types = ["LPAR", "LSQB", "LBRACE"]
    CLOSE_PAREN_types = ["RPAR", "RSQB", "RBRACE"]
    INDENT_type = "_INDENT"
    DEDENT_type = "_DEDENT"
    tab_len = 8
    base_indent = 0
    text = ""

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        self.paren_level = 0
        self.indent_level = [self.base_indent]
        self.open_brackets: list[Token] = []
        self.newlines: dict[int, int] = {}  # end → start of each line break token, to trim statements' spans
        return self._layout(stream)

    def _layout(self, stream: Iterator[Token]) -> Iterator[Token]:
        previous: Token | None = None
        in_where = False  # inside a where constraint, after its first token
        last: Token | None = None
        for token in stream:
            last = token
            if token.type == self.NL_type:
                if in_where and self._continues_constraint(previous, token):
                    continue
                in_where = in_where and self.paren_level > 0
                if self.paren_level == 0:
                    self.newlines[token.end_pos] = token.start_pos
                yield from self.handle_NL(token)
                continue
            in_where = in_where or (previous is not None and previous.type == "WHERE_KW")
            self._track_brackets(token)
            previous = token
            yield token
        while len(self.indent_level) > 1 and self.indent_level[-1] > self.base_indent:
            self.indent_level.pop()
            yield self._marker(self.DEDENT_type, last)

    def _continues_constraint(self, previous: Token | None, newline: Token) -> bool:
        """A line break next to ``and``/``or`` inside a constraint joins the lines (the next line's start is
        read from the text: the lexer must not run ahead of the parser)."""
        if previous is not None and previous.type in ("AND", "OR"):
            return True
        return re.match(r"(?:and|or)\b", self.text[newline.end_pos : newline.end_pos + 4]) is not None

    def _track_brackets(self, token: Token) -> None:
        if token.type in self.OPEN_PAREN_types:
            self.paren_level += 1
            self.open_brackets.append(token)
        elif token.type in self.CLOSE_PAREN_types and self.paren_level > 0:
            self.paren_level -= 1
            self.open_brackets.pop()

    def handle_NL(self, token: Token) -> Iterator[Token]:
        if self.paren_level > 0:
            return
        yield token
        indent_text = token.rsplit("\n", 1)[-1] if "\n" in token else ""
        indent = indent_text.count(" ") + indent_text.count("\t") * self.tab_len
        if indent < self.base_indent and not self.text[token.end_pos :].strip():
            indent = self.base_indent  # the end of a nested query's docstring
        if indent > self.indent_level[-1]:
            self.indent_level.append(indent)
            yield self._marker(self.INDENT_type, token)
            return
        while indent < self.indent_level[-1]:
            self.indent_level.pop()
            yield self._marker(self.DEDENT_type, token)
        if indent != self.indent_level[-1]:
            raise _LayoutError(token.end_pos, "this line's indentation matches no enclosing block: line it up with the block it belongs to")

    @staticmethod
    def _marker(kind: str, newline: Token | None) -> Token:
        """An indent/dedent token placed at the first character of the line it starts."""
        at = newline.end_pos if newline is not None and newline.end_pos is not None else 0
        line = newline.end_line if newline is not None else 1
        column = newline.end_column if newline is not None else 1
        return Token(kind, "", start_pos=at, line=line, column=column, end_line=line, end_column=column, end_pos=at)


class _LayoutError(Exception):
    def __init__(self, offset: int, message: str) -> None:
        super().__init__(message)
        self.offset = offset
        self.message = message


_layout = _Layout()
_lock = threading.Lock()


@functools.lru_cache(maxsize=1)
def _lark() -> Lark:
    return Lark(
        grammar_path().read_text(encoding="utf-8"),
        parser="lalr",
        postlex=_layout,
        propagate_positions=True,
        maybe_placeholders=True,
        cache=True,
    )


# ---------------------------------------------------------------------------------------------------- entry points


def parse(text: str, name: str = "<query>", line_offset: int = 0) -> ast.Program:
    """Parse a whole query (a ``.lmq``/``.lmql`` file or a string); raises :class:`LmlangSyntaxError`."""
    return parse_source(Source(name, text, line_offset))


def parse_source(source: Source) -> ast.Program:
    tree, newlines = _parse_tree(source, source.text, 0)
    return _Builder(source, newlines).program(tree, 0, len(source.text))


def _parse_tree(source: Source, text: str, base_indent: int) -> tuple[Tree, dict[int, int]]:
    """Lark's tree of ``text`` (``source.text`` with parts blanked out, same offsets) and where its line breaks
    are; errors get spans."""
    lark = _lark()
    with _lock:
        _layout.base_indent = base_indent
        _layout.text = text
        try:
            return lark.parse(text if text.endswith("\n") else text + "\n"), _layout.newlines
        except _LayoutError as error:
            raise LmlangSyntaxError(_point(source, error.offset), error.message) from None
        except UnexpectedInput as error:
            raise _syntax_error(source, text, error) from None


def _point(source: Source, offset: int) -> Span:
    offset = min(offset, len(source.text))
    return source.span(offset, min(offset + 1, len(source.text)))


def _syntax_error(source: Source, text: str, error: UnexpectedInput) -> LmlangSyntaxError:
    limit = len(source.text)
    if isinstance(error, UnexpectedToken):
        token = error.token
        start = min(token.start_pos if token.start_pos is not None else limit, limit)
        end = min(token.end_pos if token.end_pos is not None and token.end_pos > start else start + 1, limit)
        unclosed = _layout.open_brackets[-1] if _layout.open_brackets else None
        if unclosed is not None and (token.type in ("$END", "_NEWLINE", "_DEDENT") or (token.line or 0) > unclosed.line):
            closing = _CLOSING[unclosed.value]
            return LmlangSyntaxError(_point(source, unclosed.start_pos), f"'{unclosed}' is never closed: add the matching '{closing}'")
        message = _describe_unexpected(token, _parser_expected(error), _header_of(text, start))
        return LmlangSyntaxError(source.span(start, end), message)
    start = getattr(error, "pos_in_stream", None) or 0
    if text[max(start - 2, 0) : start + 1] in ('"""', "'''"):
        start -= 2  # the lexer read the first two quotes as an empty string
    quote = re.match(r"[rRbBfFuU]{0,2}('\'\'\'|\"\"\"|'|\")", text[start:])
    if quote:
        return LmlangSyntaxError(_point(source, start), f"unterminated string: add the closing {quote.group(1)}")
    if re.match(r"\\[ \t\f]+\r?\n", text[start:]):
        return LmlangSyntaxError(_point(source, start), "a backslash that continues a line must end it, as in "
                                                        "Python: remove the spaces after it")
    return LmlangSyntaxError(_point(source, start), f"unexpected character {text[start:start + 1]!r}")


_CLOSING = {"(": ")", "[": "]", "{": "}"}

# Statements whose header ends with ':' (to say "after the for header").
_HEADERS = ("if", "elif", "else", "for", "while", "def", "class", "with", "try", "except", "finally", "cascade",
            "route", "case", "ensemble", "async", "match")

# What the parser was waiting for, in words. Literal terminals (`:`, `if`) are quoted as written instead.
_WORDS = {
    "NAME": "a name",
    "IDENT": "a name",
    "STRING": "a string",
    "LONG_STRING": "a string",
    "DEC_NUMBER": "a number",
    "HEX_NUMBER": "a number",
    "OCT_NUMBER": "a number",
    "BIN_NUMBER": "a number",
    "FLOAT_NUMBER": "a number",
    "IMAG_NUMBER": "a number",
    "_NEWLINE": "the end of the line",
    "_INDENT": "an indented block",
    "_DEDENT": "the end of the block",
    "$END": "the end of the file",
    "FROM_KW": "'from'",
    "WHERE_KW": "'where'",
    "DISTRIBUTION_KW": "'distribution'",
    "ASYNC_KW": "'async'",
    "ENSEMBLE_KW": "'ensemble'",
    "CASCADE_KW": "'cascade'",
    "ROUTE_KW": "'route'",
    "ASYNC": "'async'",
    "AWAIT": "'await'",
}

# Terminals that can start an expression: when several are expected, say "an expression".
_EXPRESSION_STARTS = {"NAME", "IDENT", "STRING", "LONG_STRING", "DEC_NUMBER", "FLOAT_NUMBER", "LPAR", "LSQB", "LBRACE",
                      "MINUS", "PLUS", "TILDE", "NOT", "LAMBDA", "AWAIT", "NONE", "TRUE", "FALSE"}
_EXPRESSION_STARTS |= {"STAR", "CASE", "MATCH", "HEX_NUMBER", "OCT_NUMBER", "BIN_NUMBER", "IMAG_NUMBER", "__ANON_ELLIPSIS"}
# The terminals of `name` (the grammar's override, soft keywords included): when just these are expected, say "a name".
_NAME_TERMINALS = {"IDENT", "MATCH", "CASE"}
_OPERATORS = {"+", "-", "*", "/", "//", "%", "@", "**", "&", "|", "^", "<<", ">>", "<", ">", "==", ">=", "<=", "!=",
              "<>", ".", "if", "in", "is", "not", "and", "or", "("}


def _parser_expected(error: UnexpectedToken) -> set[str]:
    """The terminals the parser could take (an error raised by the contextual lexer lists only the lexer's)."""
    interactive = getattr(error, "interactive_parser", None)
    if interactive is None:
        return set(error.expected)
    return {name for name in interactive.choices() if name == "$END" or name.lstrip("_").split("__")[-1].isupper()}


def _describe_unexpected(token: Token, expected: set[str], header_word: str) -> str:
    names = {name.replace("python__", "") for name in expected}
    header = f" after the {header_word} header" if header_word in _HEADERS else ""
    if token.type == "_INDENT":
        return "unexpected indent"
    if token.type in ("WHERE_KW", "DISTRIBUTION_KW") and token.type not in names:
        return f"'{token}' can only follow a query string (a string literal used as a statement)"
    if "_INDENT" in names:
        return f"expected an indented block{header}"
    if "COLON" in names and header and token.type in ("_NEWLINE", "$END"):
        return f"expected ':'{header}"
    return f"expected {_expected_words(names)}, found {_found_words(token)}"


def _expected_words(names: set[str]) -> str:
    if names == _NAME_TERMINALS:
        return "a name"
    literal = _terminal_patterns()
    words: list[str] = []
    if {"DEF", "PASS", "RETURN"} <= names:
        words.append("a statement")
        names = {n for n in names if n not in _EXPRESSION_STARTS and not literal.get(n, "").isalpha()}
    if len(names & _EXPRESSION_STARTS) >= 3:
        words.append("an expression")
        names = {n for n in names - _EXPRESSION_STARTS if literal.get(n) != "..."}
    operators = {n for n in names if n in literal and literal[n] in _OPERATORS}
    if len(operators) >= 3:
        words.append("an operator")
        names = names - operators
    for name in sorted(names, key=lambda n: (n not in literal or literal[n].isalpha(), n)):
        word = _WORDS.get(name) or (f"'{literal[name]}'" if name in literal else None)
        if word and word not in words:
            words.append(word)
    if len(words) > 5:
        words = words[:5] + ["..."]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _found_words(token: Token) -> str:
    kind = token.type.replace("python__", "")
    if kind in ("NAME", "IDENT"):
        return f"the name '{token}'"
    if kind in _WORDS:
        return _WORDS[kind]
    return f"'{token}'"


def _header_of(text: str, offset: int) -> str:
    """The first word of the statement an error at ``offset`` is in: its own line, or the line before when the
    error is at the start of a line (a missing block)."""
    line_start = text.rfind("\n", 0, offset) + 1
    if not text[line_start:offset].strip():
        line_start = text.rfind("\n", 0, max(line_start - 1, 0)) + 1
    match = re.match(r"\s*([A-Za-z_]\w*)", text[line_start:])
    return match.group(1) if match else ""


@functools.lru_cache(maxsize=1)
def _terminal_patterns() -> dict[str, str]:
    """Literal terminals' text by name (``COLON`` → ``:``), to name what was expected."""
    return {t.name.replace("python__", ""): t.pattern.value for t in _lark().terminals if t.pattern.type == "str"}


# ---------------------------------------------------------------------------------------------------- building the AST


class _Builder:
    """Turns Lark's tree into the AST; checks what the grammar leaves open (clause order, decoder shape)."""

    def __init__(self, source: Source, newlines: dict[int, int]) -> None:
        self.source = source
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
        parts = _ProgramParts()
        for item in items:
            self._add_item(parts, item)
        if parts.decoder is None and parts.body:
            parts.decoder = self._modern_decoder(items[0])
            if parts.decoder is not None:
                parts.body = parts.body[1:]
        span = self.source.span(start, end)
        return ast.Program(span, tuple(parts.body), parts.decoder, parts.model, parts.where, parts.distribution)

    def _add_item(self, parts: _ProgramParts, item: Tree) -> None:
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

    def _second_decoder(self, parts: _ProgramParts, item: Tree) -> None:
        """A Python preamble may come before the decoder, but only one decoder."""
        if parts.decoder is None:
            return None
        if item.data == "decoder_block":
            raise self.fail(self.span(item.children[1]).shifted(0, 1), "unexpected indent")
        raise self.fail(self.span(item.children[0]), "a second decoder clause: a query has one decoder, at its start")

    def _add_clause(self, parts: _ProgramParts, item: Tree) -> None:
        parts.clauses_started = True
        keyword = item.children[0]
        what = {"model_clause": "model", "where_clause": "where", "distribution_clause": "distribution"}[item.data]
        if getattr(parts, what) is not None:
            raise self.fail(self.span(keyword), f"a second '{keyword.lower()}' clause: a query has at most one, combine them")
        if what == "distribution":
            setattr(parts, what, self.distribution(item.children))
        else:
            setattr(parts, what, self.expr(item.children[1]))

    def _standalone(self, parts: _ProgramParts, item: Tree) -> None:
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
        base = indent_text.count(" ") + indent_text.count("\t") * _Layout.tab_len
        masked = re.sub(r"[^\n]", " ", self.text[:start]) + self.text[start:end] + "\n"
        tree, newlines = _parse_tree(self.source, masked, base)
        return _Builder(self.source, newlines).program(tree, first, end)

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


class _ProgramParts:
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
    return decorator if pyast.unparse(target) in _QUERY_DECORATORS else None


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
