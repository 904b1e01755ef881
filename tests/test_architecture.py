"""The boundaries the design depends on: one module talks to Lark, one to llama.cpp; the public API is whole."""

from __future__ import annotations

import re
from pathlib import Path

import lmlang

PACKAGE = Path(lmlang.__file__).parent


def importers(module: str) -> set[str]:
    pattern = re.compile(rf"^\s*(import|from)\s+{module}\b", re.MULTILINE)
    return {str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if pattern.search(p.read_text())}


def test_only_the_parser_imports_lark() -> None:
    assert importers("lark") == {"syntax/parser.py"}


def test_only_the_backend_imports_llama_cpp() -> None:
    assert importers("llama_cpp") == {"models/llama.py"}


def test_public_api_is_exported() -> None:
    for name in lmlang.__all__:
        assert hasattr(lmlang, name), name
