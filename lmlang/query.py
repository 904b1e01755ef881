"""The front door: compile a query, run it on a model, get a :class:`Result`.

``compile(source) -> Query``, ``Query.run(model=None, **inputs)``, ``run(source, model=None, **inputs)``, the
``@query`` decorator over a Python function whose docstring is a query, and ``unload(model)`` to free a model's
memory.
"""

from __future__ import annotations

import ast as pyast
import asyncio
import functools
import inspect
import re
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from lmlang import concurrency
from lmlang.check import check
from lmlang.decoding.catalog import DECODERS, carried_over, decoder_args
from lmlang.decoding.decoder import Decoder, DecoderSettings, TextSink
from lmlang.errors import InputError, ModelError, UsageError
from lmlang.interpret.execution import NESTED_ENTRY, CompiledProgram
from lmlang.mapping import map_rows
from lmlang.models import llama, registry
from lmlang.result import Result
from lmlang.syntax import ast, parse

_decoders: dict[int, Decoder] = {}
_decoders_lock = threading.Lock()


def decoder_for(model: Any) -> Decoder:
    """The process's decoder for ``model``: one per model, so cached prompts are shared across queries. Inside a
    run, the run takes the model's lock (see lmlang.concurrency) and, when it is a fresh run, empties the model's
    cache, so that the result does not depend on what ran before it (llama.cpp's logits depend slightly on the
    cache's layout, enough to turn a near tie)."""
    with _decoders_lock:
        decoder = _decoders.get(id(model))
        if decoder is None or decoder.model is not model:
            decoder = _decoders[id(model)] = Decoder(model)

    def clear() -> None:
        decoder.pool.clear()
        model.clear_cache()  # skipped while a run that called this one holds sequences

    concurrency.use(model, clear)
    return decoder


def _start(model: str | None) -> Decoder:
    """The decoder a top-level run uses, inside the run's :func:`concurrency.run_scope`."""
    while True:
        loaded = llama.load(model)
        decoder = decoder_for(loaded)
        if not loaded.closed:  # else it was unloaded while this run waited for it: load it again
            return decoder


