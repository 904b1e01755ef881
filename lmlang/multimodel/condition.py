"""The condition of a cascade: a Python expression over the block's variables and confidence measures.

Measures name a hole of the block: ``margin(V)`` (first-token probability of the best token minus the second),
``logprob(V)`` (mean log-probability of V's tokens), ``consistency(V, k)`` (share of k sampled re-runs of the
block giving the same V). ``threshold("name")`` reads a calibrated number. Constraint functions (``INT(V)``,
``REGEX(V, r"...")``, ``STARTS_WITH(V, "x")``) work as validity checks, and so does any Python predicate.

``margin(V)`` means the hole ``V``, not its value: calls of the measures get the hole's name, which is why the
expression is rewritten before Python compiles it.
"""

from __future__ import annotations

import ast as pyast
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lmlang.constraints.plan import PREDICATE_FUNCTIONS as CONSTRAINT_PREDICATES
from lmlang.errors import InputError, LmlangError, QueryRuntimeError
from lmlang.interpret import namespace
from lmlang.multimodel import thresholds
from lmlang.multimodel.stage import Stage
from lmlang.syntax import ast

MEASURES = ("margin", "logprob", "consistency")

# Re-runs the block k times with sampling; the variables each run bound.
Resampler = Callable[[int], list[dict[str, Any]]]


@dataclass
class Verdict:
    """Whether the stage's answer is accepted, and what was measured on the way."""

    accepted: bool
    measures: dict[str, float] = field(default_factory=dict)
    thresholds: dict[str, float] = field(default_factory=dict)


def compile_condition(expr: ast.Expr, shadowed: frozenset[str] = frozenset()) -> Any:
    """Python code for the condition, with each measure's first argument turned into the hole's name (unless a
    name of the query, in ``shadowed``, hides the measure)."""
    try:
        tree = expr.python()
    except SyntaxError as err:
        raise QueryRuntimeError(expr.span, f"the condition is not a Python expression: {err.msg}") from None
    _NameArguments(shadowed).visit(tree)
    return compile(pyast.fix_missing_locations(tree), "<cascade condition>", "eval")


class _NameArguments(pyast.NodeTransformer):
    def __init__(self, shadowed: frozenset[str]) -> None:
        self.shadowed = shadowed

    def visit_Call(self, node: pyast.Call) -> pyast.AST:
        self.generic_visit(node)
        if isinstance(node.func, pyast.Name) and node.func.id in MEASURES and node.func.id not in self.shadowed \
                and node.args:
            first = node.args[0]
            if isinstance(first, pyast.Name):
                node.args[0] = pyast.copy_location(pyast.Constant(first.id), first)
        return node


def literal_thresholds(expr: ast.Expr) -> list[float]:
    """The numbers a measure is compared with in the condition (``margin(V) >= 0.4`` gives 0.4)."""
    found = []
    for node in pyast.walk(expr.python()):
        if isinstance(node, pyast.Compare):
            for side in (node.left, *node.comparators):
                if isinstance(side, pyast.Constant) and isinstance(side.value, (int, float)) \
                        and not isinstance(side.value, bool):
                    found.append(float(side.value))
    return found


def judge(expr: ast.Expr, scope: dict[str, Any], stage: Stage, resample: Resampler) -> Verdict:
    """Evaluate the condition on a stage: the block's variables over the enclosing scope, plus the measures."""
    verdict = Verdict(False)
    verdict.accepted = bool(measure(expr, scope, stage, resample, verdict))
    for value in literal_thresholds(expr):
        verdict.thresholds.setdefault(repr(value), value)
    return verdict


def measure(expr: ast.Expr, scope: dict[str, Any], stage: Stage, resample: Resampler, verdict: Verdict) -> Any:
    """The value of ``expr`` (a condition, or a part of one such as ``margin(CLS)``) on a stage; the measures and
    thresholds it read go to ``verdict``."""
    samples: dict[int, list[dict[str, Any]]] = {}

    def score_of(name: Any, measure: str) -> Any:
        if not isinstance(name, str) or name not in stage.run.scores:
            holes = ", ".join(sorted(stage.run.scores)) or "none"
            raise InputError(expr.span, f"{measure}() takes a hole of the block, such as {measure}(ANSWER); "
                                        f"{name!r} is not one (the block's holes: {holes})")
        return stage.run.scores[name]

    def margin(name: str) -> float:
        value = score_of(name, "margin").margin
        # No margin: the first token was forced, so no other token was possible.
        verdict.measures[f"margin({name})"] = result = 1.0 if value is None else float(value)
        return result

    def logprob(name: str) -> float:
        value = score_of(name, "logprob").mean_logprob
        verdict.measures[f"logprob({name})"] = result = 0.0 if value is None else float(value)
        return result

    def consistency(name: str, k: int = 5) -> float:
        score_of(name, "consistency")
        if not isinstance(k, int) or k < 1:
            raise InputError(expr.span, f"consistency({name}, k) needs a whole number of samples k >= 1, not {k!r}")
        if k not in samples:
            samples[k] = resample(k)
        answer = stage.values.get(name)
        agreeing = sum(1 for values in samples[k] if values.get(name) == answer)
        verdict.measures[f"consistency({name}, {k})"] = result = agreeing / k
        return result

    def threshold(name: str, file: str | None = None) -> float:
        verdict.thresholds[name] = value = thresholds.lookup(name, stage.model, file, expr.span)
        return value

    # The query's names (inputs, variables, the block's holes) shadow the measures and constraint functions.
    names = {**scope, **stage.values}
    language = {**CONSTRAINT_PREDICATES, "margin": margin, "logprob": logprob, "consistency": consistency,
                "threshold": threshold}
    try:
        return namespace.evaluate(compile_condition(expr, frozenset(names)), names, language)
    except LmlangError:
        raise
    except Exception as err:  # noqa: BLE001 - the query's own Python: any failure is the user's to see
        raise QueryRuntimeError(expr.span, f"the cascade's condition raised {type(err).__name__}: {err}") from None
