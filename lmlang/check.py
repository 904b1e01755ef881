"""The checker: finds what makes a parsed query invalid before anything runs, each problem with its span.

It reports, rather than raises, so that an editor can show every problem at once. What it checks:

* a constraint must constrain holes: the constrained variable (the first argument of INT, STOPS_AT, TOKENS..., the
  argument of ``len``, the left operand of a comparison or ``in``) must be a hole of the query string the
  constraint belongs to (inline ``where``) or of the program (a ``where`` clause);
* every function a constraint calls is a constraint function, a Python builtin, or a name the program defines,
  imports or receives as an input; constraint functions get the number of arguments they take;
* the decoder exists and takes the arguments given;
* ``distribution`` scores the last hole of its query string (of the whole prompt, for the clause form);
* a hole typed with a regex has a regex Python can compile;
* an ensemble votes on a hole of its block and takes each of its options (``samples``, ``temperature``) at most
  once, with a valid value when it is written as a literal.

Nested queries are checked too, with their parameters as inputs.
"""

from __future__ import annotations

import ast as pyast
import builtins
import difflib
import re
import textwrap
from typing import Any, Callable, Iterable, Iterator

from lmlang.constraints.catalog import CONSTRAINT_FUNCTIONS, canonical
from lmlang.decoding.catalog import COMMON_ARGS, DECODERS, LMQL_ONLY, argument_problem, decoder_args
from lmlang.errors import CheckError
from lmlang.source import Span
from lmlang.syntax.ast import (
    Argument,
    Cascade,
    DecoderClause,
    Distribution,
    Ensemble,
    Expr,
    For,
    FunctionDef,
    Hole,
    Program,
    PyStmt,
    QueryDef,
    QueryStmt,
    Route,
    holes,
    walk,
)

# Constraint functions whose first argument is the variable they constrain.
_CONSTRAINING = ("INT", "FLOAT", "REGEX", "STOPS_AT", "STOPS_BEFORE", "STARTS_WITH", "TOKENS", "WORDS", "JSON", "len")
_BUILTINS = frozenset(dir(builtins))

# An ensemble's options and the values each takes.
ENSEMBLE_OPTIONS = {"samples": "a whole number >= 1", "temperature": "a number >= 0"}


# Says whether a name is a model, without loading it: None if it is, else (code, message). The faces pass the
# registry's (lmlang.models.names.model_name_problem); the checker itself knows no models.
ModelResolver = Callable[[str], "tuple[str, str] | None"]


def check(program: Program, inputs: Iterable[str] | None = None,
          models: ModelResolver | None = None) -> list[CheckError]:
    """Every problem of ``program`` (and of its nested queries), in source order; empty when it is valid.
    With ``models``, every model the query names by a string literal is looked up too."""
    errors = list(_Checker(program, frozenset(inputs or ())).errors())
    if models is not None:
        errors += model_name_problems(program, models)
    return sorted(errors, key=lambda e: (e.span.start if e.span else -1))