class Query:
    """A parsed and checked query, ready to run any number of times."""

    def __init__(self, program: ast.Program, name: str = "<query>") -> None:
        self.program = program
        self.name = name
        self._compiled: dict[tuple[str, ...], CompiledProgram] = {}

    @functools.cached_property
    def multi_model(self) -> bool:
        """Whether a run may use several models (a ``cascade``, ``route`` or ``ensemble`` statement)."""
        return concurrency.may_use_several_models(self.program)

    @property
    def model_name(self) -> str | None:
        """The model the query's ``from`` clause names, if any."""
        return _model_of(self.program.model) if self.program.model is not None else None

    def compiled(self, input_names: tuple[str, ...]) -> CompiledProgram:
        if input_names not in self._compiled:
            self._compiled[input_names] = CompiledProgram(self.program, input_names)
        return self._compiled[input_names]

    def program_for(self, inputs: Mapping[str, Any]) -> CompiledProgram:
        """The program compiled for these inputs; an InputError when it reads a name none of them gives."""
        program = self.compiled(tuple(sorted(inputs)))
        missing = program.missing_inputs(inputs, set())
        if missing:
            names = ", ".join(missing)
            flags = " ".join(f"--input {m}=..." for m in missing)
            raise InputError(None, f"the query needs the input{'s' if len(missing) > 1 else ''} {names}: "
                                   f"pass {flags} (or {missing[0]}=... in Python)")
        return program

    def run(self, model: str | None = None, *, decoder: str | None = None,
            decoder_args: Mapping[str, Any] | None = None, on_text: TextSink | None = None,
            reuse_prompts: bool = False, **inputs: Any) -> Result | list[Result]:
        """Run the query. ``model`` overrides the ``from`` clause; ``decoder``/``decoder_args`` override the
        decoder clause. A decoder asked for ``n > 1`` results returns a list.

        ``reuse_prompts``: start from the prompts earlier runs left in the model's cache instead of an empty
        cache. Faster when runs share a long prefix (few-shot examples), but the result may then differ from a
        fresh run's where the model's top choices nearly tie."""
        overrides = dict(decoder_args or {})
        if decoder is not None:
            overrides["decoder"] = decoder
        settings = DecoderSettings.from_clause(self.program.decoder, overrides)
        program = self.program_for(inputs)
        reuse = reuse_prompts or bool(settings.cache)
        with concurrency.run_scope(fresh=not reuse, multi_model=self.multi_model):
            results = _start(model or self.model_name).run(program, inputs, settings, on_text)
        return results if settings.results > 1 else results[0]

    async def arun(self, model: str | None = None, **options: Any) -> Result | list[Result]:
        """``run`` for asyncio: the run goes to a worker thread, so the event loop goes on meanwhile (``on_text``
        is called from that thread). Cancelling the awaiting task does not stop a run already started."""
        return await _in_thread(self.run, model, **options)

    def map(self, rows: Iterable[Mapping[str, Any]], model: str | None = None, *, concurrency: int = 1,
            errors: str = "return", **options: Any) -> Iterator[Result | list[Result] | Exception]:
        """Run the query once per row (a mapping of its inputs; fields it does not read are left out) on
        ``concurrency`` threads, yielding the results in the rows' order. A row whose run fails yields its
        exception and the others go on (``errors="raise"``: the exception is raised when its row's turn comes).
        ``options`` are ``run``'s. Runs on one model take turns, so more threads do not yet run faster."""
        if errors not in ("return", "raise"):
            raise UsageError(None, f"errors is 'return' or 'raise', not {errors!r}")
        for item in map_rows(self, rows, model, concurrency=concurrency, **options):
            if item.failed and errors == "raise":
                raise item.outcome
            yield item.outcome

    def score(self, candidates: Sequence[str], model: str | None = None, *, reuse_prompts: bool = False,
              **inputs: Any) -> list[float]:
        """The log-probability of each candidate as the value of the query's last hole (the one a
        ``distribution`` clause scores), after running the query up to it; all candidates in one batch."""
        settings = DecoderSettings.from_clause(self.program.decoder, {})
        program = self.compiled(tuple(sorted(inputs)))
        with concurrency.run_scope(fresh=not reuse_prompts, multi_model=self.multi_model):
            return _start(model or self.model_name).score_program(program, inputs, settings,
                                                                  [str(c) for c in candidates])


def compile(source: str, name: str = "<query>", line_offset: int = 0) -> Query:  # noqa: A001 - the API's name
    """Parse and check ``source``; raises the first ``LmlangSyntaxError``/``CheckError`` found. A source indented
    as a whole (a triple-quoted string in Python code) is dedented first, as LMQL does."""
    program = parse(textwrap.dedent(source), name, line_offset)
    problems = check(program)
    if problems:
        raise problems[0]
    return Query(program, name)


def compile_file(path: str | Path) -> Query:
    path = Path(path)
    return compile(path.read_text(encoding="utf-8"), str(path))


def run(source: str, model: str | None = None, **inputs: Any) -> Result | list[Result]:
    """Compile and run ``source`` once."""
    return compile(source).run(model, **inputs)


async def arun(source: str, model: str | None = None, **inputs: Any) -> Result | list[Result]:
    """``run`` for asyncio: compile and run ``source`` once in a worker thread."""
    return await compile(source).arun(model, **inputs)


def score(prompt: str, continuations: Sequence[str], model: str | None = None, *,
          reuse_prompts: bool = False) -> list[float]:
    """log P(continuation | prompt) under ``model`` for each continuation, all evaluated in one batch."""
    with concurrency.run_scope(fresh=not reuse_prompts, multi_model=False):
        return _start(model).score_text(prompt, [str(c) for c in continuations])


def unload(model: str | None = None) -> None:
    """Free the memory of a loaded model (an alias or a .gguf path; ``None``: every loaded model) and its cached
    prompts. A later query on it loads it again. Nothing happens for a model that is not loaded. Waits for the
    runs in progress on it to end."""
    path = registry.resolve(model)[1].resolve() if model is not None else None
    using = [m for m in concurrency.locked_models() if path is None or m.path.resolve() == path]
    with concurrency.exclusive(using):
        for closed in llama.unload(model):
            with _decoders_lock:
                _decoders.pop(id(closed), None)


