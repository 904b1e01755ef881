"""The trace of a run's multi-model blocks: one entry per stage, and the one-line summary the terminal shows."""

from __future__ import annotations

from typing import Any

from lmlang.multimodel.cost import cost
from lmlang.multimodel.stage import Stage
from lmlang.syntax import ast


def trace_of(run: Any) -> list[dict[str, Any]]:
    """The run's trace list (created on first use)."""
    trace = getattr(run, "trace", None)
    if trace is None:
        trace = run.trace = []
    return trace


def stage_entry(statement: ast.Stmt, stage: Stage, decision: str, **details: Any) -> dict[str, Any]:
    """A trace entry for one stage: where, which model, what it cost and what was decided."""
    spent, unit = cost(stage.model, stage.prefill_tokens, stage.generated_tokens, stage.total_seconds)
    entry: dict[str, Any] = {
        "block": _block(statement),
        "line": statement.span.line,
        "model": stage.model,
        **details,
        "decision": decision,
        "prefill_tokens": stage.prefill_tokens,
        "generated_tokens": stage.generated_tokens,
        "seconds": round(stage.total_seconds, 4),
        "prefill_seconds": round(stage.run.prompt.prefill_seconds, 4),
        "cost": round(spent, 6),
        "cost_unit": unit,
    }
    entry.update(stage.notes)
    if stage.error is not None:
        entry["error"] = stage.error.message
    return entry


def work_entry(statement: ast.Stmt, model: str, prefill: int, generated: int, seconds: float, decision: str,
               **details: Any) -> dict[str, Any]:
    """A trace entry for work that is not a run of the body (a classifier scoring labels, embeddings)."""
    spent, unit = cost(model, prefill, generated, seconds)
    return {"block": _block(statement), "line": statement.span.line, "model": model, **details, "decision": decision,
            "prefill_tokens": prefill, "generated_tokens": generated, "seconds": round(seconds, 4),
            "cost": round(spent, 6), "cost_unit": unit}


def _block(statement: ast.Stmt) -> str:
    """The statement's keyword: ``cascade``, ``route`` or ``ensemble``."""
    return type(statement).__name__.lower()


def summary(trace: list[dict[str, Any]]) -> str:
    """One line for the terminal, such as ``cascade@3: smollm2 margin(CLS)=0.21 escalate -> gemma3-270m answer``."""
    parts = []
    for entry in trace:
        measured = " ".join(f"{k}={v:.3g}" for k, v in entry.get("measures", {}).items())
        parts.append(" ".join(x for x in (f"{entry['block']}@{entry['line']}:", entry["model"], entry.get("answer"),
                                          measured, entry["decision"]) if x))
    total = sum(e["cost"] for e in trace)
    unit = trace[0]["cost_unit"] if trace else "seconds"
    return "; ".join(parts) + f" [cost {total:.4g} {unit}]"
