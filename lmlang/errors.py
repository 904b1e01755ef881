"""One hierarchy for everything that can go wrong, rooted in :class:`LmlangError`.

Errors are data: a span (where, if anywhere) and a message (one sentence that says what to do). The CLI and the
language server render them; nothing else formats them.
"""

from __future__ import annotations

import re

from lmlang.source import Span


class LmlangError(Exception):
    """Base of every error lmlang raises on purpose."""

    def __init__(self, span: Span | None, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.span = span
        self.message = message
        # What kind of problem it is, for editors and scripts: "unknown-function"; by default the class's name.
        self.code = code or re.sub(r"(?<!^)(?=[A-Z])", "-", type(self).__name__).lower()

    def render(self, *, code: bool = False) -> str:
        """``file:line:col: message`` (``error[code]:`` with ``code``), then the line and a caret under the
        column."""
        label = f"error[{self.code}]" if code else "error"
        if self.span is None:
            return f"{label}: {self.message}"
        span = self.span
        line_text = span.source.line_text(span.line)
        width = max(1, min(span.end - span.start, len(line_text) - span.column + 1)) if span.line == span.end_line else 1
        caret = " " * (span.column - 1) + "^" * width
        return f"{span}: {label}: {self.message}\n    {line_text}\n    {caret}"

    def __str__(self) -> str:
        return self.render()


class LmlangSyntaxError(LmlangError):
    """The text is not lmlang: the parser could not read it."""


class CheckError(LmlangError):
    """The text parses but is not a valid query (unknown constraint, undefined variable, bad arguments)."""


class ConstraintError(LmlangError):
    """A constraint cannot be compiled (an unsupported regex feature) or cannot be satisfied."""


class NotEnforcedError(ConstraintError):
    """A constraint this version of lmlang cannot enforce; raised instead of ignoring it."""


class ModelError(LmlangError):
    """A model cannot be found, loaded or run."""


class InputError(LmlangError):
    """An input the query needs is missing or malformed."""


class QueryRuntimeError(LmlangError):
    """The Python code inside a query raised an exception."""


class UsageError(LmlangError):
    """The command line or the Python API was called wrongly."""


class LmlangWarning(UserWarning):
    """Something a query asked for that lmlang accepts but cannot do here (an LMQL option with no meaning for a
    local model): said once, on stderr, instead of dropped in silence."""
