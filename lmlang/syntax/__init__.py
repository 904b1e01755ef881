"""The syntax of lmlang: the parser (text → AST) and the grammar it reads.

``parse`` and ``parse_source`` read a query; ``grammar_path`` locates ``lmlang.lark``; ``KEYWORDS`` are the
language's keywords as the grammar defines them (computed on first use, since that builds the parser). The parser
is ``parser`` (its front door), ``layout`` (indentation), ``builder`` (the AST) and ``messages`` (error wording).
"""

from __future__ import annotations

from typing import Any

from lmlang.syntax.parser import grammar_path, keywords, parse, parse_source

__all__ = ["KEYWORDS", "grammar_path", "parse", "parse_source"]


def __getattr__(name: str) -> Any:
    if name == "KEYWORDS":
        return keywords()
    raise AttributeError(f"module 'lmlang.syntax' has no attribute {name!r}")
