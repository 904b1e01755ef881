"""Queries in the shapes LMQL's documentation and tests use (standalone and modern syntax, nested queries,
escaping, distribution, chat roles) all parse, and check without errors."""

from __future__ import annotations

import pytest

from astdump import corpus_files
from lmlang.check import check
from lmlang.syntax import parse


@pytest.mark.parametrize("path", corpus_files(), ids=lambda p: p.name)
def test_corpus_query_parses_and_checks(path) -> None:
    program = parse(path.read_text(), str(path))
    assert program.body
    assert check(program) == []


def test_corpus_shapes() -> None:
    programs = {p.name: parse(p.read_text(), str(p)) for p in corpus_files()}
    assert programs["hello_oneline.lmql"].where.source == "len(WHO) < 10"
    assert programs["joke.lmql"].where.source.count("\n") == 3
    assert programs["packing_list.lmql"].decoder.args[0].name == "temperature"
    assert programs["sentiment_distribution.lmql"].distribution.var == "CLS"
    assert programs["uppercase_clauses.lmql"].model.source.startswith("lmql.model(")
    nested = programs["nested_queries.lmql"]
    assert [type(s).__name__ for s in nested.body[:3]] == ["QueryDef"] * 3
    assert nested.body[4].string.holes[0].type.call.source == "step_by_step"
    escaping = programs["escaping_json.lmql"].body[0].string
    assert [h.name for h in escaping.holes] == ["STRING_VALUE", "INT_VALUE", "STRING_VALUE", "STRING_VALUE"]
    assert '"songs": [\n' in "".join(p.text for p in escaping.parts if type(p).__name__ == "Text")
