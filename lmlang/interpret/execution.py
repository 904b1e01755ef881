"""Running a compiled program as a coroutine of events, and branching it by replay.

An :class:`Execution` is one run of the program's Python code. It produces events (prompt text, a role tag, a
hole to fill, a multi-model block, the end) and is resumed with the value of each hole. ``fork`` makes an
independent copy at the current point by replaying the recorded hole values into a fresh generator: this is how
decoders keep several continuations of one program (beam search, several samples) and how a block is re-run on
another model.
"""

from __future__ import annotations

import ast as pyast
import builtins
import contextvars
import functools
import inspect
import symtable
import sys
import traceback
import types
import typing
import weakref
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Union

from lmlang.constraints.catalog import CONSTRAINT_FUNCTIONS, canonical
from lmlang.errors import InputError, LmlangError, QueryRuntimeError
from lmlang.interpret.codegen import FILENAME, MAIN, Generated, HoleSite, generate
from lmlang.interpret.namespace import QUERY_BUILTINS, lmql_module
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


class NoReturn:
    """What a query returns when it ends without ``return VALUE`` (its end, or a bare ``return``); unlike
    ``return None``, the caller then gets the whole result, and a nested query's text is its value."""

    def __repr__(self) -> str:
        return "NO_RETURN"


NO_RETURN = NoReturn()


@dataclass(frozen=True)
class Finished:
    value: Any  # NO_RETURN when the query returned no value


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


class QueryContext:
    """LMQL's ``context`` inside a query: the prompt so far and the variables of the run it stands in. The
    decoder driving the run attaches them (:meth:`attach`). A fork replays the program's code, which reads
    what the original read at the same points (``replay``), not the fork's later prompt."""

    def __init__(self, replay: list[Any] | None = None) -> None:
        self._prompt: Callable[[], str] = str
        self._variables: Callable[[], dict[str, Any]] = dict
        self._replay = list(replay or [])
        self.reads: list[Any] = []

    def attach(self, prompt: Callable[[], str], variables: Callable[[], dict[str, Any]]) -> None:
        self._prompt, self._variables = prompt, variables

    def _read(self, compute: Callable[[], Any]) -> Any:
        value = self._replay.pop(0) if self._replay else compute()
        self.reads.append(value)
        return value

    @property
    def prompt(self) -> str:
        return self._read(self._prompt)

    @property
    def variables(self) -> dict[str, Any]:
        return self._read(lambda: dict(self._variables()))

    def get_var(self, name: str) -> Any:
        return self._read(lambda: self._variables().get(name))


# The execution whose Python code is running (set while it runs, for `context`).
_running: contextvars.ContextVar[Execution] = contextvars.ContextVar("lmlang_running_execution")


class _RunningContext:
    """The ``context`` global of every compiled program: the context of the execution running the code."""

    def __getattr__(self, name: str) -> Any:
        execution = _running.get(None)
        if execution is None:
            raise RuntimeError("`context` is only available while the query runs")
        return getattr(execution.context, name)

    def __repr__(self) -> str:
        return "<the query's context>"


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
        weakref.finalize(self, sys.modules.pop, module.__name__, None)  # a long-lived process compiles many
        namespace = module.__dict__
        # `lmql` needs no import in an LMQL query (`@lmql.decorators.streaming`, `lmql.model(...)`).
        namespace.update(self._helpers(), __builtins__=QUERY_BUILTINS, lmql=lmql_module(), context=_RunningContext())
        exec(code, namespace)
        self._namespace = namespace
        self._main = namespace[MAIN]
        self.free_names = _free_names(self.generated.source) - self.generated.prelude_globals
        self.clause_names = _clause_names(program, self.sites)

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
            "__lm_no_return": NO_RETURN,
            "__lm_await": _await,
        }

    def generator(self, inputs: Mapping[str, Any]) -> Any:
        """A fresh generator of the program's events for ``inputs``: what a run or a nesting query drives.

        A program whose prelude binds globals gets globals of its own for each generator, so that runs (and the
        replays that fork them) never see each other's."""
        main = self._main
        if self.generated.prelude_globals:
            main = types.FunctionType(main.__code__, dict(self._namespace), MAIN, main.__defaults__, main.__closure__)
        return main(**inputs)

    def start(self, inputs: Mapping[str, Any]) -> Execution:
        arguments = dict(inputs)
        return Execution(self, lambda: self.generator(arguments), [])

    def missing_inputs(self, inputs: Mapping[str, Any], known: set[str]) -> list[str]:
        """Names the program reads but nothing defines: neither an input, a builtin, nor ``known``."""
        return sorted(n for n in self.free_names
                      if n not in inputs and n not in known and n not in ("lmql", "context")
                      and not hasattr(builtins, n))

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
                 position: int = 0, context_reads: list[Any] | None = None) -> None:
        self.program = program
        self._start = start
        self.record: list[Any] = []
        self.position = 0  # how many events have been resumed past
        self.context = QueryContext(context_reads)
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
        return Execution(self.program, self._start, self.record, self.position, self.context.reads)

    def _step(self, advance: Callable[[], Any]) -> Event:
        running = _running.set(self)
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
        finally:
            _running.reset(running)
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
    import asyncio  # here: importing it costs every CLI start a tenth of a second, and few queries await

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
    if isinstance(target, types.MethodType) and hasattr(target.__func__, NESTED_ENTRY):  # `[A: self.method]`
        entry = functools.partial(getattr(target.__func__, NESTED_ENTRY), target.__self__)
    generator = entry() if call is None else call(entry)
    if not isinstance(generator, types.GeneratorType):
        raise TypeError("the type of a hole must be int, float, a regex r\"...\" or a call of a nested query")
    yield NestedEvent(site, True, None)
    value = yield from generator
    return (yield NestedEvent(site, False, value, decorators))


# The attribute of a Python function decorated with @lmlang.query that gives its body's generator, so that a
# query can nest it like a query defined in its own file.
NESTED_ENTRY = "__lmlang_nested__"




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


def _clause_names(program: ast.Program, sites: list[HoleSite]) -> frozenset[str]:
    """Names the program's clauses read that its Python code may not (where clauses, distribution candidates,
    decoder arguments, the ``from`` clause), other than holes and the language's constraint functions: a query
    function finds them where it is defined, as it does the names its code reads."""
    expressions = [e for site in sites for e in site.where]
    expressions += [site.distribution.values for site in sites if site.distribution is not None]
    if program.decoder is not None:
        expressions += [argument.value for argument in program.decoder.args]
    if program.model is not None:
        expressions.append(program.model)
    names: set[str] = set()
    for expr in expressions:
        try:
            tree = expr.python()
        except SyntaxError:
            continue
        bound = {n.id for n in pyast.walk(tree) if isinstance(n, pyast.Name) and isinstance(n.ctx, pyast.Store)}
        bound |= {a.arg for n in pyast.walk(tree) if isinstance(n, pyast.Lambda) for a in pyast.walk(n.args)
                  if isinstance(a, pyast.arg)}
        names |= {n.id for n in pyast.walk(tree) if isinstance(n, pyast.Name) and n.id not in bound}
    holes = {site.hole.name for site in sites}
    return frozenset(n for n in names if n not in holes and canonical(n) not in CONSTRAINT_FUNCTIONS
                     and not hasattr(builtins, n) and n not in ("lmql", "context"))
