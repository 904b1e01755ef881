"""The indentation layout: the post-lexer between Lark's lexer and its parser that turns line breaks and
indentation into ``_NEWLINE``/``_INDENT``/``_DEDENT`` tokens, as Python's tokenizer does.

Part of the parser (``lmlang.syntax.parser`` is its only user): one :class:`Layout` is made for each parse, so
parses never share its state and need no lock. What it adds to Python's rules: inside a ``where`` constraint a
line break next to ``and``/``or`` continues the constraint; a nested query's docstring starts its blocks at the
docstring's own indentation; and it records what the parser's error messages and the AST's spans need (the
brackets still open, where each line break starts).
"""

from __future__ import annotations

import re
from typing import Iterator

from lark import Token

# A tab advances to the next multiple of eight columns, as in Python.
TAB_LENGTH = 8

NEWLINE = "_NEWLINE"
INDENT = "_INDENT"
DEDENT = "_DEDENT"
OPENING = ("LPAR", "LSQB", "LBRACE")
CLOSING = ("RPAR", "RSQB", "RBRACE")


def indent_width(indentation: str) -> int:
    """The columns a line's leading blanks take."""
    return indentation.count(" ") + indentation.count("\t") * TAB_LENGTH


class LayoutError(Exception):
    """A line whose indentation matches no enclosing block, at ``offset`` of the text."""

    def __init__(self, offset: int, message: str) -> None:
        super().__init__(message)
        self.offset = offset
        self.message = message


class Layout:
    """The layout of one parse of ``text``, whose blocks start at column ``base_indent``.

    Lark asks its post-lexer which terminals the contextual lexer must always accept; the class answers that,
    so the grammar can be built once while each parse lays out its tokens through an instance of its own."""

    always_accept = (NEWLINE,)

    def __init__(self, text: str, base_indent: int = 0) -> None:
        self.text = text
        self.base_indent = base_indent
        self.paren_level = 0
        self.indent_level = [base_indent]
        self.open_brackets: list[Token] = []  # still open where the parse stopped, for "never closed"
        self.newlines: dict[int, int] = {}  # end → start of each line break token, to trim statements' spans

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        previous: Token | None = None
        in_where = False  # inside a where constraint, after its first token
        last: Token | None = None
        for token in stream:
            last = token
            if token.type == NEWLINE:
                if in_where and self._continues_constraint(previous, token):
                    continue
                in_where = in_where and self.paren_level > 0
                if self.paren_level == 0:
                    self.newlines[token.end_pos] = token.start_pos
                yield from self._line_break(token)
                continue
            in_where = in_where or (previous is not None and previous.type == "WHERE_KW")
            self._track_brackets(token)
            previous = token
            yield token
        while len(self.indent_level) > 1 and self.indent_level[-1] > self.base_indent:
            self.indent_level.pop()
            yield _marker(DEDENT, last)

    def _continues_constraint(self, previous: Token | None, newline: Token) -> bool:
        """A line break next to ``and``/``or`` inside a constraint joins the lines (the next line's start is
        read from the text: the lexer must not run ahead of the parser)."""
        if previous is not None and previous.type in ("AND", "OR"):
            return True
        return re.match(r"(?:and|or)\b", self.text[newline.end_pos : newline.end_pos + 4]) is not None

    def _track_brackets(self, token: Token) -> None:
        if token.type in OPENING:
            self.paren_level += 1
            self.open_brackets.append(token)
        elif token.type in CLOSING and self.paren_level > 0:
            self.paren_level -= 1
            self.open_brackets.pop()

    def _line_break(self, token: Token) -> Iterator[Token]:
        if self.paren_level > 0:
            return
        yield token
        indent = indent_width(token.rsplit("\n", 1)[-1] if "\n" in token else "")
        if indent < self.base_indent and not self.text[token.end_pos :].strip():
            indent = self.base_indent  # the end of a nested query's docstring
        if indent > self.indent_level[-1]:
            self.indent_level.append(indent)
            yield _marker(INDENT, token)
            return
        while indent < self.indent_level[-1]:
            self.indent_level.pop()
            yield _marker(DEDENT, token)
        if indent != self.indent_level[-1]:
            raise LayoutError(token.end_pos, "this line's indentation matches no enclosing block: line it up with "
                                             "the block it belongs to")


def _marker(kind: str, newline: Token | None) -> Token:
    """An indent/dedent token placed at the first character of the line it starts."""
    at = newline.end_pos if newline is not None and newline.end_pos is not None else 0
    line = newline.end_line if newline is not None else 1
    column = newline.end_column if newline is not None else 1
    return Token(kind, "", start_pos=at, line=line, column=column, end_line=line, end_column=column, end_pos=at)
