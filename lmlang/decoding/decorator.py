"""Variable decorators, ``[@fn VAR]``: Python functions run on a hole's value, as in LMQL.

A plain decorator runs after the value is generated and may change it: ``fn(value)``, or ``fn(value, prompt_value,
context)`` returning ``(value, prompt_value)`` to give the program one value and the prompt another text
(otherwise the prompt shows ``str(value)``). ``@lmql.decorators.streaming`` ones are called with each partial
value while it is generated, and ``@lmql.decorators.pre`` ones before, where returning a string fixes the value
without generating it. Chained as ``[@a @b @c VAR]``, the pre stage calls a, b, c and the post stage c, b, a.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Sequence

from lmlang.errors import QueryRuntimeError
from lmlang.syntax import ast

_STAGE = "__lmlang_decorator_stage__"


def streaming(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Marks ``fn(value, context)`` (or ``fn(value)``) to be called with each partial value of the hole it
    decorates."""
    setattr(fn, _STAGE, "streaming")
    return fn


def pre(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Marks ``fn(variable)`` or ``fn(variable, context)`` to be called before the hole is generated: a string it
    returns becomes the value, the ``variable`` itself means generate as usual."""
    setattr(fn, _STAGE, "pre")
    return fn


class ProgramState:
    """What a decorator is told of the run: the prompt so far and the variables with values."""

    def __init__(self, prompt: Callable[[], str], variables: dict[str, Any]) -> None:
        self._prompt = prompt  # joined only if a decorator reads it
        self.variables = variables

    @property
    def prompt(self) -> str:
        return self._prompt()

    def get_var(self, name: str) -> Any:
        return self.variables.get(name)


class TemplateVariable:
    """The hole a pre-processing decorator is asked about."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<TemplateVariable {self.name}>"


class Decorators:
    """The decorators of one hole, already evaluated in the query's scope, with where each is written."""

    def __init__(self, functions: Sequence[Callable[..., Any]], written: Sequence[ast.Expr]) -> None:
        self._stages = [(getattr(fn, _STAGE, "post"), fn, expr) for fn, expr in zip(functions, written)]

    @property
    def streams(self) -> bool:
        return any(kind == "streaming" for kind, _, _ in self._stages)

    def fixed_value(self, name: str, state: ProgramState) -> str | None:
        """The value a pre-processing decorator fixes for the hole, or None to generate it."""
        variable: Any = TemplateVariable(name)
        for fn, expr in self._of("pre"):  # LMQL's pre decorators take the variable, and the context if they ask
            variable = _call(expr, fn, variable, state) if _positional(fn) >= 2 else _call(expr, fn, variable)
            if isinstance(variable, str):
                return variable
        return None

    def stream(self, partial: str, state: ProgramState) -> None:
        for fn, expr in self._of("streaming"):
            _call(expr, fn, partial, state) if _positional(fn) >= 2 else _call(expr, fn, partial)

    def finish(self, value: Any, text: str, state: ProgramState) -> tuple[Any, str]:
        """The hole's value after the post-processing decorators, innermost first, and its text in the prompt."""
        shown = text
        for fn, expr in reversed(self._of("post")):
            takes_context = _positional(fn) >= 3
            out = _call(expr, fn, value, shown, state) if takes_context else _call(expr, fn, value)
            value, shown = out if isinstance(out, tuple) and len(out) == 2 else (out, str(out))
        return value, shown

    def _of(self, stage: str) -> list[tuple[Callable[..., Any], ast.Expr]]:
        return [(fn, expr) for kind, fn, expr in self._stages if kind == stage]


NONE = Decorators((), ())


def _positional(fn: Callable[..., Any]) -> int:
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: called with the value alone
        return 1
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in parameters):
        return 3
    return sum(p.kind in kinds for p in parameters)


def _call(expr: ast.Expr, fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return fn(*args)
    except Exception as err:  # the user's decorator failed: say which, where
        raise QueryRuntimeError(expr.span, f"the decorator {expr.source} raised {type(err).__name__}: {err}") from None
