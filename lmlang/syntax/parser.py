"""From text to :class:`~lmlang.syntax.ast.Program`: Lark's LALR parser on ``grammar/lmlang.lark``, laid out by
:mod:`lmlang.syntax.layout`, then built into the AST by :mod:`lmlang.syntax.builder`. The front door of the
syntax: the only module that runs Lark, whose exceptions never leave it (they become
:class:`LmlangSyntaxError`, worded by :mod:`lmlang.syntax.messages`).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from lark import Lark, Tree
from lark.exceptions import UnexpectedInput, UnexpectedToken
from lark.lexer import LexerThread
from lark.parser_frontends import PostLexConnector

from lmlang.errors import LmlangSyntaxError
from lmlang.source import Source, Span
from lmlang.syntax import ast, messages
from lmlang.syntax.builder import Builder
from lmlang.syntax.layout import Layout, LayoutError

_PACKAGE_GRAMMAR = Path(__file__).resolve().parent.parent / "grammar" / "lmlang.lark"
_REPO_GRAMMAR = Path(__file__).resolve().parent.parent.parent / "grammar" / "lmlang.lark"


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


@functools.lru_cache(maxsize=1)
def _lark() -> Lark:
    """The grammar, built once. The class :class:`Layout` stands as its post-lexer only to tell the contextual
    lexer which terminal it must always accept; each parse lays out its tokens through a Layout of its own."""
    return Lark(
        grammar_path().read_text(encoding="utf-8"),
        parser="lalr",
        postlex=Layout,
        propagate_positions=True,
        maybe_placeholders=True,
        cache=True,
    )


@functools.lru_cache(maxsize=1)
def _terminal_patterns() -> dict[str, str]:
    """Literal terminals' text by name (``COLON`` → ``:``), to name what was expected."""
    return {t.name.replace("python__", ""): t.pattern.value for t in _lark().terminals if t.pattern.type == "str"}


# ---------------------------------------------------------------------------------------------------- entry points


def parse(text: str, name: str = "<query>", line_offset: int = 0) -> ast.Program:
    """Parse a whole query (a ``.lmq``/``.lmql`` file or a string); raises :class:`LmlangSyntaxError`."""
    return parse_source(Source(name, text, line_offset))


def parse_source(source: Source) -> ast.Program:
    def parse_tree(text: str, base_indent: int) -> tuple[Tree, dict[int, int]]:
        return _parse_tree(source, text, base_indent)

    tree, newlines = parse_tree(source.text, 0)
    return Builder(source, newlines, parse_tree).program(tree, 0, len(source.text))


def _parse_tree(source: Source, text: str, base_indent: int) -> tuple[Tree, dict[int, int]]:
    """Lark's tree of ``text`` (``source.text`` with parts blanked out, same offsets) and where its line breaks
    are; errors get spans."""
    frontend = _lark().parser
    layout = Layout(text, base_indent)
    # The grammar's contextual lexer, followed by this parse's own layout.
    lexer = PostLexConnector(frontend.lexer.lexer, layout)
    try:
        tree = frontend.parser.parse(LexerThread.from_text(lexer, text if text.endswith("\n") else text + "\n"),
                                     "start")
    except LayoutError as error:
        raise LmlangSyntaxError(_point(source, error.offset), error.message) from None
    except UnexpectedInput as error:
        raise _syntax_error(source, text, error, layout) from None
    return tree, layout.newlines


def _point(source: Source, offset: int) -> Span:
    offset = min(offset, len(source.text))
    return source.span(offset, min(offset + 1, len(source.text)))


def _syntax_error(source: Source, text: str, error: UnexpectedInput, layout: Layout) -> LmlangSyntaxError:
    limit = len(source.text)
    if isinstance(error, UnexpectedToken):
        token = error.token
        start = min(token.start_pos if token.start_pos is not None else limit, limit)
        end = min(token.end_pos if token.end_pos is not None and token.end_pos > start else start + 1, limit)
        unclosed = layout.open_brackets[-1] if layout.open_brackets else None
        if unclosed is not None and (token.type in ("$END", "_NEWLINE", "_DEDENT") or (token.line or 0) > unclosed.line):
            return LmlangSyntaxError(_point(source, unclosed.start_pos), messages.never_closed(str(unclosed)))
        message = messages.unexpected(token.type, str(token), _parser_expected(error),
                                      messages.header_of(text, start), _terminal_patterns())
        return LmlangSyntaxError(source.span(start, end), message)
    at, message = messages.unreadable(text, getattr(error, "pos_in_stream", None) or 0)
    return LmlangSyntaxError(_point(source, at), message)


def _parser_expected(error: UnexpectedToken) -> set[str]:
    """The terminals the parser could take (an error raised by the contextual lexer lists only the lexer's)."""
    interactive = getattr(error, "interactive_parser", None)
    if interactive is None:
        return set(error.expected)
    return {name for name in interactive.choices() if name == "$END" or name.lstrip("_").split("__")[-1].isupper()}
