from __future__ import annotations

from pathlib import Path

import pytest

from lmlang.syntax import parse

CORPUS = Path(__file__).parent / "lmql_queries"


def corpus_files() -> list[Path]:
    return sorted(p for p in CORPUS.iterdir() if p.suffix in (".lmql", ".lmq"))


@pytest.fixture(scope="session")
def corpus_programs():
    return [parse(p.read_text(), str(p)) for p in corpus_files()]
