"""lmlang: a query language for small local language models.

Prompts with holes, ``where`` clauses compiled into token masks, run on llama.cpp::

    import lmlang
    result = lmlang.run('"Q: What is 2+2?\\nA: [ANSWER]" where INT(ANSWER)')
    result.variables["ANSWER"]
"""

from __future__ import annotations

__version__ = "0.1.0"

from lmlang.errors import (CheckError, ConstraintError, InputError, LmlangError, LmlangSyntaxError, LmlangWarning,
                           ModelError, NotEnforcedError, QueryRuntimeError, UsageError)
from lmlang.query import Query, arun, compile, compile_file, load, query, run, score, unload
from lmlang.result import HoleScore, HoleSpan, Result, Stats, TokenPiece
from lmlang.session import Session, default_session
from lmlang.source import Source, Span
from lmlang.typed import generate
from lmlang.view import result_html, results_html

__all__ = [
    "__version__",
    "compile",
    "compile_file",
    "run",
    "arun",
    "query",
    "score",
    "load",
    "unload",
    "Session",
    "default_session",
    "generate",
    "Query",
    "Result",
    "Stats",
    "HoleScore",
    "HoleSpan",
    "TokenPiece",
    "result_html",
    "results_html",
    "Source",
    "Span",
    "LmlangError",
    "LmlangSyntaxError",
    "CheckError",
    "ConstraintError",
    "NotEnforcedError",
    "ModelError",
    "InputError",
    "QueryRuntimeError",
    "UsageError",
    "LmlangWarning",
]
