"""The variables visible where a block stands, and evaluating the block's header expressions in them."""

from __future__ import annotations

from typing import Any

from lmlang.errors import InputError, LmlangError, QueryRuntimeError
from lmlang.interpret import namespace
from lmlang.interpret.execution import BlockEvent
from lmlang.syntax import ast


def block_scope(event: BlockEvent, run: Any) -> dict[str, Any]:
    """The enclosing run's hole values under the Python variables in scope at the block (codegen attaches them)."""
    scope = dict(getattr(event.body, "scope", {}))
    return {**run.variables, **{k: v for k, v in scope.items() if not k.startswith("__lm")}}


def evaluate(expr: ast.Expr, scope: dict[str, Any], what: str) -> Any:
    """The value of a header expression; a NameError or any other failure is the query's error at ``expr``."""
    try:
        return namespace.evaluate(expr.python(), scope, filename="<block header>")
    except LmlangError:
        raise
    except NameError as err:
        raise InputError(expr.span, f"{what} uses '{getattr(err, 'name', err)}', which nothing defines here") from None
    except Exception as err:  # noqa: BLE001 - the query's own Python: any failure is the user's to see
        raise QueryRuntimeError(expr.span, f"{what} raised {type(err).__name__}: {err}") from None
