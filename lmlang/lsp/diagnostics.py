"""Diagnostics for a query text: what the parser, the checker and the model registry say about it."""

from __future__ import annotations

import ast as pyast
from collections.abc import Iterator

from lsprotocol import types

from lmlang.check import check
from lmlang.errors import LmlangError, LmlangSyntaxError, ModelError
from lmlang.models.registry import is_alias, resolve
from lmlang.syntax import ast, parse
from lmlang.lsp.positions import span_range

SOURCE = "lmlang"

# Names LMQL queries give to hosted models (OpenAI's, "local:..." transformers); lmlang runs only local GGUF files,
# so such a query is fine but needs --model to pick one.
_REMOTE_PREFIXES = ("gpt", "chatgpt", "text-", "davinci", "local:", "openai", "azure")


def analyse(text: str, name: str, encoding: str = types.PositionEncodingKind.Utf16) -> tuple[ast.Program | None, list[types.Diagnostic]]:
    """The program in ``text`` (``None`` if it does not parse) and every diagnostic about it."""
    try:
        program = parse(text, name)
    except LmlangSyntaxError as error:
        return None, [_diagnostic(error, text, encoding)]
    try:
        errors: list[LmlangError] = list(check(program))
    except LmlangError as error:
        errors = [error]
    diagnostics = [_diagnostic(e, text, encoding) for e in errors]
    diagnostics += [_model_diagnostic(expr, model, text, encoding) for expr, model in _model_names(program)]
    return program, [d for d in diagnostics if d is not None]


def _diagnostic(
    error: LmlangError,
    text: str,
    encoding: str,
    severity: types.DiagnosticSeverity = types.DiagnosticSeverity.Error,
) -> types.Diagnostic:
    if error.span is None:
        where = types.Range(start=types.Position(line=0, character=0), end=types.Position(line=0, character=0))
    else:
        where = span_range(error.span, text, encoding)
    return types.Diagnostic(
        range=where, message=error.message, severity=severity, source=SOURCE, code=type(error).__name__
    )


def _model_diagnostic(expr: ast.Expr, model: str, text: str, encoding: str) -> types.Diagnostic | None:
    if is_alias(model):  # resolving Gemma's alias would assemble its file: too slow while typing
        return None
    try:
        resolve(model)
    except ModelError as error:
        if _is_remote(model):
            message = f"'{model}' is not a local model; run with --model (e.g. --model smollm2)"
            return _diagnostic(ModelError(expr.span, message), text, encoding, types.DiagnosticSeverity.Information)
        return _diagnostic(ModelError(expr.span, error.message), text, encoding)
    return None


def _is_remote(model: str) -> bool:
    lowered = model.lower()
    return not lowered.endswith(".gguf") and ("/" in model or lowered.startswith(_REMOTE_PREFIXES))


def _model_names(program: ast.Program) -> Iterator[tuple[ast.Expr, str]]:
    """Every model named by string literals: ``from``, ``cascade``, ``ensemble``, ``route``'s ``by=``, a nested
    query's ``model=``."""
    exprs: list[ast.Expr] = [program.model] if program.model is not None else []
    for stmt in ast.walk(program.body):
        if isinstance(stmt, (ast.Cascade, ast.Ensemble)):
            exprs.extend(stmt.models)
        elif isinstance(stmt, ast.Route):
            exprs.extend(a.value for a in stmt.header if a.name == "by")
        elif isinstance(stmt, ast.QueryDef):
            exprs.extend(a.value for a in stmt.options if a.name == "model")
            yield from _model_names(stmt.query)
    for expr in exprs:
        value = _string_literal(expr)
        if value is not None:
            yield expr, value


def _string_literal(expr: ast.Expr) -> str | None:
    """The model name ``expr`` gives if it is a string literal (other expressions are known only when it runs)."""
    try:
        value = pyast.literal_eval(expr.source.strip())
    except (ValueError, SyntaxError):
        return None
    return value if isinstance(value, str) else None
