"""Port of LMQL's test_minimal_syntax.py: the same query in its full, decorator-argument, string and F forms."""

from __future__ import annotations

import pytest

import lmlang.lmql as lmql

pytestmark = [pytest.mark.model, pytest.mark.usefixtures("smollm2")]


def tokens(text: str) -> int:
    return len(lmql.tokenizer("smollm2")(text)["input_ids"])


@lmql.query
def hello_full():
    '''lmql
    argmax
        "Say 'this is a test':[RESPONSE]"
    from
        "smollm2"
    where
        len(TOKENS(RESPONSE)) < 6
    '''


@lmql.query(decoder="argmax", model=lmql.model("smollm2"))
def hello_minimal():
    '''lmql
    "Say 'this is a test':[RESPONSE]" where len(TOKENS(RESPONSE)) < 6
    '''


hello_string = lmql.query("'Say \"this is a test\":[RESPONSE]' where len(TOKENS(RESPONSE)) < 6", model="smollm2",
                          is_async=False)
hello_oneline = lmql.F("Say 'this is a test': [RESPONSE]", "len(TOKENS(RESPONSE)) < 6", model="smollm2")


def test_full_and_minimal_forms_agree() -> None:
    full, minimal = hello_full(), hello_minimal()
    assert full.prompt.startswith("Say 'this is a test':")
    assert tokens(full.variables["RESPONSE"]) < 6
    assert minimal.variables == full.variables


def test_string_query() -> None:
    result = hello_string()
    assert result.prompt.startswith('Say "this is a test":') and tokens(result.variables["RESPONSE"]) < 6


def test_f_one_liner() -> None:
    value = hello_oneline()
    assert isinstance(value, str) and tokens(value) < 6


def test_inline_import_and_context() -> None:
    @lmql.query(decoder="argmax", model="smollm2")
    def with_inline_import():
        '''lmql
        import re
        "Say 'this is a test':[RESPONSE]" where len(TOKENS(RESPONSE)) < 6
        return re.search("Say 'this is a test':", context.prompt) is not None
        '''

    assert with_inline_import() is True


def test_inline_import() -> None:
    @lmql.query(decoder="argmax", model="smollm2")
    def with_inline_import():
        '''lmql
        import re
        "Say 'this is a test':[RESPONSE]" where len(TOKENS(RESPONSE)) < 6
        return re.sub("[ ]+", " ", RESPONSE)
        '''

    assert isinstance(with_inline_import(), str)


@lmql.query(decoder="sample", temperature=1.2, seed=7, model="smollm2")
def joke():
    '''lmql
    """A list of good dad jokes. A indicates the punchline
    Q: How does a penguin build its house?
    A: Igloos it together.
    Q: Which knight invented King Arthur's Round Table?
    A: Sir Cumference."""
    "Q:[JOKE]\n" where len(JOKE) < 120 and len(TOKENS(JOKE)) < 8 and STOPS_AT(JOKE, "?")
    "A:[PUNCHLINE]" where STOPS_AT(PUNCHLINE, "\n") and len(TOKENS(PUNCHLINE)) < 8 and len(PUNCHLINE) > 1
    '''


def test_sampled_joke_keeps_its_constraints() -> None:
    result = joke()
    j, p = result.variables["JOKE"], result.variables["PUNCHLINE"]
    assert len(j) < 120 and tokens(j) < 8 and ("?" not in j or j.endswith("?"))
    assert len(p) > 1 and tokens(p) < 8 and ("\n" not in p or p.endswith("\n"))
