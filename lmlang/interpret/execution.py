"""Running a compiled program as a coroutine of events, and branching it by replay.

An :class:`Execution` is one run of the program's Python code. It produces events (prompt text, a role tag, a
hole to fill, a multi-model block, the end) and is resumed with the value of each hole. ``fork`` makes an
independent copy at the current point by replaying the recorded hole values into a fresh generator: this is how
decoders keep several continuations of one program (beam search, several samples) and how a block is re-run on
another model.
"""

from __future__ import annotations

import ast as pyast
import asyncio
import builtins
import functools
import inspect
import symtable
import sys
import traceback
import types
import typing
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Union

from lmlang.errors import InputError, LmlangError, QueryRuntimeError
from lmlang.interpret.codegen import FILENAME, MAIN, Generated, HoleSite, generate
from lmlang.source import Span
from lmlang.syntax import ast


@dataclass(frozen=True)
class TextEvent:
    text: str


@dataclass(frozen=True)
class RoleEvent:
    role: str


@dataclass(frozen=True)
class HoleEvent:
    site: HoleSite
    env: dict[str, Any]  # the Python variables visible at the hole (for constraints that name them)
    decorators: tuple[Callable[..., Any], ...] = ()  # of `[@fn VAR]`, evaluated where the hole stands


@dataclass(frozen=True)
class NestedEvent:
    """Entering or leaving (with the value it returned) a nested query that fills the hole ``site``."""

    site: HoleSite
    entering: bool
    value: Any = None
    decorators: tuple[Callable[..., Any], ...] = ()


@dataclass(frozen=True)
class BlockEvent:
    """A multi-model statement. ``body()`` starts a fresh generator of its body; the block's value, given back
    on resume, is the dict of the variables the accepted run of the body bound."""

    statement: ast.Stmt
    body: Callable[[], Any]


@dataclass(frozen=True)
class Finished:
    value: Any


Event = Union[TextEvent, RoleEvent, HoleEvent, NestedEvent, BlockEvent, Finished]


