"""Port of LMQL's test_orop.py: `or` between two token-length bounds, sampled."""

from __future__ import annotations

import pytest

import lmlang.lmql as lmql

pytestmark = [pytest.mark.model, pytest.mark.usefixtures("smollm2")]


def test_or_of_token_lengths() -> None:
    @lmql.query
    async def q():
        '''lmql
        sample(temperature=0.8, max_len=128, seed=1)
            "The movie review in positive sentiment is: '[OUTPUT]"
        FROM
            lmql.model("smollm2")
        WHERE
            len(TOKENS(OUTPUT)) < 6 or len(TOKENS(OUTPUT)) < 8
        '''

    result = lmql.main(q)
    value = result.variables["OUTPUT"]
    assert len(lmql.tokenizer("smollm2")(value)["input_ids"]) < 8
