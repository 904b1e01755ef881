"""LMQL's Python API around queries, over lmlang's: an LMQL program runs on local models once its import line reads
``import lmlang.lmql as lmql``.

As in LMQL, a query function defined with ``async def``, or made from a string (unless ``is_async=False``), returns
a coroutine when called; one defined with ``def`` returns its value. A query's value is what its ``return`` gives,
else the whole :class:`~lmlang.Result` (LMQL's ``LMQLResult``: ``.prompt``, ``.variables``); a decoder asked for
several results gives a list of them. ``generate``/``score`` and their ``_sync`` twins, ``F``, ``run``/``run_sync``,
``model``, ``QueryBuilder`` and ``decorators`` follow LMQL's signatures.

Each async run goes to a worker thread, so that a query's own Python may ``await``; coroutines started together
(``asyncio.gather``, LMQL's way to map a query over a list) run at the same time and share their model's decode
steps, as ``Query.map`` does.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import re
import sys
import types
import warnings
from typing import Any, Callable, Mapping, Sequence

import numpy

import lmlang
from lmlang.decoding import decorator as variable_decorators
from lmlang.decoding.catalog import DECODERS, carried_over, decoder_args
from lmlang.errors import InputError, LmlangWarning, UsageError
from lmlang.interpret.execution import NESTED_ENTRY
from lmlang.models import llama
from lmlang.models.registry import DEFAULT_MODEL
from lmlang.result import Result

__all__ = [
    "query",
    "query_from_string",
    "run",
    "run_sync",
    "run_file",
    "F",
    "generate",
    "generate_sync",
    "score",
    "score_sync",
    "model",
    "LLM",
    "set_default_model",
    "get_default_model",
    "QueryBuilder",
    "QueryExecution",
    "ScoringResult",
    "LMQLResult",
    "LMQLQueryFunction",
    "QueryFunction",
    "UnresolvedVariableError",
    "decorators",
    "is_query",
    "main",
    "tokenizer",
    "Tokenizer",
    "silent",
    "headless",
    "printing",
    "stream",
]

LMQLResult = Result  # what a query without `return` gives: `.prompt`, `.variables`, as LMQL's has

# Options a query function takes at its call besides inputs, as LMQL's do (LMQL's `model=`, `decoder=`, the
# decoders' arguments; lmlang's `reuse_prompts`). `output_writer` is LMQL's console output, handled below.
_RUN_OPTIONS = frozenset({"model", "decoder", "reuse_prompts", "output_writer"}).union(
    *(decoder_args(name) for name in DECODERS))
# The decoders LMQL's QueryBuilder accepts, and lmlang's own.
_BUILDER_DECODERS = frozenset({"argmax", "sample", "beam", "beam_var", "var", "best_k"}) | frozenset(DECODERS)


class UnresolvedVariableError(InputError, TypeError):
    """A query needs a name that neither the call nor the place it is defined gives. LMQL raises ``TypeError``
    here, so LMQL programs that catch it still do; it is lmlang's :class:`~lmlang.InputError` too."""


# ---------------------------------------------------------------------------------------------------------------
# Models


class LLM(str):
    """A model handle, as ``lmql.model`` makes it: the local model's name (an alias or a .gguf path), so it serves
    wherever a model name does (a ``from`` clause, ``model=``), with LMQL's ``generate`` and ``score`` methods."""

    model_identifier: str
    configuration: dict[str, Any]

    def __new__(cls, model_identifier: str, **configuration: Any) -> LLM:
        handle = super().__new__(cls, _local_name(model_identifier))
        handle.model_identifier = model_identifier
        handle.configuration = dict(configuration)
        return handle

    async def generate(self, prompt: str, max_tokens: int | None = None, **kwargs: Any) -> str | list[str]:
        return await generate(prompt, max_tokens, model=self, **kwargs)

    def generate_sync(self, prompt: str, max_tokens: int | None = None, **kwargs: Any) -> str | list[str]:
        return generate_sync(prompt, max_tokens, model=self, **kwargs)

    async def score(self, prompt: str, values: str | Sequence[str], **kwargs: Any) -> ScoringResult:
        return await score(prompt, values, model=self, **kwargs)

    def score_sync(self, prompt: str, values: str | Sequence[str], **kwargs: Any) -> ScoringResult:
        return score_sync(prompt, values, model=self, **kwargs)

    def __repr__(self) -> str:
        options = "".join(f", {k}={v!r}" for k, v in self.configuration.items())
        return f"lmql.model({self.model_identifier!r}{options})"


