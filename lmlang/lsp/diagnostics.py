"""Diagnostics for a query text: what the parser and the checker (with the model registry) say about it.

They are the diagnostics ``lmlang check`` prints: the same checks, spans, messages and codes.
"""

from __future__ import annotations

from lsprotocol import types

from lmlang.check import check
from lmlang.errors import LmlangError, LmlangSyntaxError
from lmlang.lsp.positions import span_range
from lmlang.models.names import INFORMATION, model_name_problem
from lmlang.syntax import ast, parse

SOURCE = "lmlang"


def analyse(text: str, name: str, encoding: str = types.PositionEncodingKind.Utf16) -> tuple[ast.Program | None, list[types.Diagnostic]]:
    """The program in ``text`` (``None`` if it does not parse) and every diagnostic about it."""
    try:
        program = parse(text, name)
    except LmlangSyntaxError as error:
        return None, [_diagnostic(error, text, encoding)]
    try:
        errors: list[LmlangError] = list(check(program, models=model_name_problem))
    except LmlangError as error:
        errors = [error]
    return program, [_diagnostic(e, text, encoding) for e in errors]


def _diagnostic(error: LmlangError, text: str, encoding: str) -> types.Diagnostic:
    if error.span is None:
        where = types.Range(start=types.Position(line=0, character=0), end=types.Position(line=0, character=0))
    else:
        where = span_range(error.span, text, encoding)
    severity = types.DiagnosticSeverity.Information if error.code in INFORMATION else types.DiagnosticSeverity.Error
    return types.Diagnostic(range=where, message=error.message, severity=severity, source=SOURCE, code=error.code)
