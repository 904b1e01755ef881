"""Port of LMQL's test_eq.py: `==` constraints on a value, on its token count and on its length."""

from __future__ import annotations

import pytest

import lmlang
import lmlang.lmql as lmql

pytestmark = [pytest.mark.model, pytest.mark.usefixtures("smollm2")]


def tlen(text: str) -> int:
    return len(lmql.tokenizer("smollm2")(text)["input_ids"])


def run(where: str) -> lmql.LMQLResult:
    return lmql.run_sync(f'argmax\n    "Q: Hi. A:[OUTPUT]"\nfrom\n    "smollm2"\nwhere\n    {where}\n')


def test_eq_str() -> None:
    assert run('OUTPUT == "Hello you"').variables["OUTPUT"] == "Hello you"


def test_double_eq_str() -> None:
    assert run('OUTPUT == "Hello you" or OUTPUT == "Hello There"').variables["OUTPUT"] in ("Hello you", "Hello There")


def test_eq_token_count() -> None:
    result = run("len(TOKENS(OUTPUT)) == 2")
    assert tlen(result.variables["OUTPUT"]) == 2 and result.prompt == "Q: Hi. A:" + result.variables["OUTPUT"]


def test_eq_char_len() -> None:
    assert len(run("len(OUTPUT) == 2").variables["OUTPUT"]) == 2


@lmql.query
async def later_var_token_constrained():
    '''lmql
    argmax(max_len=256)
        "A rhyme:\n"
        "Verse: [RHYME_START]\n"
        counts = [tlen(RHYME_START)]
        for i in range(2):
            "Verse: [RHYME]\n"
            counts.append(tlen(RHYME))
        return counts
    from
        "smollm2"
    where
        len(TOKENS(RHYME)) == 3 and len(TOKENS(RHYME_START)) == 3
    '''


def test_token_count_of_a_variable_in_a_loop() -> None:
    assert lmql.main(later_var_token_constrained) == [3, 3, 3]


@lmql.query
async def stops_before_exact_token_len():
    '''lmql
    argmax(max_len=256, chunksize=4)
        "A rhyme named '[NAME]':\n" where len(TOKENS(NAME)) == 3
        name = NAME
        "Verse: [RHYME]\n"
        first = tlen(RHYME)
        "Verse: [RHYME]\n"
        return name, first, tlen(RHYME)
    from
        "smollm2"
    where
        len(TOKENS(RHYME)) == 3 and STOPS_BEFORE(NAME, "'")
    '''


def test_stops_before_with_exact_token_len() -> None:
    with pytest.warns(lmlang.LmlangWarning, match="chunksize"):
        name, first, second = lmql.main(stops_before_exact_token_len)
    assert "'" not in name and (first, second) == (3, 3)
