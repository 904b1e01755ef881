"""``lmlang.generate``: one typed value from a prompt, for Python code that wants an object, not a query."""

from __future__ import annotations

import functools
from typing import Any

from lmlang.query import Query
from lmlang.query import compile as compile_query


@functools.cache  # compiled on first use: importing lmlang (every CLI start) need not parse them
def _query(source: str) -> Query:
    return compile_query(source, "<lmlang.generate>")


def generate(prompt: str, target: Any, model: str | None = None, *, max_tokens: int = 256,
             decoder: str = "argmax", **decoder_args: Any) -> Any:
    """The model's continuation of ``prompt`` as a value of ``target``: a Python type (a dataclass, pydantic
    model, TypedDict, Enum, ``Literal[...]``, ``list[T]``, ``dict[str, T]``, ``Optional[T]``...), which returns an
    instance, or a JSON schema (a dict), which returns the parsed JSON. ``decoder_args`` go to the decoder
    (``temperature``, ``seed``, ``n``: with ``n`` > 1 a list of values, best first)."""
    args = {"max_tokens": max_tokens, **decoder_args}
    if isinstance(target, (dict, bool)):
        query = _query('"{PROMPT}[VALUE]" where JSON(VALUE, SCHEMA)')
        outcome = query.run(model, decoder=decoder, decoder_args=args, PROMPT=prompt, SCHEMA=target)
    else:
        query = _query('"{PROMPT}[VALUE: TYPE]"')
        outcome = query.run(model, decoder=decoder, decoder_args=args, PROMPT=prompt, TYPE=target)
    if isinstance(outcome, list):
        return [r.variables["VALUE"] for r in outcome]
    return outcome.variables["VALUE"]