class _Checker:
    def __init__(self, program: Program, inputs: frozenset[str]) -> None:
        self.program = program
        self.defined = inputs | _defined_names(program)
        self.wildcard_import = any(
            isinstance(s, PyStmt) and s.kind == "import" and re.search(r"\bimport\s*\*", s.source) for s in walk(program.body)
        )

    def errors(self) -> Iterator[CheckError]:
        if self.program.decoder is not None:
            yield from _check_decoder(self.program.decoder)
        all_holes = holes(self.program)
        for statement in walk(self.program.body):
            if isinstance(statement, QueryStmt):
                yield from self._check_query_stmt(statement)
            elif isinstance(statement, QueryDef):
                yield from self._check_query_def(statement)
            elif isinstance(statement, Ensemble):
                yield from _check_ensemble(statement)
        if self.program.where is not None:
            yield from self._check_constraint(self.program.where, all_holes, "this query")
        if self.program.distribution is not None:
            yield from _check_distribution(self.program.distribution, all_holes, "the prompt")

    def _check_query_stmt(self, statement: QueryStmt) -> Iterator[CheckError]:
        own = statement.string.holes
        for hole in own:
            yield from _check_hole_type(hole)
        if statement.where is not None:
            yield from self._check_constraint(statement.where, own, "this query string")
        if statement.distribution is not None:
            yield from _check_distribution(statement.distribution, own, "this query string")

    def _check_query_def(self, definition: QueryDef) -> Iterator[CheckError]:
        for option in definition.options:
            if option.name == "decoder":
                yield from _check_decoder_option(option.value)
        yield from _Checker(definition.query, self.defined | frozenset(definition.param_names)).errors()

    # -------------------------------------------------------------------------------------------- constraints

    def _check_constraint(self, constraint: Expr, allowed: tuple[Hole, ...], scope: str) -> Iterator[CheckError]:
        tree = constraint.python()
        hole_names = list(dict.fromkeys(h.name for h in allowed))
        for variable in _constrained_variables(tree):
            if variable.id not in hole_names:
                yield CheckError(constraint.span_of(variable), _not_a_hole(variable.id, hole_names, scope), code="not-a-hole")
        for call in (n for n in pyast.walk(tree) if isinstance(n, pyast.Call) and isinstance(n.func, pyast.Name)):
            yield from self._check_call(constraint, call)
        for call in _regex_calls(tree):
            pattern = call.args[1]
            if isinstance(pattern, pyast.Constant) and isinstance(pattern.value, str):
                yield from _check_regex(pattern.value, constraint.span_of(pattern))

    def _check_call(self, constraint: Expr, call: pyast.Call) -> Iterator[CheckError]:
        name = call.func.id  # type: ignore[attr-defined]
        span = constraint.span_of(call.func)
        if name in self.defined:  # the query's own names shadow the language's, as in Python
            return
        signature = CONSTRAINT_FUNCTIONS.get(canonical(name))
        if signature is None:
            if name not in _BUILTINS and not self.wildcard_import:
                yield CheckError(span, _unknown_function(name), code="unknown-function")
            return
        count = len(call.args) + len([k for k in call.keywords if k.arg not in signature.keywords])
        if not signature.min_args <= count <= signature.max_args:
            wanted = str(signature.min_args) if signature.min_args == signature.max_args else f"{signature.min_args} or {signature.max_args}"
            plural = "" if wanted == "1" else "s"
            yield CheckError(constraint.span_of(call), f"{name} takes {wanted} argument{plural}, as in {signature.usage}, but is given {count}", code="wrong-arguments")


def _constrained_variables(tree: pyast.AST) -> Iterator[pyast.Name]:
    """The variable of every constraint in ``tree`` that names one (not a comprehension's or lambda's own)."""
    own = {n.id for c in pyast.walk(tree) if isinstance(c, pyast.comprehension) for n in pyast.walk(c.target)
           if isinstance(n, pyast.Name)}
    own |= {a.arg for f in pyast.walk(tree) if isinstance(f, pyast.Lambda) for a in pyast.walk(f.args)
            if isinstance(a, pyast.arg)}
    yield from (name for name in _named_variables(tree) if name.id not in own)


def _named_variables(tree: pyast.AST) -> Iterator[pyast.Name]:
    for node in pyast.walk(tree):
        if isinstance(node, pyast.Call) and isinstance(node.func, pyast.Name) and canonical(node.func.id) in _CONSTRAINING:
            if node.args and isinstance(node.args[0], pyast.Name):
                yield node.args[0]
        elif isinstance(node, pyast.Compare):
            if isinstance(node.left, pyast.Name):
                yield node.left
            elif _is_substring_test(node):
                yield node.comparators[0]  # type: ignore[misc]


def _is_substring_test(node: pyast.Compare) -> bool:
    """``"\\n" in VAR`` / ``"x" not in VAR``: the text is the constant, the variable is on the right."""
    return (
        isinstance(node.left, pyast.Constant)
        and len(node.ops) == 1
        and isinstance(node.ops[0], (pyast.In, pyast.NotIn))
        and isinstance(node.comparators[0], pyast.Name)
    )


def _regex_calls(tree: pyast.AST) -> Iterator[pyast.Call]:
    for node in pyast.walk(tree):
        if isinstance(node, pyast.Call) and isinstance(node.func, pyast.Name) and node.func.id == "REGEX" and len(node.args) == 2:
            yield node


