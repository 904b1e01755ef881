"""The one way the query's Python is evaluated outside its generated code: ``where`` clauses, ``distribution``
candidates, the conditions, headers and arms of multi-model blocks, computed decoder arguments.

Python's rules, as in the generated code: the expression gets ONE dict as its globals. Beneath the query's own
names (inputs, variables, hole values) lie the built-ins of the language for that place (constraint functions,
``margin``, ``threshold``...), beneath those Python's builtins; so a query's name shadows a built-in of the
language as a Python name shadows a builtin. Generator expressions, comprehensions and lambdas see only their
globals, so with one dict they see the query's names too (``all(c in ok for c in X)``), which a separate
``locals`` mapping would hide from them.
"""

from __future__ import annotations

import ast as pyast
import builtins
import functools
import types
from collections.abc import Mapping
from typing import Any, Callable

# The front door's functions a query reaches as ``lmql.query`` and ``lmql.run``: lmlang.query registers them
# here, so that this layer imports nothing above it.
FRONT_DOOR: dict[str, Callable[..., Any]] = {}


def _front_door(name: str) -> Callable[..., Any]:
    if name not in FRONT_DOOR:
        raise AttributeError(f"module 'lmql' has no attribute '{name}'")
    return FRONT_DOOR[name]


@functools.cache
def lmql_module() -> types.ModuleType:
    """What ``import lmql`` gives inside a query, so LMQL files run unchanged without LMQL installed."""
    from lmlang.decoding import decorator

    module = types.ModuleType("lmql", "lmlang's stand-in for LMQL's module inside queries")
    module.__getattr__ = _front_door  # type: ignore[attr-defined]
    module.model = lambda name, **options: name  # type: ignore[attr-defined]
    # Decorator stages and the types LMQL's decorators annotate with (`from lmql.runtime.program_state import
    # ProgramState` finds them here: every `lmql.*` module is this one).
    module.decorators = types.SimpleNamespace(streaming=decorator.streaming, pre=decorator.pre)  # type: ignore[attr-defined]
    module.ProgramState = decorator.ProgramState  # type: ignore[attr-defined]
    module.TemplateVariable = decorator.TemplateVariable  # type: ignore[attr-defined]
    return module


def _import(name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0) -> Any:
    if name == "lmql" or name.startswith("lmql."):
        return lmql_module()
    return builtins.__import__(name, globals, locals, fromlist, level)


# Python's builtins as a query sees them: `import lmql` gives lmlang's stand-in.
QUERY_BUILTINS: dict[str, Any] = {**vars(builtins), "__import__": _import}


def namespace(names: Mapping[str, Any], language: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The globals of query Python: ``language``'s built-ins under the query's ``names``."""
    found = {**(language or {}), **names}
    found["__builtins__"] = QUERY_BUILTINS
    return found


def evaluate(expr: pyast.AST | types.CodeType, names: Mapping[str, Any], language: Mapping[str, Any] | None = None,
             filename: str = "<query>") -> Any:
    """The value of a Python expression (an ``ast`` expression, an ``ast.Expression``, or code compiled in
    ``eval`` mode) of the query, in :func:`namespace`. Exceptions are the caller's to report."""
    if not isinstance(expr, types.CodeType):
        tree = expr if isinstance(expr, pyast.Expression) else pyast.Expression(body=expr)  # type: ignore[arg-type]
        expr = compile(pyast.fix_missing_locations(tree), filename, "eval")
    return eval(expr, namespace(names, {"lmql": lmql_module(), **(language or {})}))  # noqa: S307 - the query's own code, by design
