"""The structure of a query for the editor's outline and completion: its holes and nested queries."""

from __future__ import annotations

import re

from lsprotocol import types

from lmlang.syntax import ast
from lmlang.lsp.positions import span_range

# A hole as typed, for documents that do not parse yet: ``[NAME``, ``[NAME:``, ``[@fn NAME``, but not ``[[``.
_HOLE = re.compile(r"(?<!\[)\[(?!\[)(?:@[\w.]+(?:\([^)\]]*\))?\s+)*([A-Za-z_]\w*)\s*[:\]]")


def hole_names(program: ast.Program | None, text: str) -> list[str]:
    """The variables the query's holes define, in order, each once (from the text if it does not parse)."""
    if program is None:
        names = [m.group(1) for m in _HOLE.finditer(text)]
    else:
        names = [h.name for h in _all_holes(program)]
        names += [d.var for d in _distributions(program)]
    return list(dict.fromkeys(names))


def _all_holes(program: ast.Program) -> list[ast.Hole]:
    found = list(ast.holes(program))
    for stmt in ast.walk(program.body):
        if isinstance(stmt, ast.QueryDef):
            found += _all_holes(stmt.query)
    return found


def _distributions(program: ast.Program) -> list[ast.Distribution]:
    found = [program.distribution] if program.distribution is not None else []
    found += [s.distribution for s in ast.walk(program.body) if isinstance(s, ast.QueryStmt) and s.distribution]
    return found


def in_prompt_text(program: ast.Program, offset: int) -> bool:
    """Whether ``offset`` falls in the literal text of a query string (prose, where words are not names)."""
    for stmt in ast.walk(program.body):
        if isinstance(stmt, ast.QueryDef) and in_prompt_text(stmt.query, offset):
            return True
        if isinstance(stmt, ast.QueryStmt) and any(
            isinstance(part, ast.Text) and part.span.start <= offset < part.span.end for part in stmt.string.parts
        ):
            return True
    return False


def symbols(program: ast.Program, text: str, encoding: str) -> list[types.DocumentSymbol]:
    """Document symbols: each hole, and each nested query with its own holes inside it."""
    result = [_hole_symbol(h, text, encoding) for h in ast.holes(program)]
    for stmt in ast.walk(program.body):
        if isinstance(stmt, ast.QueryDef):
            whole = span_range(stmt.span, text, encoding)
            found = stmt.span.text.find(f"def {stmt.name}")
            name_at = found + len("def ") if found >= 0 else 0
            name_span = stmt.span.shifted(name_at, len(stmt.name))
            result.append(
                types.DocumentSymbol(
                    name=stmt.name,
                    detail=f"query({stmt.params})",
                    kind=types.SymbolKind.Function,
                    range=whole,
                    selection_range=span_range(name_span, text, encoding),
                    children=symbols(stmt.query, text, encoding),
                )
            )
    return result


def _hole_symbol(hole: ast.Hole, text: str, encoding: str) -> types.DocumentSymbol:
    return types.DocumentSymbol(
        name=hole.name,
        detail=hole.span.text,
        kind=types.SymbolKind.Variable,
        range=span_range(hole.span, text, encoding),
        selection_range=span_range(hole.name_span, text, encoding),
    )