def model(model_identifier: str | LLM, **options: Any) -> LLM:
    """A handle on the local model ``model_identifier``: an alias (``"smollm2"``) or a .gguf path, also written as
    LMQL writes local models (``"local:llama.cpp:/path/model.gguf"``). Nothing loads until a query uses it.

    LMQL's loading options (``tokenizer``, ``cuda``, ``seed`` of its random model...) have no meaning for a GGUF
    file run by llama.cpp: each one given is reported with a warning."""
    if isinstance(model_identifier, LLM) and not options:
        return model_identifier
    for name in options:
        warnings.warn(f"lmql.model(..., {name}=...) has no effect: lmlang runs the GGUF file with llama.cpp, "
                      f"which reads its tokenizer and settings from the file", LmlangWarning, stacklevel=2)
    return LLM(str(getattr(model_identifier, "model_identifier", model_identifier)), **options)


def _local_name(identifier: str) -> str:
    """The lmlang model name LMQL's identifier of a local model stands for."""
    name = identifier
    for prefix in ("local:", "llama.cpp:"):
        if name.startswith(prefix):
            name = name[len(prefix):]
    return name


_default_model: str | None = None


def set_default_model(model: str | LLM | None) -> None:
    """The model of every query, ``generate`` and ``score`` that names none (``None``: lmlang's default again)."""
    global _default_model
    _default_model = model


def get_default_model() -> str:
    return _default_model if _default_model is not None else DEFAULT_MODEL


# ---------------------------------------------------------------------------------------------------------------
# Running: async calls in a worker thread each (runs on several threads share their model's decode steps)


async def _in_worker(work: Callable[[], Any]) -> Any:
    return await asyncio.to_thread(work)


# ---------------------------------------------------------------------------------------------------------------
# Console output: LMQL's output writers


class _OutputWriter:
    def __init__(self, name: str, prints: bool) -> None:
        self.name = name
        self.prints = prints

    def __repr__(self) -> str:
        return f"lmql.{self.name}"


silent = _OutputWriter("silent", False)
headless = _OutputWriter("headless", False)
printing = _OutputWriter("printing", True)


def stream(variable: str = "ANSWER", **_options: Any) -> _OutputWriter:
    """LMQL's writer that prints one variable while it is generated: accepted, and reported as having no effect."""
    return _OutputWriter(f"stream({variable!r})", True)


def _drop_output_writer(options: dict[str, Any]) -> None:
    writer = options.pop("output_writer", None)
    if writer is not None and getattr(writer, "prints", True):
        warnings.warn(f"output_writer={writer!r} has no effect: lmlang.lmql prints nothing while a query runs "
                      f"(lmlang's Query.run(on_text=...) streams the text)", LmlangWarning, stacklevel=4)


# ---------------------------------------------------------------------------------------------------------------
# Query functions


