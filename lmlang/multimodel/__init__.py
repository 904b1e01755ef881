"""Multi-model statements: cascade, route and ensemble blocks."""

from __future__ import annotations

from typing import Any

from lmlang.errors import NotEnforcedError
from lmlang.syntax import ast


def run_block(decoder: Any, run: Any, event: Any, settings: Any, on_text: Any) -> dict[str, Any]:
    """Run a multi-model block (``event.body``) for ``run``; the variables of the accepted run of its body."""
    keyword = "cascade" if isinstance(event.statement, ast.Cascade) else "route"
    raise NotEnforcedError(event.statement.span, f"'{keyword}' statements are not available yet")
