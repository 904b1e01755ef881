"""The inside of a query string: prompt text, holes ``[VAR: type]``, interpolations ``{expr}`` and role tags.

The grammar only finds where a string literal is; this module reads its characters, so that every part keeps
the exact span of the characters it came from.

Escapes: ``[[``, ``]]``, ``{{`` and ``}}`` stand for one bracket or brace, and Python's string escapes (``\\n``,
``\\"``, ``\\x41``...) are resolved unless the string is raw. As in LMQL, ``[`` always opens a hole: a ``[``
that is not followed by a variable name (``[1, 2]``) is an error that says to write ``[[``, rather than text
that would silently change meaning when someone later writes ``[x]``.
"""

from __future__ import annotations

import ast as pyast
import re
from typing import Sequence

from lmlang.errors import LmlangSyntaxError
from lmlang.source import Source, Span
from lmlang.syntax.ast import Expr, Hole, HoleType, Interpolation, Part, QueryString, RoleTag, Text

ROLES = ("system", "user", "assistant")

_PREFIX = re.compile(r"[rRbBfFuU]*")
_NAME = re.compile(r"[^\W\d]\w*")
_DOTTED = re.compile(r"[^\W\d]\w*(?:\s*\.\s*[^\W\d]\w*)*")
_ESCAPE = re.compile(
    r"\\(?:\r?\n|[\\'\"abfnrtv]|[0-7]{1,3}|x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|N\{[^}\n]*\})"
)
_MALFORMED_ESCAPE = re.compile(r"\\[xuUN]")
_CLOSERS = {"(": ")", "[": "]", "{": "}"}


def read_query_string(source: Source, tokens: Sequence[tuple[int, int]], indent: int = 0) -> QueryString:
    """The query string made of the string literals at ``(start, end)`` offsets (adjacent literals concatenate).

    ``indent``: the indentation of the query's body, which each line a literal continues on loses (up to that
    many blanks), as LMQL strips the common indentation of a query's body, the text of its strings included."""
    parts: list[Part] = []
    raw = False
    for start, end in tokens:
        literal = _Literal(source, start, end, indent)
        raw = raw or literal.raw
        parts.extend(literal.parts())
    return QueryString(source.span(tokens[0][0], tokens[-1][1]), tuple(parts), raw)


def literal_body(source: Source, start: int, end: int) -> tuple[int, int, bool]:
    """Where the characters between the quotes of the literal at ``[start, end)`` are, and whether it is raw."""
    text = source.text
    prefix = _PREFIX.match(text, start).group()
    if "b" in prefix.lower():
        raise LmlangSyntaxError(source.span(start, end), "a query string cannot be a bytes literal: remove the b prefix")
    quote_at = start + len(prefix)
    quote = text[quote_at : quote_at + 3] if text[quote_at : quote_at + 3] in ('"""', "'''") else text[quote_at]
    return quote_at + len(quote), end - len(quote), "r" in prefix.lower()


