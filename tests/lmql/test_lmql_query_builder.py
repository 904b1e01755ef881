"""Port of LMQL's test_query_builder.py: a query built from its parts reads and runs as written."""

from __future__ import annotations

import pytest

import lmlang.lmql as lmql

pytestmark = [pytest.mark.model, pytest.mark.usefixtures("smollm2")]


def test_query_builder() -> None:
    built = (lmql.QueryBuilder()
             .set_decoder("argmax")
             .set_prompt("What is the capital of France? [ANSWER]")
             .set_model("smollm2")
             .set_where("len(TOKENS(ANSWER)) < 10")
             .set_where("len(TOKENS(ANSWER)) > 2")
             .build())
    assert built.query_string == ('argmax "What is the capital of France? [ANSWER]" from "smollm2" '
                                  'where len(TOKENS(ANSWER)) < 10 and len(TOKENS(ANSWER)) > 2')
    result = built.run_sync()
    tokens = len(lmql.tokenizer("smollm2")(result.variables["ANSWER"])["input_ids"])
    assert 2 < tokens < 10


def test_query_builder_with_distribution() -> None:
    built = (lmql.QueryBuilder()
             .set_decoder("argmax")
             .set_prompt("What is the capital of France? [ANSWER]")
             .set_model("smollm2")
             .set_distribution("ANSWER", '["Paris", "London"]')
             .build())
    assert built.query_string == ('argmax "What is the capital of France? [ANSWER]" from "smollm2" '
                                  'distribution ANSWER in ["Paris", "London"]')
    result = built.run_sync()
    assert result.variables["ANSWER"] in ("Paris", "London")
    assert [c for c, _ in result.distributions["ANSWER"]] != []


def test_query_builder_decoder_arguments() -> None:
    built = lmql.QueryBuilder().set_decoder("sample", n=2, temperature=0.5).set_prompt("Hi [X]").build()
    assert built.query_string == 'sample(n=2, temperature=0.5) "Hi [X]"'


def test_query_builder_refuses_unknown_decoder_and_second_prompt() -> None:
    with pytest.raises(ValueError):
        lmql.QueryBuilder().set_decoder("greedy")
    with pytest.raises(ValueError):
        lmql.QueryBuilder().set_prompt("a").set_prompt("b")
