"""What calibration reads: labeled inputs (JSON lines) and, from the query, the cascade and threshold to fit."""

from __future__ import annotations

import ast as pyast
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lmlang.errors import InputError, UsageError
from lmlang.syntax import ast


@dataclass(frozen=True)
class Item:
    inputs: dict[str, Any]
    label: Any
    line: int


@dataclass(frozen=True)
class Plan:
    """What calibration needs from the query's cascade."""

    cascade: ast.Cascade
    models: list[str]
    name: str  # of the threshold
    score: ast.Expr  # what is compared with it
    at_least: bool  # accepted when score >= threshold (else <=)
    answer: str
    candidates: list[str] | None


def read_data(path: Path, label_field: str = "label") -> list[Item]:
    """Labeled inputs, one JSON object a line: the query's inputs and ``label_field``."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise UsageError(None, f"cannot read the data file {path}: {err}") from None
    items = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as err:
            raise InputError(None, f"{path}:{number}: not a JSON object: {err}") from None
        if not isinstance(record, dict) or label_field not in record:
            raise InputError(None, f"{path}:{number}: each line needs a \"{label_field}\" field next to the inputs")
        label = record.pop(label_field)
        items.append(Item(record, label, number))
    if len(items) < 4:
        raise InputError(None, f"{path} has {len(items)} labeled inputs: calibration needs at least 4")
    return items


def plan_for(program: ast.Program, answer: str | None) -> Plan:
    """The first cascade of the program whose condition names a threshold, and how to calibrate it."""
    for statement in ast.walk(program.body):
        if isinstance(statement, ast.Cascade) and statement.condition is not None:
            found = _threshold_comparison(statement.condition)
            if found is not None:
                name, score, at_least = found
                models = [_literal_model(m) for m in statement.models]
                var = answer or _only_hole(statement)
                return Plan(statement, models, name, score, at_least, var, _candidates(statement, var))
    raise UsageError(None, "the query has no cascade comparing a score with a named threshold, such as "
                           "cascade \"smollm2\", \"gemma3-270m\" until margin(CLS) >= threshold(\"sentiment\"):")


def _threshold_comparison(condition: ast.Expr) -> tuple[str, ast.Expr, bool] | None:
    for node in pyast.walk(condition.python()):
        if not (isinstance(node, pyast.Compare) and len(node.comparators) == 1):
            continue
        left, right, op = node.left, node.comparators[0], node.ops[0]
        for score, named, flipped in ((left, right, False), (right, left, True)):
            if _is_threshold_call(named):
                at_least = isinstance(op, (pyast.GtE, pyast.Gt)) != flipped
                name = named.args[0].value  # type: ignore[attr-defined]
                span = condition.span_of(score)
                return name, ast.Expr(span, pyast.unparse(score)), at_least
    return None


def _is_threshold_call(node: pyast.expr) -> bool:
    return (isinstance(node, pyast.Call) and isinstance(node.func, pyast.Name) and node.func.id == "threshold"
            and bool(node.args) and isinstance(node.args[0], pyast.Constant) and isinstance(node.args[0].value, str))


def _literal_model(expr: ast.Expr) -> str:
    node = expr.python().body
    if not (isinstance(node, pyast.Constant) and isinstance(node.value, str)):
        raise UsageError(expr.span, "calibration needs the cascade's models written as strings")
    return node.value


def _only_hole(cascade: ast.Cascade) -> str:
    names = [h.name for s in ast.walk(cascade.body) if isinstance(s, ast.QueryStmt) for h in s.string.holes]
    if len(names) != 1:
        raise UsageError(cascade.span, f"the cascade has {len(names)} holes: say which one is the answer "
                                       f"with --answer (one of {', '.join(names)})")
    return names[0]


def _candidates(cascade: ast.Cascade, var: str) -> list[str] | None:
    """The values ``where VAR in [...]`` allows the answer, when the block says so with a literal list."""
    for statement in ast.walk(cascade.body):
        if not isinstance(statement, ast.QueryStmt) or statement.where is None:
            continue
        for node in pyast.walk(statement.where.python()):
            if (isinstance(node, pyast.Compare) and isinstance(node.left, pyast.Name) and node.left.id == var
                    and isinstance(node.ops[0], pyast.In)):
                try:
                    return [str(v) for v in pyast.literal_eval(node.comparators[0])]
                except ValueError:
                    return None
    return None


def normal(value: Any) -> str:
    """An answer or a label as they are compared: stripped, without case."""
    return str(value).strip().casefold()


def check_labels(plan: Plan, items: list[Item], data: Path) -> None:
    """Every label must be an answer the query can give, when the query lists its answers."""
    if plan.candidates is None:
        return
    allowed = {normal(c) for c in plan.candidates}
    for item in items:
        if normal(item.label) not in allowed:
            raise InputError(None, f"{data}:{item.line}: the label {item.label!r} is not an answer the query can "
                                   f"give: {plan.answer} is one of {', '.join(map(repr, plan.candidates))}")