def query(function: Callable[..., Any] | str | None = None, **options: Any) -> Any:
    """Decorator: a function whose docstring is a query becomes that query; its parameters are the inputs.

    Calling it runs the query and returns the query's ``return`` value if it has one, else the :class:`Result`.
    ``options`` may name ``model``, ``decoder``, ``reuse_prompts`` and decoder arguments (``n``, ``temperature``,
    ``seed``...), and so may a call, for that call (a call's ``decoder`` drops the options its decoder does not take).
    The compiled query is at ``.query`` and the full result of a call at ``.run(...)``.

    As in LMQL, the query also sees the names where it is defined: the enclosing function's locals (as they were
    then) and the module's globals (as they are when it runs), other query functions included, which it can nest
    (``[ANSWER: chain_of_thought]``). ``query("...")`` makes a query function of a string; its inputs are passed
    by name.
    """
    if function is not None:
        return _query_function(function, options, sys._getframe(1))

    def wrap(fn: Callable[..., Any]) -> Any:
        return _query_function(fn, options, sys._getframe(1))

    return wrap


def _query_function(definition: Callable[..., Any] | str, options: Mapping[str, Any], frame: Any) -> Any:
    """The callable ``query`` makes of a decorated function or a query string defined in ``frame``."""
    if isinstance(definition, str):
        compiled, signature, name = compile(definition), None, "query"
    else:
        compiled, signature, name = compile(*_docstring_query(definition)), inspect.signature(definition), None
    scope = _Scope(frame)

    def inputs_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        if signature is None:
            if args:
                raise UsageError(None, "a query made from a string takes its inputs by name, as in q(question=...)")
            given = dict(kwargs)
        else:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            given = dict(bound.arguments)
        return {**scope.lookup(compiled.compiled(tuple(sorted(given))).missing_inputs(given, set())), **given}

    def run_call(*args: Any, **kwargs: Any) -> Result | list[Result]:
        chosen = _call_options(options, kwargs, signature.parameters if signature is not None else {})
        settings = {k: v for k, v in chosen.items() if k not in ("model", "decoder", "reuse_prompts")}
        return compiled.run(chosen.get("model"), decoder=chosen.get("decoder"), decoder_args=settings,
                            reuse_prompts=bool(chosen.get("reuse_prompts", False)), **inputs_of(args, kwargs))

    def value_call(*args: Any, **kwargs: Any) -> Any:
        result = run_call(*args, **kwargs)
        if isinstance(result, list):
            return [r.return_value if r.return_value is not None else r for r in result]
        return result.return_value if result.return_value is not None else result

    async def arun_call(*args: Any, **kwargs: Any) -> Result | list[Result]:
        return await _in_thread(run_call, *args, **kwargs)

    async def acall(*args: Any, **kwargs: Any) -> Any:
        return await _in_thread(value_call, *args, **kwargs)

    def nested(*args: Any, **kwargs: Any) -> Any:
        inputs = inputs_of(args, kwargs)
        return compiled.program_for(inputs).generator(inputs)

    call: Any = value_call
    if inspect.iscoroutinefunction(definition):  # `async def`, as LMQL writes query functions: a call is awaited

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await acall(*args, **kwargs)

    if signature is not None:
        call = functools.wraps(definition)(call)  # type: ignore[arg-type]
    else:
        call.__name__ = call.__qualname__ = name
    call.query = compiled
    call.run = run_call
    call.arun = arun_call
    call.acall = acall
    setattr(call, NESTED_ENTRY, nested)
    return call


