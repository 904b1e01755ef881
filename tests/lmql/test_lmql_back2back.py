"""Port of LMQL's test_back2back_caching.py and test_nested_back2back.py: holes back to back with no text between
them, and a nested query called again and again in a chat."""

from __future__ import annotations

import pytest

import lmlang.lmql as lmql

pytestmark = [pytest.mark.model, pytest.mark.usefixtures("smollm2")]


def tlen(text: str) -> int:
    return len(lmql.tokenizer("smollm2")(text)["input_ids"])


@lmql.query
async def back_to_back():
    '''lmql
    argmax
        "1. Thought I believe in you\n"
        "2. Action I will help\n"
        "3. Thought This is good\n"
        "[NUM][MODE][CONTENT]"
    from
        "smollm2"
    where
        MODE in [" Action", " Thought"] and STOPS_AT(CONTENT, "\n") and STOPS_AT(NUM, ".") and len(TOKENS(NUM)) < 4 and len(TOKENS(CONTENT)) < 8
    '''


def test_back_to_back_holes() -> None:
    result = lmql.main(back_to_back)
    num, mode, content = (result.variables[k] for k in ("NUM", "MODE", "CONTENT"))
    assert mode in (" Action", " Thought")
    assert tlen(num) < 4 and ("." not in num or num.endswith("."))
    assert tlen(content) < 8 and ("\n" not in content or content.endswith("\n"))
    assert result.prompt.endswith(num + mode + content)


nl = "\n"


class Output:
    def __init__(self) -> None:
        self.output_vars: dict[str, list[str]] = {}

    def add(self, name: str, value: str) -> None:
        self.output_vars.setdefault(name, []).append(value)


@lmql.query
async def make_summary_option(o, option_text, length_limit, option_type):
    '''lmql
    "{:user}Make a {option_text}"
    "{:assistant}[option]" where STOPS_AT(option, ".") and len(TOKENS(option)) < 8
    if len(option) > length_limit:
        "{:user}The {option_text} is too long, make it shorter"
        "{:assistant}[option]" where STOPS_AT(option, ".") and len(TOKENS(option)) < 6
    o.add(option_type, option.strip())
    return option
    '''


@lmql.query(model="smollm2")
async def summaries(o):
    '''lmql
    material_text = "This is a story about love."
    """{:system}The user wants correct answers and distractors about this text:

    {material_text}

    Only answer with the answer or distractor, nothing more."""
    length_limit = 20
    for i in range(2):
        "[correct: make_summary_option(o, 'correct answer', length_limit, 'correct_summaries')]"
    "[incorrect: make_summary_option(o, 'distractor', length_limit, 'incorrect_summaries')]"
    '''


def test_nested_query_called_back_to_back() -> None:
    o = Output()
    lmql.main(summaries, o)
    assert len(o.output_vars["correct_summaries"]) == 2
    assert len(o.output_vars["incorrect_summaries"]) == 1
    assert all(isinstance(v, str) for values in o.output_vars.values() for v in values)


def test_module_global_in_where() -> None:
    @lmql.query(model="smollm2")
    def with_global():
        '''lmql
        "Say hello:[option]" where STOPS_AT(option, nl) and len(TOKENS(option)) < 6
        return option
        '''

    value = with_global()
    assert "\n" not in value[:-1]
