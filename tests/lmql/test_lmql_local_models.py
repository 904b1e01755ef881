"""Port of LMQL's test_local_model_python.py, test_multibyte_local_models.py and test_multi_tokenizer.py: local
models named by handle or string, multi-byte characters, and two tokenizers in one process."""

from __future__ import annotations

import pytest

import lmlang
import lmlang.lmql as lmql
from lmlang.models.registry import resolve

pytestmark = [pytest.mark.model, pytest.mark.usefixtures("smollm2")]

m = lmql.model("local:llama.cpp:" + str(resolve("smollm2")[1]))


def test_model_reference_in_from() -> None:
    @lmql.query
    def model_reference():
        '''lmql
        argmax
            """Hello[WHO]"""
        from
            m
        where
            STOPS_AT(WHO, "\n") and len(TOKENS(WHO)) < 6
        '''

    assert model_reference().variables["WHO"]


def test_model_handle_in_from_call() -> None:
    @lmql.query
    def same_reuse():
        '''lmql
        argmax(chunk_timeout=10.0)
            """Hello[WHO]"""
        from
            lmql.model("smollm2", inprocess=True)
        where
            STOPS_AT(WHO, "\n") and len(TOKENS(WHO)) < 6
        '''

    with pytest.warns(lmlang.LmlangWarning, match="chunk_timeout"):
        result = same_reuse()
    value = result.variables["WHO"]
    assert "\n" not in value[:-1] and result.model == "smollm2"


def test_model_handle_as_decorator_option() -> None:
    @lmql.query(model=m)
    def decorated():
        '''lmql
        "Hello[WHO]" where STOPS_AT(WHO, "\n") and len(TOKENS(WHO)) < 6
        '''

    assert decorated().prompt.startswith("Hello")
    assert m.model_identifier.startswith("local:llama.cpp:") and str(m).endswith(".gguf")


@lmql.query(model="smollm2")
async def special_characters():
    '''lmql
    argmax
        """French: Sonde V18, Ø18 x 85mm, 33kHz, 8m, raccord ressort & taraudé M12
        French:[REPEAT] Ø [REP2]
        """
    where
        len(TOKENS(REPEAT)) < 8 and len(TOKENS(REP2)) < 4
    '''


def test_multibyte_characters_survive() -> None:
    result = lmql.main(special_characters)
    repeat, rep2 = result.variables["REPEAT"], result.variables["REP2"]
    assert result.prompt.count("Ø") == 2 + repeat.count("Ø") + rep2.count("Ø")
    assert "taraudé" in result.prompt and "\ufffd" not in repeat + rep2
    assert ":" + repeat + " Ø " + rep2 in result.prompt


@lmql.query(model="smollm2")
async def pi_formula():
    '''lmql
    argmax
        """The area of a circle is computed with the following formula: A = πr2.
        Repeat: The area[formula]
        """
    where
        len(TOKENS(formula)) < 14
    '''


def test_multibyte_character_generated() -> None:
    formula = lmql.main(pi_formula).variables["formula"]
    assert "\ufffd" not in formula and formula.encode("utf-8").decode("utf-8") == formula


@lmql.query(model="smollm2")
async def with_smollm2():
    '''lmql
    "Hello[WORLD]" where len(TOKENS(WORLD)) == 3
    return WORLD
    '''


@lmql.query(model="gemma3-270m")
async def with_gemma():
    '''lmql
    "Hello[WORLD]" where len(TOKENS(WORLD)) == 3
    return WORLD
    '''


def test_two_tokenizers_in_one_process() -> None:
    small = lmql.main(with_smollm2)
    other = lmql.main(with_gemma)
    assert len(lmql.tokenizer("smollm2")(small)["input_ids"]) == 3
    assert len(lmql.tokenizer("gemma3-270m")(other)["input_ids"]) == 3
    # the first again, after the other model ran: the same value
    assert lmql.main(with_smollm2) == small
