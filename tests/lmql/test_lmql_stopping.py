"""Port of LMQL's test_stopping.py: STOPS_AT keeps the stop phrase, STOPS_BEFORE drops it, several stops and a
token minimum combine as LMQL defines."""

from __future__ import annotations

import pytest

import lmlang
import lmlang.lmql as lmql

pytestmark = [pytest.mark.model, pytest.mark.usefixtures("smollm2")]


def tlen(text: str) -> int:
    return len(lmql.tokenizer("smollm2")(text)["input_ids"])


def run(prompt: str, where: str, decoder: str = "argmax") -> lmql.LMQLResult:
    return lmql.run_sync(f"{decoder}\n    {prompt}\nfrom\n    \"smollm2\"\nwhere\n    {where}\n")


def test_stops_before_two_phrases_sampled() -> None:
    result = run('"The movie review in positive sentiment is: [OUTPUT]"',
                 'STOPS_BEFORE(OUTPUT, "\\n") and STOPS_BEFORE(OUTPUT, "n") and len(TOKENS(OUTPUT)) < 8',
                 decoder="sample(temperature=0.8, max_len=64, seed=3)")
    value = result.variables["OUTPUT"]
    assert "\n" not in value and "n" not in value and tlen(value) < 8


def test_stops_at_keeps_the_phrase() -> None:
    value = run("""'{{"1","2","3","[COMPL]}}'""", """len(TOKENS(COMPL)) < 8 and STOPS_AT(COMPL, '"')""")
    value = value.variables["COMPL"]
    assert value.count('"') <= 1 and ('"' not in value or value.endswith('"'))


def test_stops_before_drops_the_phrase() -> None:
    result = run("""'{{"1","2","3","[COMPL]"}}'""", """len(TOKENS(COMPL)) < 8 and STOPS_BEFORE(COMPL, '"')""")
    value = result.variables["COMPL"]
    assert '"' not in value and result.prompt == '{"1","2","3","' + value + '"}'


def test_stops_at_single_match_in_json() -> None:
    @lmql.query
    def name_in_json():
        '''lmql
        argmax
            """
            My name is Peter. In JSON:
            {{
                "name": "[COMPL]
            }}
            """
        from
            "smollm2"
        where
            STOPS_AT(COMPL, '"') and len(TOKENS(COMPL)) < 8
        '''

    value = name_in_json().variables["COMPL"]
    assert '"' not in value[:-1] and (value.endswith('"') or tlen(value) == 7)


def test_stop_phrase_waits_for_the_token_minimum() -> None:
    result = run('"The movie review in positive sentiment is: [OUTPUT]"',
                 'len(TOKENS(OUTPUT)) > 6 and len(TOKENS(OUTPUT)) < 14 and STOPS_AT(OUTPUT, " the")')
    value = result.variables["OUTPUT"]
    assert tlen(value) > 6
    # after the minimum, the value ends at the first stop phrase, if one comes
    cut = value.find(" the", len(value) - 5 if value.endswith(" the") else len(value))
    assert cut == -1 or value.endswith(" the")


def test_token_minimum_or_stop_phrase() -> None:
    result = run('"The movie review in positive sentiment is: [OUTPUT]"',
                 'len(TOKENS(OUTPUT)) > 6 or STOPS_AT(OUTPUT, "review")')
    assert isinstance(result.variables["OUTPUT"], str)


def test_stops_before_and_stops_at_together() -> None:
    result = run('"The movie review in positive sentiment is: [OUTPUT] Here"',
                 'STOPS_BEFORE(OUTPUT, " ") and STOPS_AT(OUTPUT, "Unter") and len(TOKENS(OUTPUT)) < 8')
    value = result.variables["OUTPUT"]
    assert " " not in value.lstrip(" ")[:-1] or value.endswith("Unter")
    assert result.prompt.endswith(value + " Here")


def test_two_stops_at_phrases() -> None:
    result = run('"The movie review in positive sentiment is: [OUTPUT] Here"',
                 'STOPS_AT(OUTPUT, " ") and STOPS_AT(OUTPUT, "re") and len(TOKENS(OUTPUT)) < 8')
    value = result.variables["OUTPUT"]
    assert value.endswith(" ") or value.endswith("re") or tlen(value) == 7


def test_stop_phrases_do_not_end_the_value_before_the_minimum() -> None:
    result = run('"A good movie review:[REVIEW] "',
                 'len(TOKENS(REVIEW)) > 6 and len(TOKENS(REVIEW)) < 12 and STOPS_AT(REVIEW, " the") '
                 'and STOPS_BEFORE(REVIEW, ".")')
    value = result.variables["REVIEW"]
    assert tlen(value) > 6


def test_stops_before_overlapping_an_equality() -> None:
    # LMQL compares `GEN_STR == 'abc",'` with the text before its stop phrases are cut, then cuts it to 'abc'.
    # lmlang's constraints all speak of the value, which ends before the first stop phrase: no value can equal
    # 'abc",', and the run says so by naming the constraints instead of generating anything.
    @lmql.query
    def overlapping():
        '''lmql
        argmax
            """{{
                "first_name": "Bruno",
                "last_name": "Mars",
                # the 2 most popular songs
                """
            '"songs":[[\n        "[GEN_STR]' where STOPS_BEFORE(GEN_STR, ',') and STOPS_BEFORE(GEN_STR, '"') and STOPS_BEFORE(GEN_STR, ']') and len(TOKENS(GEN_STR)) < 10 and GEN_STR == 'abc",'
            return GEN_STR
        from
            "smollm2"
        '''

    with pytest.raises(lmlang.ConstraintError, match="cannot all hold"):
        overlapping()