class NestedQuery:
    """A nested query as seen from Python: calling it gives the generator that runs its body."""

    def __init__(self, function: Callable[..., Any], name: str) -> None:
        self._function = function
        self.__name__ = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._function(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<nested query {self.__name__}>"


class CompiledProgram:
    """A program turned into Python code, ready to start runs with given inputs."""

    def __init__(self, program: ast.Program, inputs: tuple[str, ...]) -> None:
        self.program = program
        self.generated: Generated = generate(program, inputs)
        self.sites = self.generated.sites
        try:
            code = compile(_awaits_made_calls(self.generated.source), FILENAME, "exec")
        except SyntaxError as err:  # the parser accepted what Python refuses (a rare corner of Python's grammar)
            raise QueryRuntimeError(self._span_of_line(err.lineno or 0), f"Python cannot compile this: {err.msg}") from None
        # A real module, so that code which looks its own module up (dataclasses, pickle, typing) finds it.
        module = types.ModuleType(f"__lmlang_query_{id(self):x}__")
        sys.modules[module.__name__] = module
        namespace = module.__dict__
        # `lmql` needs no import in an LMQL query (`@lmql.decorators.streaming`, `lmql.model(...)`).
        namespace.update(self._helpers(), __builtins__=_QUERY_BUILTINS, lmql=_lmql_module())
        exec(code, namespace)
        self._main = namespace[MAIN]
        self.free_names = _free_names(self.generated.source)

    def _helpers(self) -> dict[str, Any]:
        """What the generated code calls (see codegen's module docstring). Holes and blocks are numbered per
        program, so the events carry this program's own sites: a nested query from another program (a Python
        function decorated with ``@lmlang.query``) yields events of its own."""
        sites, blocks = self.sites, self.generated.blocks
        return {
            "__lm_text": TextEvent,
            "__lm_role": RoleEvent,
            "__lm_str": _str,
            "__lm_hole": lambda index, env, decorators=(): HoleEvent(sites[index], env, decorators),
            "__lm_nested": lambda index, target, call=None, decorators=(), env=None: _nested(
                sites[index], target, call, decorators, env),
            "__lm_block": lambda index, body: BlockEvent(blocks[index], body),
            "__lm_query": NestedQuery,
            "__lm_await": _await,
        }

    def generator(self, inputs: Mapping[str, Any]) -> Any:
        """A fresh generator of the program's events for ``inputs``: what a run or a nesting query drives."""
        return self._main(**inputs)

    def start(self, inputs: Mapping[str, Any]) -> Execution:
        arguments = dict(inputs)
        return Execution(self, lambda: self.generator(arguments), [])

    def missing_inputs(self, inputs: Mapping[str, Any], known: set[str]) -> list[str]:
        """Names the program reads but nothing defines: neither an input, a builtin, nor ``known``."""
        return sorted(n for n in self.free_names
                      if n not in inputs and n not in known and n != "lmql" and not hasattr(builtins, n))

    def _span_of_line(self, line: int) -> Span | None:
        return self.generated.line_spans.get(line)

    def runtime_error(self, err: BaseException) -> LmlangError:
        """The user's Python exception as a QueryRuntimeError pointing at the query line that raised it."""
        span = None
        for frame in reversed(traceback.extract_tb(err.__traceback__)):
            if frame.filename == FILENAME and frame.lineno in self.generated.line_spans:
                span = self.generated.line_spans[frame.lineno]
                break
        if isinstance(err, NameError) and span is not None:
            name = getattr(err, "name", None) or str(err)
            return InputError(span, f"the query uses '{name}', which nothing defines: pass it as an input "
                                    f"(--input {name}=...) or assign it before this line")
        return QueryRuntimeError(span, f"the query's Python code raised {type(err).__name__}: {err}")


class Execution:
    """One run of a compiled program: resumed with hole values, branchable by replay."""

    def __init__(self, program: CompiledProgram, start: Callable[[], Any], record: list[Any],
                 position: int = 0) -> None:
        self.program = program
        self._start = start
        self.record: list[Any] = []
        self.position = 0  # how many events have been resumed past
        self._generator = start()
        self._pending: Event | None = None
        for value in record:
            while not _takes_value(self.next_event()):
                self.resume(None)
            self.resume(value)
        while self.position < position:
            self.resume(None)

    def next_event(self) -> Event:
        """The event the run is stopped at (running up to it the first time)."""
        if self._pending is None:
            self._pending = self._step(lambda: next(self._generator))
        return self._pending

    def resume(self, value: Any) -> None:
        """Continue past the current event; ``value`` fills it when it is a hole or a block."""
        event = self.next_event()
        if isinstance(event, Finished):
            raise RuntimeError("resume() after the program finished")
        if _takes_value(event):
            self.record.append(value)
        self.position += 1
        self._pending = self._step(lambda: self._generator.send(value))

    def fork(self) -> Execution:
        """An independent run stopped at the same event, made by replaying the hole values recorded so far."""
        return Execution(self.program, self._start, self.record, self.position)

    def _step(self, advance: Callable[[], Any]) -> Event:
        try:
            raw = advance()
        except StopIteration as stop:
            return Finished(stop.value)
        except LmlangError:
            raise
        except KeyboardInterrupt:
            raise
        except Exception as err:  # the user's own Python code failed
            raise self.program.runtime_error(err) from err
        return raw


def _awaits_made_calls(source: str) -> Any:
    """``source``, or its tree with each ``await`` outside an ``async def`` turned into a call that runs the
    awaitable to its end: an LMQL query is an async function, so its Python may ``await`` (a tool, an input)."""
    if "await" not in source:
        return source
    tree = pyast.parse(source, FILENAME)

    class Rewrite(pyast.NodeTransformer):
        def visit_AsyncFunctionDef(self, node: pyast.AsyncFunctionDef) -> pyast.AST:
            return node  # its awaits are its own

        def visit_Await(self, node: pyast.Await) -> pyast.AST:
            call = pyast.Call(pyast.Name("__lm_await", pyast.Load()), [self.visit(node.value)], [])
            return pyast.copy_location(call, node)

    return pyast.fix_missing_locations(Rewrite().visit(tree))


def _await(awaitable: Any) -> Any:
    if not inspect.isawaitable(awaitable):
        raise TypeError(f"object {type(awaitable).__name__} can't be used in 'await' expression")
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_result(awaitable))
    raise TypeError("a query runs synchronously, so it cannot await while an event loop runs in this thread: "
                    "run the query from a worker thread (asyncio.to_thread)")