async def _in_thread(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``function(*args, **kwargs)`` in a worker thread, so that the event loop goes on while a model runs. Called
    from a query's own Python (which awaits on the thread of the run, holding its model), it runs right there:
    a worker thread would wait for that model forever."""
    if concurrency.in_run():
        return function(*args, **kwargs)
    return await asyncio.to_thread(function, *args, **kwargs)


class _Scope:
    """The names a query function sees besides its inputs, as LMQL captures them: the locals of the function it
    was defined in, as they were then, and its module's globals, as they are when it runs."""

    def __init__(self, frame: Any) -> None:
        self.globals: dict[str, Any] = frame.f_globals
        self.locals = dict(frame.f_locals) if frame.f_locals is not frame.f_globals else {}

    def lookup(self, names: Sequence[str]) -> dict[str, Any]:
        found = {}
        for name in names:
            if name in self.locals:
                found[name] = self.locals[name]
            elif name in self.globals:
                found[name] = self.globals[name]
        return found


def _call_options(options: Mapping[str, Any], kwargs: dict[str, Any], parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The decorator's options updated by those of one call, which are taken out of ``kwargs``."""
    known = {"model", "decoder", "reuse_prompts"}.union(*(decoder_args(name) for name in DECODERS))
    given = {k: kwargs.pop(k) for k in list(kwargs) if k in known and k not in parameters}
    chosen = dict(options)
    if given.get("decoder") in DECODERS and given["decoder"] != options.get("decoder"):
        kept = {k: v for k, v in options.items() if k in ("model", "reuse_prompts")}
        chosen = {**kept, **carried_over(options, given["decoder"])}
    chosen.update(given)
    return chosen


def _docstring_query(fn: Callable[..., Any]) -> tuple[str, str, int]:
    """The query in ``fn``'s docstring, dedented, without an ``lmql`` marker; its file and line offset.

    The query is the docstring as written in the source, as LMQL reads it: ``"\\n"`` inside it stays the two
    characters a query string then reads as a newline, where Python's ``__doc__`` would hold a line break."""
    found = _docstring_source(fn)
    doc, opening = found if found is not None else (fn.__doc__, None)
    if not doc or not doc.strip():
        raise UsageError(None, f"{fn.__name__} has no docstring: @lmlang.query needs the query as its docstring")
    lines = doc.split("\n")
    skipped = 0  # lines of the docstring before the query's first: blank ones (cleandoc drops them), the marker
    while skipped < len(lines) and not lines[skipped].strip():
        skipped += 1
    if skipped < len(lines) and lines[skipped].strip() in ("lmql", "lmlang"):
        skipped += 1
    text = inspect.cleandoc("\n".join(lines[skipped:]))
    if opening is None:
        return text + "\n", "<query>", 0
    return text + "\n", inspect.getsourcefile(fn) or "<query>", opening + skipped - 1


def _docstring_source(fn: Callable[..., Any]) -> tuple[str, int] | None:
    """``fn``'s docstring as its source spells it (between the quotes) and the line of the file where it opens,
    from Python's own parse of the function; None without source or a single plain literal."""
    try:
        source_lines, first = inspect.getsourcelines(fn)
        source = textwrap.dedent("".join(source_lines))
        tree = pyast.parse(source)
    except (OSError, TypeError, SyntaxError):
        return None
    function = tree.body[0] if tree.body else None
    if not isinstance(function, (pyast.FunctionDef, pyast.AsyncFunctionDef)) or not function.body:
        return None
    literal = function.body[0]
    if not (isinstance(literal, pyast.Expr) and isinstance(literal.value, pyast.Constant)
            and isinstance(literal.value.value, str)):
        return None
    spelled = pyast.get_source_segment(source, literal.value) or ""
    quoted = re.fullmatch(r"[rRuU]?(\"\"\"|\'\'\'|\"|\')(.*)\1", spelled, re.DOTALL)
    if quoted is None:  # implicit concatenation or a byte-string: the value is what there is
        return None
    return quoted.group(2), first + literal.value.lineno - 1


def _model_of(expr: ast.Expr) -> str:
    """The model named in a ``from`` clause: a string, or the first argument of ``lmql.model("...")``."""
    node = expr.python().body
    if isinstance(node, pyast.Call) and node.args:
        node = node.args[0]
    if isinstance(node, pyast.Constant) and isinstance(node.value, str):
        return node.value
    raise ModelError(expr.span, "the 'from' clause must name a model as a string, such as from \"smollm2\"")