class _Literal:
    """One string literal being read, left to right."""

    def __init__(self, source: Source, start: int, end: int, indent: int = 0) -> None:
        self.source = source
        self.indent = indent
        self.text = source.text
        self.pos, self.end, self.raw = literal_body(source, start, end)
        self.out: list[Part] = []
        self.pending: list[str] = []
        self.pending_start = self.pos

    def parts(self) -> list[Part]:
        while self.pos < self.end:
            self._step()
        self._flush()
        return self.out

    def _step(self) -> None:
        text, pos = self.text, self.pos
        char = text[pos]
        pair = text[pos : pos + 2] if pos + 1 < self.end else char
        if char == "\\":
            self._escape()
        elif pair in ("[[", "]]", "{{", "}}"):
            self._add_text(char, 2)
        elif char == "[":
            self._hole()
        elif char == "{" and pair == "{:":
            self._role()
        elif char == "{":
            self._interpolation()
        elif char in "]}":
            double = char * 2
            self._fail(pos, pos + 1, f"a single '{char}' in a query string: write {double} for a literal '{char}'")
        else:
            self._add_text(char, 1)
            if char == "\n":
                self._skip_indent()

    # ------------------------------------------------------------------------------------------------ text

    def _skip_indent(self) -> None:
        """Past the body's indentation at the start of a line the literal continues on."""
        limit = min(self.pos + self.indent, self.end)
        while self.pos < limit and self.text[self.pos] in " \t":
            self.pos += 1

    def _add_text(self, resolved: str, width: int) -> None:
        if not self.pending:
            self.pending_start = self.pos
        self.pending.append(resolved)
        self.pos += width

    def _flush(self) -> None:
        if self.pending:
            self.out.append(Text(self.source.span(self.pending_start, self.pos), "".join(self.pending)))
            self.pending = []

    def _escape(self) -> None:
        if self.raw:
            self._add_text(self.text[self.pos : self.pos + 2], min(2, self.end - self.pos))
            return
        match = _ESCAPE.match(self.text, self.pos, self.end)
        if match:
            sequence = match.group()
            resolved = "" if sequence.strip("\\\r\n") == "" else pyast.literal_eval('"' + sequence + '"')
            self._add_text(resolved, len(sequence))
            if sequence.endswith("\n"):  # a line continuation
                self._skip_indent()
        elif _MALFORMED_ESCAPE.match(self.text, self.pos, self.end):
            self._fail(self.pos, self.pos + 2, f"malformed '{self.text[self.pos:self.pos + 2]}' escape: give all its hex digits or write \\\\ for a backslash")
        else:  # Python keeps the backslash of an unknown escape such as \d
            self._add_text(self.text[self.pos : self.pos + 2], min(2, self.end - self.pos))

    # ------------------------------------------------------------------------------------------------ holes

    def _hole(self) -> None:
        self._flush()
        start = self.pos
        pos = self._skip_space(start + 1)
        decorators: list[Expr] = []
        while pos < self.end and self.text[pos] == "@":
            decorator, pos = self._decorator(start, pos)
            decorators.append(decorator)
            pos = self._skip_space(pos)
        name = _NAME.match(self.text, pos, self.end)
        if not name:
            close = self.text.find("]", pos, self.end)
            self._fail(start, close + 1 if close >= 0 else pos + 1,
                       "a hole needs a variable name, as in [ANSWER]; write [[ for a literal '['")
        name_span = self.source.span(name.start(), name.end())
        pos = self._skip_space(name.end())
        hole_type = None
        if pos < self.end and self.text[pos] == ":":
            hole_type, pos = self._hole_type(start, pos + 1)
        if pos >= self.end or self.text[pos] != "]":
            found = "the end of the string" if pos >= self.end else repr(self.text[pos])
            self._fail(pos, min(pos + 1, self.end), f"expected ']' to close the hole [{name.group()}, found {found}")
        self.pos = pos + 1
        span = self.source.span(start, self.pos)
        self.out.append(Hole(span, name.group(), name_span, hole_type, tuple(decorators)))

    def _decorator(self, hole_start: int, at: int) -> tuple[Expr, int]:
        name = _DOTTED.match(self.text, at + 1, self.end)
        if not name:
            self._fail(at, at + 1, "expected a function name after '@' in the hole, as in [@strip ANSWER]")
        pos = name.end()
        if pos < self.end and self.text[pos] == "(":
            pos = self._balanced(pos, ")", "the arguments of the hole decorator") + 1
        return self._expr(at + 1, pos, "a hole decorator"), pos

    def _hole_type(self, hole_start: int, pos: int) -> tuple[HoleType | None, int]:
        close = self._balanced(hole_start, "]", "the hole")
        start = self._skip_space(pos)
        end = close
        while end > start and self.text[end - 1].isspace():
            end -= 1
        written = self.text[start:end]
        span = self.source.span(start, end)
        if not written:
            self._fail(pos - 1, close + 1, "expected a type after ':' in the hole, as in [N: int]")
        if written in ("int", "float"):
            return HoleType(span, written), close
        if written == "str":
            return None, close
        if _PREFIX.match(written).end() < len(written) and written[_PREFIX.match(written).end()] in "'\"":
            return HoleType(span, "regex", pattern=self._regex_literal(span)), close
        expr = self._expr(start, end, "a hole type")
        if not isinstance(expr.python().body, (pyast.Name, pyast.Attribute, pyast.Call, pyast.Subscript)):
            self._fail(start, end, "a hole's type is int, float, a regex r\"...\", a Python type or a query call, "
                                   "as in [ANSWER: int]")
        return HoleType(span, "query", call=expr), close

    def _regex_literal(self, span: Span) -> str:
        try:
            value = pyast.literal_eval(span.text)
        except (SyntaxError, ValueError):
            value = None
        if not isinstance(value, str):
            raise LmlangSyntaxError(span, 'expected one regex string literal as the hole type, as in [D: r"[0-9]+"]')
        return value

    # ------------------------------------------------------------------------------------------------ braces

    def _role(self) -> None:
        self._flush()
        start = self.pos
        name = _NAME.match(self.text, start + 2, self.end)
        after = name.end() if name else start + 2
        if not name or after >= self.end or self.text[after] != "}":
            self._fail(start, after + 1, "a role tag is written {:system}, {:user} or {:assistant}")
        if name.group() not in ROLES:
            self._fail(name.start(), name.end(), f"unknown role '{name.group()}': use {{:system}}, {{:user}} or {{:assistant}}")
        self.pos = after + 1
        self.out.append(RoleTag(self.source.span(start, self.pos), name.group()))

    def _interpolation(self) -> None:
        self._flush()
        start = self.pos
        close = self._balanced(start, "}", "the interpolation")
        if not self.text[start + 1 : close].strip():
            self._fail(start, close + 1, "empty {} in a query string: put an expression inside, or write {{ and }} for literal braces")
        self._reject_format_spec(start + 1, close)
        self.pos = close + 1
        self.out.append(Interpolation(self.source.span(start, self.pos), self._expr(start + 1, close, "an interpolation")))

    def _reject_format_spec(self, start: int, end: int) -> None:
        depth, pos = 0, start
        while pos < end:
            char = self.text[pos]
            if char in "'\"":
                pos = self._skip_string(pos)
                continue
            depth += char in "([{"
            depth -= char in ")]}"
            is_spec = char == ":" and self.text[pos + 1 : pos + 2] != "="
            is_conversion = char == "!" and self.text[pos + 1 : pos + 2] != "="
            if depth == 0 and (is_spec or is_conversion):
                self._fail(pos, end, "format specs and conversions ({x:.2f}, {x!r}) are not supported in query strings: call format() or repr() inside the braces")
            pos += 1

    # ------------------------------------------------------------------------------------------------ helpers

    def _expr(self, start: int, end: int, what: str) -> Expr:
        written = self.text[start:end]
        try:
            pyast.parse(f"({written})", mode="eval")
        except SyntaxError as error:
            self._fail(start, end, f"{what} must be a Python expression ({error.msg})")
        return Expr(self.source.span(start, end), written)

    def _balanced(self, opener_at: int, closer: str, what: str) -> int:
        """Offset of the ``closer`` matching the bracket at ``opener_at``, skipping nested brackets and strings."""
        stack = [closer]
        pos = opener_at + 1
        while pos < self.end:
            char = self.text[pos]
            if char in "'\"":
                pos = self._skip_string(pos)
                continue
            if char in _CLOSERS:
                stack.append(_CLOSERS[char])
            elif char in ")]}":
                if char != stack[-1]:
                    break
                stack.pop()
                if not stack:
                    return pos
            pos += 1
        self._fail(opener_at, opener_at + 1, f"'{self.text[opener_at]}' of {what} is never closed: add '{closer}'")
        raise AssertionError("unreachable")

    def _skip_string(self, pos: int) -> int:
        quote = self.text[pos]
        pos += 1
        while pos < self.end and self.text[pos] != quote:
            pos += 2 if self.text[pos] == "\\" else 1
        if pos >= self.end:
            self._fail(pos - 1, pos, f"unterminated string inside the query string: add the closing {quote}")
        return pos + 1

    def _skip_space(self, pos: int) -> int:
        while pos < self.end and self.text[pos] in " \t":
            pos += 1
        return pos

    def _fail(self, start: int, end: int, message: str) -> None:
        raise LmlangSyntaxError(self.source.span(start, max(end, start + 1)), message)