async def _result(awaitable: Any) -> Any:
    return await awaitable


def _takes_value(event: Event) -> bool:
    """Whether the run is resumed with a value at ``event``: a hole, a block, a nested query's return."""
    return isinstance(event, (HoleEvent, BlockEvent)) or (isinstance(event, NestedEvent) and not event.entering)


def _str(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def _nested(site: HoleSite, target: Any, call: Callable[[Any], Any] | None,
            decorators: tuple[Callable[..., Any], ...], env: dict[str, Any] | None = None) -> Any:
    """Run the nested query ``target`` (called by ``call`` with the hole's arguments, or without any) inside the
    running one, between a NestedEvent entering and one leaving with its return value; the value the leaving
    event is resumed with (after the hole's decorators) fills the hole. A Python type instead (``[P: Person]``,
    ``[X: list[int]]``) makes it a hole like any other, whose constraints make the value an instance."""
    if call is None and not hasattr(target, NESTED_ENTRY) and (
            isinstance(target, type) or typing.get_origin(target) is not None):
        return (yield HoleEvent(site, env or {}, decorators))
    entry = getattr(target, NESTED_ENTRY, target)
    generator = entry() if call is None else call(entry)
    if not isinstance(generator, types.GeneratorType):
        raise TypeError("the type of a hole must be int, float, a regex r\"...\" or a call of a nested query")
    yield NestedEvent(site, True, None)
    value = yield from generator
    return (yield NestedEvent(site, False, value, decorators))


# The attribute of a Python function decorated with @lmlang.query that gives its body's generator, so that a
# query can nest it like a query defined in its own file.
NESTED_ENTRY = "__lmlang_nested__"


@functools.cache
def _lmql_module() -> types.ModuleType:
    """What ``import lmql`` gives inside a query, so LMQL files run unchanged without LMQL installed."""
    import lmlang
    from lmlang.decoding import decorator

    module = types.ModuleType("lmql", "lmlang's stand-in for LMQL's module inside queries")
    module.query = lmlang.query  # type: ignore[attr-defined]
    module.run = lmlang.run  # type: ignore[attr-defined]
    module.model = lambda name, **options: name  # type: ignore[attr-defined]
    # Decorator stages and the types LMQL's decorators annotate with (`from lmql.runtime.program_state import
    # ProgramState` finds them here: every `lmql.*` module is this one).
    module.decorators = types.SimpleNamespace(streaming=decorator.streaming, pre=decorator.pre)  # type: ignore[attr-defined]
    module.ProgramState = decorator.ProgramState  # type: ignore[attr-defined]
    module.TemplateVariable = decorator.TemplateVariable  # type: ignore[attr-defined]
    return module


def _import(name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0) -> Any:
    if name == "lmql" or name.startswith("lmql."):
        return _lmql_module()
    return builtins.__import__(name, globals, locals, fromlist, level)


_QUERY_BUILTINS: dict[str, Any] = {**vars(builtins), "__import__": _import}


def _free_names(source: str) -> set[str]:
    """Global names the generated code reads but never assigns: inputs, or names nothing defines."""
    names: set[str] = set()

    def visit(table: symtable.SymbolTable) -> None:
        for sym in table.get_symbols():
            if sym.is_global() and sym.is_referenced() and not sym.is_assigned():
                names.add(sym.get_name())
        for child in table.get_children():
            visit(child)

    visit(symtable.symtable(source, FILENAME, "exec"))
    return {n for n in names if not n.startswith("__lm")}