def _not_a_hole(name: str, hole_names: list[str], scope: str) -> str:
    if not hole_names:
        return f"'{name}' is not a hole: {scope} has no holes; a constraint needs a hole like [{name}] to constrain"
    close = difflib.get_close_matches(name, hole_names, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"'{name}' is not a hole of {scope}{hint}; holes are: {', '.join(hole_names)}"


def _unknown_function(name: str) -> str:
    known = sorted(CONSTRAINT_FUNCTIONS)
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    return f"unknown constraint function '{name}': {hint}use one of {', '.join(known)}, or define or import it"


# ---------------------------------------------------------------------------------------------------- decoders


def _check_decoder(decoder: DecoderClause) -> Iterator[CheckError]:
    if decoder.name in LMQL_ONLY:
        yield CheckError(decoder.span.shifted(0, len(decoder.name)),
                         f"the decoder {decoder.name} ({LMQL_ONLY[decoder.name]}) is not available in lmlang: "
                         "use beam(n=...) or sample(n=...)", code="lmql-only-decoder")
        return
    if decoder.name not in DECODERS:
        yield CheckError(decoder.span.shifted(0, len(decoder.name)), _unknown_decoder(decoder.name), code="unknown-decoder")
        return
    accepted = decoder_args(decoder.name)
    for argument in decoder.args:
        if decoder.name == "argmax" and argument.name == "n" and _literal(argument.value) not in (1, None):
            yield CheckError(argument.span, "argmax gives one result: use sample(n=...) or beam(n=...) for several",
                             code="decoder-argument")
        problem = argument_problem(argument.name, _literal(argument.value)) if _constant(argument.value) else None
        if problem is not None:
            yield CheckError(argument.span, problem, code="decoder-argument")
        if argument.name not in accepted:
            own = DECODERS[decoder.name].args
            takes = f"it takes {', '.join(own)} and" if own else "it takes only"
            yield CheckError(
                argument.span,
                f"{decoder.name} does not take '{argument.name}': {takes} the common options {', '.join(COMMON_ARGS)}",
                code="decoder-argument",
            )


def _constant(value: Expr) -> bool:
    """Whether the value is written as a constant (a computed one is the runtime's to check)."""
    try:
        pyast.literal_eval(value.source.strip())
    except (ValueError, SyntaxError):
        return False
    return True


def _literal(value: Expr) -> Any:
    """A constant written in the query, or None for a computed value (the runtime checks it)."""
    try:
        return pyast.literal_eval(value.source.strip())
    except (ValueError, SyntaxError):
        return None


def _check_decoder_option(value: Expr) -> Iterator[CheckError]:
    node = value.python().body
    if isinstance(node, pyast.Constant) and isinstance(node.value, str) and node.value not in DECODERS:
        yield CheckError(value.span, _unknown_decoder(node.value), code="unknown-decoder")


def _unknown_decoder(name: str) -> str:
    close = difflib.get_close_matches(name, list(DECODERS), n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    return f"unknown decoder '{name}': {hint}use one of {', '.join(DECODERS)}"


# ---------------------------------------------------------------------------------------------------- ensembles


def _check_ensemble(ensemble: Ensemble) -> Iterator[CheckError]:
    own = list(dict.fromkeys(h.name for s in walk(ensemble.body) if isinstance(s, QueryStmt) for h in s.string.holes))
    if ensemble.var not in own:
        yield CheckError(ensemble.var_span, _not_a_voted_hole(ensemble.var, own), code="not-a-voted-hole")
    given: set[str] = set()
    for option in ensemble.options:
        if option.name not in ENSEMBLE_OPTIONS:
            yield CheckError(option.span, f"an ensemble has no option '{option.name}': it takes {_ensemble_options()}", code="ensemble-option")
        elif option.name in given:
            yield CheckError(option.span, f"a second {option.name}= option: an ensemble takes each option once", code="ensemble-option")
        else:
            yield from _check_literal_option(option)
        given.add(str(option.name))


def _not_a_voted_hole(name: str, hole_names: list[str]) -> str:
    if not hole_names:
        return f"vote {name} needs a hole [{name}] in the ensemble's block, which has no holes"
    close = difflib.get_close_matches(name, hole_names, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"vote {name} names no hole of the ensemble's block{hint}; its holes are: {', '.join(hole_names)}"


def _ensemble_options() -> str:
    return " and ".join(f"{name}=" for name in ENSEMBLE_OPTIONS)


def _check_literal_option(option: Argument) -> Iterator[CheckError]:
    try:
        value = pyast.literal_eval(option.value.source.strip())
    except (ValueError, SyntaxError):
        return  # computed: the runtime checks its value
    problem = ensemble_option_problem(str(option.name), value)
    if problem is not None:
        yield CheckError(option.value.span, problem, code="ensemble-option")


def ensemble_option_problem(name: str, value: Any) -> str | None:
    """What is wrong with ``value`` for the ensemble option ``name`` (one of ENSEMBLE_OPTIONS), if anything."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    valid = number and value >= 0 and (name != "samples" or (isinstance(value, int) and value >= 1))
    return None if valid else f"{name}= takes {ENSEMBLE_OPTIONS[name]}, not {value!r}"


# ---------------------------------------------------------------------------------------------------- holes


def _check_distribution(distribution: Distribution, candidates: tuple[Hole, ...], scope: str) -> Iterator[CheckError]:
    if not candidates:
        yield CheckError(distribution.var_span, f"{scope} has no hole for distribution to score: add a hole [{distribution.var}] at its end", code="distribution")
    elif candidates[-1].name != distribution.var:
        last = candidates[-1].name
        yield CheckError(
            distribution.var_span,
            f"distribution scores the last hole of {scope}, which is '{last}', not '{distribution.var}': name {last} or move [{distribution.var}] to the end",
            code="distribution",
        )


def _check_hole_type(hole: Hole) -> Iterator[CheckError]:
    if hole.type is not None and hole.type.kind == "regex" and hole.type.pattern is not None:
        yield from _check_regex(hole.type.pattern, hole.type.span)


def _check_regex(pattern: str, span: Span) -> Iterator[CheckError]:
    try:
        re.compile(pattern)
    except re.error as error:
        yield CheckError(span, f"invalid regex: {error}; fix the pattern (Python's re syntax)", code="invalid-regex")


# ---------------------------------------------------------------------------------------------------- names


def _defined_names(program: Program) -> frozenset[str]:
    """Names the program binds: assignments, imports, functions, loop variables and holes."""
    names: set[str] = {h.name for h in holes(program)}
    for statement in walk(program.body):
        if isinstance(statement, (FunctionDef, QueryDef)):
            names.add(statement.name)
        elif isinstance(statement, For):
            names.update(n.id for n in pyast.walk(statement.target.python()) if isinstance(n, pyast.Name))
        elif isinstance(statement, PyStmt):
            names.update(_bound_by(statement))
    return frozenset(names)


def _bound_by(statement: PyStmt) -> set[str]:
    # Later lines of a statement keep the file's indentation: indent the first line to match, then dedent.
    text = textwrap.dedent(" " * (statement.span.column - 1) + statement.source)
    try:
        tree = pyast.parse(text)
    except SyntaxError:
        return set()
    names: set[str] = set()
    for node in pyast.walk(tree):
        if isinstance(node, pyast.Name) and isinstance(node.ctx, pyast.Store):
            names.add(node.id)
        elif isinstance(node, (pyast.FunctionDef, pyast.AsyncFunctionDef, pyast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (pyast.Import, pyast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def model_name_problems(program: Program, models: ModelResolver) -> Iterator[CheckError]:
    """A problem for each model name ``models`` does not know."""
    for expr, name in model_names(program):
        problem = models(name)
        if problem is not None:
            yield CheckError(expr.span, problem[1], code=problem[0])


def model_names(program: Program) -> Iterator[tuple[Expr, str]]:
    """Every model named by string literals: ``from``, ``cascade``, ``ensemble``, ``route``'s ``by=``, a nested
    query's ``model=``."""
    exprs: list[Expr] = [program.model] if program.model is not None else []
    for stmt in walk(program.body):
        if isinstance(stmt, (Cascade, Ensemble)):
            exprs.extend(stmt.models)
        elif isinstance(stmt, Route):
            exprs.extend(a.value for a in stmt.header if a.name == "by")
        elif isinstance(stmt, QueryDef):
            exprs.extend(a.value for a in stmt.options if a.name == "model")
            yield from model_names(stmt.query)
    for expr in exprs:
        value = _string_literal(expr)
        if value is not None:
            yield expr, value


def _string_literal(expr: Expr) -> str | None:
    """The model name ``expr`` gives if it is a string literal (other expressions are known only when it runs)."""
    try:
        value = pyast.literal_eval(expr.source.strip())
    except (ValueError, SyntaxError):
        return None
    return value if isinstance(value, str) else None
