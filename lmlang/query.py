"""The front door: compile a query, run it on a model, get a :class:`Result`.

``compile(source) -> Query``, ``Query.run(model=None, **inputs)``, ``run(source, model=None, **inputs)``, the
``@query`` decorator over a Python function whose docstring is a query, and ``unload(model)`` to free a model's
memory. Runs go to a :class:`~lmlang.session.Session` (the process-wide one unless ``session=`` names another),
which owns the loaded models and what is kept for them.
"""

from __future__ import annotations

import ast as pyast
import dataclasses
import functools
import inspect
import re
import sys
import textwrap
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from lmlang import concurrency
from lmlang.check import check
from lmlang.decoding.catalog import DECODERS, carried_over, decoder_args
from lmlang.decoding.decoder import Decoder
from lmlang.decoding.settings import DecoderSettings, TextSink
from lmlang.errors import InputError, ModelError, UsageError
from lmlang.interpret import namespace
from lmlang.interpret.execution import NESTED_ENTRY, CompiledProgram
from lmlang.mapping import map_rows
from lmlang.result import Result
from lmlang.session import Session, default_session
from lmlang.syntax import ast, parse


def decoder_for(model: Any) -> Decoder:
    """The process-wide session's decoder for a loaded ``model``."""
    return default_session().decoder(model)


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
        """The model the query's ``from`` clause names as a string, if any."""
        if self.program.model is None or _model_literal(self.program.model) is None:
            return None
        return _model_of(self.program.model, {})

    def model_for(self, inputs: Mapping[str, Any]) -> str | None:
        """The model the ``from`` clause names, a Python expression (``from MODEL``) evaluated in ``inputs``."""
        return _model_of(self.program.model, inputs) if self.program.model is not None else None

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

    def run(self, /, model: str | None = None, *, decoder: str | None = None,
            decoder_args: Mapping[str, Any] | None = None, on_text: TextSink | None = None,
            reuse_prompts: bool = False, deterministic: bool = False, session: Session | None = None,
            **inputs: Any) -> Result | list[Result]:
        """Run the query. ``model`` overrides the ``from`` clause; ``decoder``/``decoder_args`` override the
        decoder clause. A decoder asked for ``n > 1`` results returns a list.

        Runs on several threads at once share the model's decode steps (continuous batching), which can turn a
        near tie: ``deterministic`` runs alone on the model instead (waiting for the runs in progress), so the
        result is exactly that of a run with nothing else going on.

        ``reuse_prompts``: start from the prompts earlier runs left in the model's cache instead of an empty
        cache. Faster when runs share a long prefix (few-shot examples), but the result may then differ from a
        fresh run's where the model's top choices nearly tie. ``session``: where the models and caches are kept
        (default: the process-wide one)."""
        overrides = dict(decoder_args or {})
        if decoder is not None:
            overrides["decoder"] = decoder
        settings = DecoderSettings.from_clause(_computed_arguments(self.program.decoder, inputs), overrides)
        program = self.program_for(inputs)
        if not program.sites:  # nothing to decode: every run gives the same result, so there is one, as in LMQL
            settings = dataclasses.replace(settings, n=1, k=None)
        reuse = reuse_prompts or bool(settings.cache)
        results = (session or default_session()).run(program, inputs, settings, model or self.model_for(inputs),
                                                      on_text=on_text, reuse_prompts=reuse,
                                                      multi_model=self.multi_model, deterministic=deterministic)
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
        ``options`` are ``run``'s. The runs on one model share its decode steps, so several rows cost little more
        than one (``deterministic=True``: one at a time, each exactly as alone)."""
        if errors not in ("return", "raise"):
            raise UsageError(None, f"errors is 'return' or 'raise', not {errors!r}")
        for item in map_rows(self, rows, model, concurrency=concurrency, **options):
            if item.failed and errors == "raise":
                raise item.outcome
            yield item.outcome

    def score(self, candidates: Sequence[str], /, model: str | None = None, *, reuse_prompts: bool = False,
              session: Session | None = None, **inputs: Any) -> list[float]:
        """The log-probability of each candidate as the value of the query's last hole (the one a
        ``distribution`` clause scores), after running the query up to it; all candidates in one batch."""
        settings = DecoderSettings.from_clause(_computed_arguments(self.program.decoder, inputs), {})
        program = self.compiled(tuple(sorted(inputs)))
        return (session or default_session()).score_program(program, inputs, settings, [str(c) for c in candidates],
                                                             model or self.model_for(inputs),
                                                             reuse_prompts=reuse_prompts, multi_model=self.multi_model)


def compile(source: str, name: str = "<query>", line_offset: int = 0) -> Query:  # noqa: A001 - the API's name
    """Parse and check ``source``; raises the first ``LmlangSyntaxError``/``CheckError`` found. A source indented
    as a whole (a triple-quoted string in Python code) is dedented first, as LMQL does."""
    program = parse(textwrap.dedent(_without_marker(source)), name, line_offset)
    problems = check(program)
    if problems:
        raise problems[0]
    return Query(program, name)


def _without_marker(source: str) -> str:
    """``source`` without a first line ``lmql`` (LMQL's marker of a query string), kept as an empty line so that
    line numbers stay; the query may then be indented deeper than the marker, as in a docstring."""
    first, newline, rest = source.partition("\n")
    return newline + rest if newline and first.strip() in ("lmql", "lmlang") else source


def _computed_arguments(clause: ast.DecoderClause | None, inputs: Mapping[str, Any]) -> ast.DecoderClause | None:
    """The decoder clause with each argument that is not a constant (``argmax(n=n)``) evaluated in ``inputs``."""
    if clause is None:
        return None
    arguments = []
    for argument in clause.args:
        try:
            pyast.literal_eval(argument.value.source.strip())
        except (ValueError, SyntaxError):
            value = _evaluate(argument.value, inputs, "the decoder argument")
            argument = dataclasses.replace(argument, value=dataclasses.replace(argument.value, source=repr(value)))
        arguments.append(argument)
    return dataclasses.replace(clause, args=tuple(arguments))


def _evaluate(expr: ast.Expr, inputs: Mapping[str, Any], what: str) -> Any:
    try:
        return namespace.evaluate(expr.python(), inputs)
    except NameError as err:
        name = getattr(err, "name", None) or str(err)
        raise InputError(expr.span, f"{what} uses '{name}', which nothing defines: pass it as an input") from None
    except Exception as err:  # the query's own Python: any failure is the user's to see
        raise UsageError(expr.span, f"{what} {expr.source.strip()} raised {type(err).__name__}: {err}") from None


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
          reuse_prompts: bool = False, session: Session | None = None) -> list[float]:
    """log P(continuation | prompt) under ``model`` for each continuation, all evaluated in one batch."""
    return (session or default_session()).score_text(prompt, [str(c) for c in continuations], model,
                                                      reuse_prompts=reuse_prompts)


def load(model: str | None = None, *, extra_buffer_types: bool | None = None, n_ctx: int | None = None,
         n_seq_max: int | None = None) -> None:
    """Load a model now (an alias or a .gguf path; ``None``: the default) instead of on its first query.

    ``n_ctx``: the tokens of its context (default 4096), shared by the runs in flight on it; ``n_seq_max``: how
    many sequences they may use at once (default 16; a run uses one, more for ``sample(n)`` and beams), runs
    that find none free wait for one.

    ``extra_buffer_types``: let llama.cpp repack the weights into its faster CPU layouts (True) or not (False);
    ``None`` decides by the machine, as the environment variable ``LMLANG_EXTRA_BUFFER_TYPES`` may too: off where
    llama.cpp's AMX kernels would run, since they crash (README, "Troubleshooting"). A model already loaded keeps
    its buffers: unload it first to change them.
    """
    for name, size in (("n_ctx", n_ctx), ("n_seq_max", n_seq_max)):
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 1):
            raise UsageError(None, f"{name} is a whole number, 1 or more (got {size!r})")
    default_session().load(model, extra_buffer_types=extra_buffer_types, n_ctx=n_ctx, n_seq_max=n_seq_max)


def unload(model: str | None = None) -> None:
    """Free the memory of a loaded model (an alias or a .gguf path; ``None``: every loaded model) and its cached
    prompts. A later query on it loads it again. Nothing happens for a model that is not loaded. Waits for the
    runs in progress on it to end."""
    default_session().unload(model)


def query(function: Callable[..., Any] | str | None = None, **options: Any) -> Any:
    """Decorator: a function whose docstring is a query becomes that query; its parameters are the inputs.

    Calling it runs the query and returns the query's ``return`` value if it has one, else the :class:`Result`.
    ``options`` may name ``model``, ``decoder``, ``reuse_prompts`` and decoder arguments (``n``, ``temperature``,
    ``seed``...), and so may a call, for that call (a call's ``decoder`` drops the options its decoder does not take).
    The compiled query is at ``.query`` and the full result of a call at ``.run(...)``.

    As in LMQL, the query also sees the names where it is defined: the enclosing function's locals (as they were
    then) and the module's globals (as they are when it runs), other query functions included, which it can nest
    (``[ANSWER: chain_of_thought]``). ``query("...")`` makes a query function of a string; its inputs are passed
    by name. ``calling_frame`` (a frame, as LMQL's ``query`` takes it) names the place the query is defined,
    for a wrapper (``lmlang.lmql``) that is not that place itself.
    """
    frame = options.pop("calling_frame", None)
    if function is not None:
        return _query_function(function, options, frame or sys._getframe(1))

    def wrap(fn: Callable[..., Any]) -> Any:
        return _query_function(fn, options, frame or sys._getframe(1))

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
            # As in LMQL, a keyword the function does not declare is an input of the query all the same.
            extra = {} if _takes_any_keyword(signature) else {k: kwargs.pop(k) for k in list(kwargs)
                                                             if k not in signature.parameters}
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            given = {**bound.arguments, **extra}
        program = compiled.compiled(tuple(sorted(given)))
        wanted = program.missing_inputs(given, set()) + sorted(program.clause_names - set(given))
        return {**scope.lookup(wanted), **given}

    def run_call(*args: Any, **kwargs: Any) -> Result | list[Result]:
        chosen = _call_options(options, kwargs, signature.parameters if signature is not None else {})
        settings = {k: v for k, v in chosen.items() if k not in ("model", "decoder", "reuse_prompts")}
        return compiled.run(chosen.get("model"), decoder=chosen.get("decoder"), decoder_args=settings,
                            reuse_prompts=bool(chosen.get("reuse_prompts", False)), **inputs_of(args, kwargs))

    def value_call(*args: Any, **kwargs: Any) -> Any:
        result = run_call(*args, **kwargs)
        if isinstance(result, list):
            return [r.return_value if r.returned else r for r in result]
        return result.return_value if result.returned else result

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
    call.sync = value_call  # the value without awaiting, whether the function is `async def` or not
    setattr(call, NESTED_ENTRY, nested)
    return call


def _takes_any_keyword(signature: inspect.Signature) -> bool:
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values())


async def _in_thread(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``function(*args, **kwargs)`` in a worker thread, so that the event loop goes on while a model runs. Called
    from a query's own Python (which awaits on the thread of the run, holding its model), it runs right there:
    a worker thread would wait for that model forever."""
    if concurrency.in_run():
        return function(*args, **kwargs)
    import asyncio  # here, not at the top: every CLI start would pay for importing it

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
    doc, opening = found if found is not None else (_reescaped(fn.__doc__ or ""), None)
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
        source = "".join(source_lines)
        # A function defined inside another is indented: parsed inside a block as written, since dedenting its
        # text would also dedent its docstring, whose lines need not share the function's indentation.
        indented = source[:1].isspace()
        if indented:
            source = "if True:\n" + source
        tree = pyast.parse(source)
    except (OSError, TypeError, SyntaxError):
        return None
    body = tree.body[0].body if indented and tree.body and isinstance(tree.body[0], pyast.If) else tree.body
    function = body[0] if body else None
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
    if inspect.cleandoc(literal.value.value) != inspect.cleandoc(fn.__doc__ or ""):
        return None  # the source found is not the one the function was made from (a file changed since)
    return quoted.group(2), first + literal.value.lineno - 1 - indented


def _reescaped(doc: str) -> str:
    """A docstring's value with the escapes it lost written again where that is sure: a line break or another
    control character inside a one-line string literal can only have been an escape (``"\\n"``), since such a
    literal cannot span lines. Line breaks elsewhere, and in triple-quoted strings, mean the same either way."""
    out: list[str] = []
    quote: str | None = None
    i = 0
    while i < len(doc):
        char = doc[i]
        if quote is None:
            if char == "#":  # a comment: quotes in it open nothing
                end = doc.find("\n", i)
                end = len(doc) if end < 0 else end
                out.append(doc[i:end])
                i = end
            elif char in "'\"":
                quote = doc[i:i + 3] if doc[i:i + 3] in ('"""', "\'\'\'") else char
                out.append(quote)
                i += len(quote)
            else:
                out.append(char)
                i += 1
        elif char == "\\":
            out.append(doc[i:i + 2])
            i += 2
        elif doc.startswith(quote, i):
            out.append(quote)
            i += len(quote)
            quote = None
        elif len(quote) == 1 and char < " " and char != "\t":
            out.append(repr(char)[1:-1])
            i += 1
        else:
            out.append(char)
            i += 1
    return "".join(out)


def _model_literal(expr: ast.Expr) -> str | None:
    """The model a ``from`` clause spells: a string, or the first argument of ``lmql.model("...")``."""
    node = expr.python().body
    if isinstance(node, pyast.Call) and node.args:
        node = node.args[0]
    return node.value if isinstance(node, pyast.Constant) and isinstance(node.value, str) else None


def _model_of(expr: ast.Expr, inputs: Mapping[str, Any]) -> str:
    """The model named in a ``from`` clause: spelled there, or the value of its Python expression (``from M``,
    ``lmql.model(M)``) in ``inputs``."""
    found = _model_literal(expr)
    if found is None:
        found = _evaluate(expr, inputs, "the 'from' clause")
    if not isinstance(found, str):
        raise ModelError(expr.span, f"the 'from' clause must name a model as a string, such as from \"smollm2\", "
                                    f"not {found!r}")
    return found


namespace.FRONT_DOOR.update(query=query, run=run)