class QueryFunction:
    """A query function, as ``lmql.query`` makes it: called, it runs the query (see the module's docstring).

    ``is_async``, ``output_variables`` (the holes of the query, in order) and ``lmql_code`` are LMQL's
    attributes; ``query`` is the compiled :class:`~lmlang.Query`. Defined in a class, it is a method: the instance
    is its ``self`` input."""

    def __init__(self, source: str, compiled: lmlang.Query, *, is_async: bool, name: str,
                 call: Callable[..., Any], nested: Callable[..., Any], f_function: bool = False) -> None:
        self.lmql_code = source
        self.query = compiled
        self.is_async = is_async
        self.__name__ = self.__qualname__ = name
        self._call = call
        self._f_function = f_function
        self.__lmql_query_function__ = self
        setattr(self, NESTED_ENTRY, nested)

    @property
    def output_variables(self) -> list[str]:
        names: list[str] = []
        for site in self.query.compiled(()).sites:
            if site.depth == 0 and site.hole.name not in names:
                names.append(site.hole.name)
        return names

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.is_async:
            return _in_worker(functools.partial(self._value, args, kwargs))
        return self._value(args, kwargs)

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        return self if instance is None else _BoundQueryFunction(self, instance)

    def __repr__(self) -> str:
        return f"<lmql query function {self.__name__}>"

    def _value(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        options = dict(kwargs)
        _drop_output_writer(options)
        if "model" not in options and _default_model is not None and self.query.model_name is None:
            options["model"] = _default_model
        _sampling_by_temperature(self.query, options)
        try:
            value = self._call(*args, **options)
        except InputError as err:
            if isinstance(err, UnresolvedVariableError):
                raise
            raise UnresolvedVariableError(err.span, err.message) from None
        if self._f_function:
            return [_f_value(v) for v in value] if isinstance(value, list) else _f_value(value)
        return value


class _BoundQueryFunction:
    """A query function read from an instance: the instance is passed as the first input, ``self``, both when it
    is called and when another query nests it (``[ANSWER: self.chain_of_thought]``)."""

    def __init__(self, function: QueryFunction, instance: Any) -> None:
        self.__func__ = function
        self.__self__ = instance
        self.__name__ = function.__name__
        setattr(self, NESTED_ENTRY, functools.partial(getattr(function, NESTED_ENTRY), instance))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.__func__(self.__self__, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__func__, name)


LMQLQueryFunction = QueryFunction


def is_query(value: Any) -> bool:
    """Whether ``value`` is a query function (LMQL's or lmlang's)."""
    return hasattr(value, NESTED_ENTRY)


def query(__fct__: Callable[..., Any] | str | None = None, input_variables: Sequence[str] | None = None,
          is_async: bool = True, calling_frame: Any = None, **extra_args: Any) -> Any:
    """A query function from a function whose docstring is a query, as a decorator (``@lmql.query`` or
    ``@lmql.query(model=..., decoder=...)``), or from a string of query code.

    As in LMQL, a decorated function's own ``async def`` decides whether calling it returns a coroutine, and it
    sees the names where it is defined; a string query is async unless ``is_async=False``, sees only its inputs,
    and takes them by name, or by position in the order of ``input_variables``. ``extra_args`` (``model``,
    ``decoder``, decoder arguments) apply to every call, and a call may give its own."""
    frame = getattr(calling_frame, "frame", calling_frame)  # LMQL passes an inspect.FrameInfo
    if __fct__ is None:
        frame = frame or sys._getframe(1)

        def decorate(fn: Callable[..., Any]) -> Any:
            return query(fn, input_variables=input_variables, is_async=is_async, calling_frame=frame, **extra_args)

        return decorate
    if isinstance(__fct__, QueryFunction):
        return __fct__
    if isinstance(__fct__, str):
        return query_from_string(__fct__, input_variables, is_async=is_async, **extra_args)
    if input_variables is not None:
        raise UsageError(None, "input_variables= is for a query made from a string: a decorated function's "
                               "parameters are its inputs")
    _drop_output_writer(extra_args)
    wrapped = lmlang.query(__fct__, calling_frame=frame or sys._getframe(1), **extra_args)
    function = QueryFunction(__fct__.__doc__ or "", wrapped.query, is_async=inspect.iscoroutinefunction(__fct__),
                             name=__fct__.__name__, call=wrapped.sync, nested=getattr(wrapped, NESTED_ENTRY))
    function.__doc__ = __fct__.__doc__
    function.__wrapped__ = __fct__  # type: ignore[attr-defined]
    return function


def query_from_string(s: str, input_variables: Sequence[str] | None = None, is_async: bool = True,
                      **extra_args: Any) -> QueryFunction:
    """The query function of the query code ``s`` (LMQL's ``lmql.query(str)``): see :func:`query`."""
    f_function = bool(extra_args.pop("is_f_function", False))
    _drop_output_writer(extra_args)
    source = _without_marker(s)
    compiled = lmlang.compile(source)
    binder = _StringInputs(compiled, source, tuple(input_variables or ()))

    def call(*args: Any, **kwargs: Any) -> Any:
        inputs, given = binder.split(args, kwargs)
        options = _merged_options(extra_args, given)
        settings = {k: v for k, v in options.items() if k not in ("model", "decoder", "reuse_prompts")}
        result = compiled.run(options.get("model"), decoder=options.get("decoder"), decoder_args=settings,
                              reuse_prompts=bool(options.get("reuse_prompts", False)), **inputs)
        return [_query_value(r) for r in result] if isinstance(result, list) else _query_value(result)

    def nested(*args: Any, **kwargs: Any) -> Any:
        inputs, _ = binder.split(args, kwargs)
        return compiled.program_for(inputs).generator(inputs)

    return QueryFunction(source, compiled, is_async=is_async, name="query", call=call, nested=nested,
                         f_function=f_function)


def _without_marker(source: str) -> str:
    """Query code without LMQL's ``lmql`` marker line (``'''lmql`` opens a query string as it opens a docstring)."""
    first, newline, rest = source.lstrip(" \t\r\n").partition("\n")
    return rest if newline and first.strip() in ("lmql", "lmlang") else source


class _StringInputs:
    """How a string query's call splits into inputs and run options, as LMQL's does: positional arguments bind to
    ``input_variables`` in order (or, without them, to the names the query reads, in the order it first reads
    them); a keyword the query reads is an input, one of the run options (``model``, ``n``...) an option, and any
    other keyword an input too."""

    def __init__(self, compiled: lmlang.Query, source: str, names: tuple[str, ...]) -> None:
        self.compiled = compiled
        self.source = source
        self.signature = inspect.Signature(
            [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in names])

    def free_names(self, given: Mapping[str, Any]) -> list[str]:
        missing = self.compiled.compiled(tuple(sorted(given))).missing_inputs(given, set())
        first = {n: (m.start() if (m := re.search(rf"(?<![\w.]){re.escape(n)}\b", self.source)) else 0)
                 for n in missing}
        return sorted(missing, key=first.__getitem__)

    def split(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        read = set(self.free_names({}))
        parameters = self.signature.parameters
        inputs: dict[str, Any] = {}
        options: dict[str, Any] = {}
        for key, value in kwargs.items():
            if key in _RUN_OPTIONS and key not in read and key not in parameters:
                options[key] = value
            else:
                inputs[key] = value
        if parameters:
            bound = self.signature.bind(*args, **{k: v for k, v in inputs.items() if k in parameters})
            inputs.update(bound.arguments)
        elif args:
            names = [n for n in self.free_names(inputs)]
            if len(args) != len(names):
                raise TypeError(f"the query reads {len(names)} input{'s' if len(names) != 1 else ''} "
                                f"({', '.join(names) or 'none'}) but was given {len(args)} positional "
                                f"argument{'s' if len(args) != 1 else ''}")
            inputs.update(zip(names, args))
        return inputs, options


def _merged_options(defined: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """A query's options updated by one call's; a call naming another decoder keeps of the query's options those
    that decoder takes."""
    chosen = dict(defined)
    decoder = given.get("decoder")
    if decoder in DECODERS and decoder != defined.get("decoder"):
        kept = {k: v for k, v in defined.items() if k in ("model", "reuse_prompts")}
        chosen = {**kept, **carried_over(defined, decoder)}
    chosen.update(given)
    return chosen


def _sampling_by_temperature(compiled: lmlang.Query, options: dict[str, Any]) -> None:
    """As in LMQL, a call that gives a temperature other than 0 and no decoder samples, when the query's own
    decoder takes no temperature."""
    if "decoder" in options or not options.get("temperature"):
        return
    own = compiled.program.decoder.name if compiled.program.decoder is not None else "argmax"
    if own in DECODERS and "temperature" not in DECODERS[own].args:
        options["decoder"] = "sample"


def _query_value(result: Result) -> Any:
    """A query function's value for one result: its ``return`` value (``None`` too), else the result itself."""
    # A Result that says whether the query returned tells `return None` from no return; one that does not
    # leaves None to mean no return.
    returned = getattr(result, "returned", None)
    if returned is None:
        returned = result.return_value is not None
    return result.return_value if returned else result


def _f_value(value: Any) -> Any:
    """What an ``F`` function gives for one result: its one variable's value, or all variables by name."""
    if not isinstance(value, Result):
        return value
    if len(value.variables) == 1:
        return next(iter(value.variables.values()))
    return dict(value.variables)


def F(s: str, constraints: str | None = None, **kwargs: Any) -> QueryFunction:  # noqa: N802 - LMQL's name
    """A query function of one prompt line: ``lmql.F("Summarize: {text}: [SUMMARY]", "len(TOKENS(SUMMARY)) < 10")``.
    Calling it gives the value of its one hole (or a dict of its holes); it is synchronous unless
    ``is_async=True``, and takes its inputs by name or by position."""
    is_async = bool(kwargs.pop("is_async", False))
    line = s.replace('"', '\\"').replace("\n", "\\n")
    source = f'"{line}"' + (f" where {constraints}" if constraints is not None else "")
    return query_from_string(source, is_async=is_async, is_f_function=True, **kwargs)


async def run(code: str, *args: Any, **kwargs: Any) -> Any:
    """Compile and run the query code ``code``; positional arguments bind to the names it reads, in order."""
    return await query_from_string(code, is_async=True)(*args, **kwargs)


def run_sync(code: str, *args: Any, **kwargs: Any) -> Any:
    """:func:`run` without ``await``."""
    return query_from_string(code, is_async=False)(*args, **kwargs)


async def run_file(filepath: str, *args: Any, **kwargs: Any) -> Any:
    """Run the query in the file ``filepath`` (``.lmql`` or ``.lmq``)."""
    with open(filepath, encoding="utf-8") as file:
        code = file.read()
    return await run(code, *args, **kwargs)


def main(query_function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``query_function`` and, when it is async, run the coroutine to its end (LMQL's ``lmql.main``)."""
    value = query_function(*args, **kwargs)
    if inspect.isawaitable(value):
        return asyncio.run(_awaited(value))
    return value


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


# ---------------------------------------------------------------------------------------------------------------
# Generations API


@functools.cache
def _generation_query() -> lmlang.Query:
    return lmlang.compile('"{prompt}[RESPONSE]"\nreturn RESPONSE\n', "<lmql.generate>")


def _generate_now(prompt: str, max_tokens: int | None, model: str | None, kwargs: dict[str, Any]) -> Any:
    options = dict(kwargs)
    _drop_output_writer(options)
    if max_tokens is not None:
        options["max_tokens"] = max_tokens
    compiled = _generation_query()
    _sampling_by_temperature(compiled, options)
    unknown = sorted(set(options) - _RUN_OPTIONS)
    if unknown:
        raise UsageError(None, f"lmql.generate takes no {', '.join(unknown)}: it takes max_tokens, model, "
                               f"decoder and the decoder's arguments (temperature, n...)")
    decoder = options.pop("decoder", None)
    reuse = bool(options.pop("reuse_prompts", False))
    result = compiled.run(model or _default_model, decoder=decoder, decoder_args=options, reuse_prompts=reuse,
                          prompt=prompt)
    if isinstance(result, list):
        return [r.return_value for r in result]
    return result.return_value


async def generate(prompt: str, max_tokens: int | None = None, model: str | LLM | None = None,
                   **kwargs: Any) -> str | list[str]:
    """The text the model writes after ``prompt``: at most ``max_tokens`` tokens (default: lmlang's per-hole
    bound, 256). ``temperature=`` samples, ``n=`` with it gives a list."""
    return await _in_worker(functools.partial(_generate_now, prompt, max_tokens, model, kwargs))


def generate_sync(prompt: str, max_tokens: int | None = None, model: str | LLM | None = None,
                  **kwargs: Any) -> str | list[str]:
    """:func:`generate` without ``await``."""
    return _generate_now(prompt, max_tokens, model, kwargs)


class ScoringResult:
    """How likely a model finds each continuation of a prompt (LMQL's ``ScoringResult``).

    Each continuation is scored as a whole: ``scores(agg)`` aggregates the log-probabilities of its own tokens,
    ``"sum"`` (their total), ``"mean"`` (per token) or ``"normalized"`` (the total over the token count to the
    power ``alpha``, 0.7 unless given); ``logprobs``/``probs`` normalise those over the continuations."""

    def __init__(self, prompt: str, continuations: list[str], logprobs: list[float], num_value_tokens: list[int],
                 model_identifier: str) -> None:
        self.prompt = prompt
        self.continuations = continuations
        self.num_value_tokens = num_value_tokens
        self.model_identifier = model_identifier
        self._sums = numpy.array(logprobs, dtype=float)

    def scores(self, agg: str = "sum", **kwargs: Any) -> numpy.ndarray:
        counts = numpy.maximum(numpy.array(self.num_value_tokens, dtype=float), 1.0)
        if agg == "sum":
            return self._sums.copy()
        if agg == "mean":
            return self._sums / counts
        if agg.startswith("normalized"):
            return self._sums / counts ** float(kwargs.get("alpha", 0.7))
        raise ValueError(f"invalid aggregation: {agg} (sum, mean or normalized)")

    def logprobs(self, agg: str = "sum") -> numpy.ndarray:
        scores = self.scores(agg)
        top = scores.max()
        return scores - (top + numpy.log(numpy.exp(scores - top).sum()))

    def probs(self, agg: str = "sum") -> numpy.ndarray:
        return numpy.exp(self.logprobs(agg))

    def argmax(self, agg: str = "sum") -> str:
        return self.continuations[int(self.scores(agg).argmax())]

    @property
    def token_scores(self) -> Any:
        raise UsageError(None, "lmlang scores each continuation as a whole: use scores(agg=...), which sums, "
                               "averages or normalises its tokens' log-probabilities")

    full_token_scores = token_scores
    seqs = token_scores

    def __str__(self) -> str:
        lines = [f"lmql.ScoringResult(model={self.model_identifier!r})"]
        lines += [f"-{c!r}: {s}" for c, s in zip(self.continuations, self._sums)]
        return "\n".join(lines)


def _score_now(prompt: str, values: str | Sequence[str], model: str | None, kwargs: dict[str, Any]) -> ScoringResult:
    reuse = bool(kwargs.pop("reuse_prompts", False))
    if kwargs:
        raise UsageError(None, f"lmql.score takes no {', '.join(sorted(kwargs))}: it takes the prompt, the values, "
                               f"model and reuse_prompts")
    continuations = [values] if isinstance(values, str) else [str(v) for v in values]
    name = model or _default_model
    logprobs = lmlang.score(prompt, continuations, name, reuse_prompts=reuse)
    loaded = llama.load(name)
    counts = [len(loaded.tokenize(c)) for c in continuations]
    return ScoringResult(prompt, continuations, logprobs, counts, loaded.name)


async def score(prompt: str, values: str | Sequence[str], model: str | LLM | None = None,
                **kwargs: Any) -> ScoringResult:
    """The model's log-probability of each of ``values`` after ``prompt``, all scored in one batch."""
    return await _in_worker(functools.partial(_score_now, prompt, values, model, dict(kwargs)))


def score_sync(prompt: str, values: str | Sequence[str], model: str | LLM | None = None,
               **kwargs: Any) -> ScoringResult:
    """:func:`score` without ``await``."""
    return _score_now(prompt, values, model, dict(kwargs))


class Tokenizer:
    """A local model's tokenizer, called as LMQL's ``lmql.tokenizer(...)`` is: ``t(text)["input_ids"]``."""

    def __init__(self, model_name: str | None) -> None:
        self._model = llama.load(model_name)

    def __call__(self, text: str) -> dict[str, list[int]]:
        return {"input_ids": self.encode(text)}

    def encode(self, text: str) -> list[int]:
        return self._model.tokenize(text)

    def decode(self, ids: Sequence[int]) -> str:
        return self._model.detokenize(ids).decode("utf-8", errors="replace")


def tokenizer(model_name: str | LLM | None = None) -> Tokenizer:
    """The tokenizer of a local model (LMQL names a Hugging Face tokenizer here; lmlang reads the GGUF's)."""
    return Tokenizer(model_name if model_name is not None else _default_model)


# ---------------------------------------------------------------------------------------------------------------
# QueryBuilder


class QueryExecution:
    """A query the builder made: its code in ``query_string``, run with ``run`` (async) or ``run_sync``."""

    def __init__(self, query_string: str) -> None:
        self.query_string = query_string

    async def run(self, *args: Any, **kwargs: Any) -> Any:
        return await run(self.query_string, *args, **kwargs)

    def run_sync(self, *args: Any, **kwargs: Any) -> Any:
        return run_sync(self.query_string, *args, **kwargs)


class QueryBuilder:
    """Builds a query from its parts, as LMQL's builder does: ``QueryBuilder().set_prompt("Q: [A]")
    .set_where("len(TOKENS(A)) < 10").build().run_sync()``. ``set_where`` more than once joins with ``and``."""

    def __init__(self) -> None:
        self.decoder: tuple[str, dict[str, Any]] | None = None
        self.prompt: str | None = None
        self.model: str | None = None
        self.where: str | None = None
        self.distribution_expr: tuple[str, str] | None = None

    def set_decoder(self, decoder: str = "argmax", **kwargs: Any) -> QueryBuilder:
        if decoder not in _BUILDER_DECODERS:
            raise ValueError(f"Invalid decoder: {decoder}")
        self.decoder = (decoder, kwargs)
        return self

    def set_prompt(self, prompt: str) -> QueryBuilder:
        if self.prompt is not None:
            raise ValueError("the prompt is set once: give the whole prompt to a single set_prompt call")
        self.prompt = prompt
        return self

    def set_model(self, model: str) -> QueryBuilder:
        self.model = model
        return self

    def set_where(self, where: str) -> QueryBuilder:
        self.where = where if self.where is None else f"{self.where} and {where}"
        return self

    def set_distribution(self, variable: str, expr: str) -> QueryBuilder:
        self.distribution_expr = (variable, expr)
        return self

    def build(self) -> QueryExecution:
        parts = []
        if self.decoder is not None:
            name, args = self.decoder
            parts.append(name + (f"({', '.join(f'{k}={v!r}' for k, v in args.items())})" if args else ""))
        if self.prompt is not None:
            parts.append(f'"{self.prompt}"')
        if self.model is not None:
            parts.append(f'from "{self.model}"')
        if self.where is not None:
            parts.append(f"where {self.where}")
        if self.distribution_expr is not None:
            parts.append(f"distribution {self.distribution_expr[0]} in {self.distribution_expr[1]}")
        return QueryExecution(" ".join(parts))


# ---------------------------------------------------------------------------------------------------------------
# Variable decorators: `[@fn VAR]` runs fn after generation; these mark the other stages.

decorators = types.ModuleType("lmlang.lmql.decorators", "LMQL's variable decorator stages: streaming, pre.")
decorators.streaming = variable_decorators.streaming  # type: ignore[attr-defined]
decorators.pre = variable_decorators.pre  # type: ignore[attr-defined]
decorators.ProgramState = variable_decorators.ProgramState  # type: ignore[attr-defined]
decorators.TemplateVariable = variable_decorators.TemplateVariable  # type: ignore[attr-defined]
ProgramState = variable_decorators.ProgramState
TemplateVariable = variable_decorators.TemplateVariable
