"""A compact, span-free rendering of AST nodes, for golden comparisons, and a walk over every node."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Iterator

from lmlang.source import Span
from lmlang.syntax.ast import Node


def dump(value: Any) -> Any:
    """Nodes as ``(TypeName, field=value...)`` tuples without spans; Exprs as their source text."""
    if isinstance(value, Node):
        fields = [f for f in dataclasses.fields(value) if f.name != "span" and not f.name.endswith("_span")]
        if type(value).__name__ == "Expr":
            return value.source  # type: ignore[attr-defined]
        rendered = {f.name: dump(getattr(value, f.name)) for f in fields}
        return (type(value).__name__, {k: v for k, v in rendered.items() if v not in (None, (), False, "")})
    if isinstance(value, tuple):
        return tuple(dump(v) for v in value)
    return value


def nodes(value: Any) -> Iterator[Node]:
    """Every node reachable from ``value``, nested queries included."""
    if isinstance(value, Node):
        yield value
        for field in dataclasses.fields(value):
            yield from nodes(getattr(value, field.name))
    elif isinstance(value, tuple):
        for item in value:
            yield from nodes(item)


def spans(value: Any) -> Iterator[tuple[Node, Span]]:
    for node in nodes(value):
        for field in dataclasses.fields(node):
            span = getattr(node, field.name)
            if isinstance(span, Span):
                yield node, span


CORPUS = Path(__file__).parent / "lmql_queries"


def corpus_files() -> list[Path]:
    """The queries written in the shapes of LMQL's documentation and tests."""
    return sorted(p for p in CORPUS.iterdir() if p.suffix in (".lmql", ".lmq"))
