"""The checker: every problem reported with a message that says what to do and the span it is about."""

from __future__ import annotations

import pytest

from lmlang.check import check
from lmlang.syntax import parse


def problems(text: str, inputs=None) -> list[tuple[str, str, int, int]]:
    """(message, text under the span, line, column) of each problem."""
    return [(e.message, e.span.text, e.span.line, e.span.column) for e in check(parse(text, "q.lmq"), inputs)]


def only_problem(text: str, inputs=None) -> tuple[str, str, int, int]:
    found = problems(text, inputs)
    assert len(found) == 1, found
    return found[0]


def test_valid_query_has_no_problems() -> None:
    text = (
        'import json\nchoices = ["a", "b"]\n'
        'sample(temperature=0.5, n=2, max_len=30)\n'
        '"Q: [ANSWER] [N: int] [D: r\'[0-9]+\']" where STOPS_AT(ANSWER, ".") and INT(N) and len(TOKENS(ANSWER)) < 9 '
        'and ANSWER in choices and json.dumps(N) != "" and REGEX(D, r"\\d+") and not "\\n" in ANSWER\n'
        '"[C]" distribution C in choices\n'
    )
    assert problems(text) == []


def test_constraint_on_a_variable_that_is_not_a_hole() -> None:
    message, under, line, column = only_problem('"Q: [ANSWER] [N]" where STOPS_AT(ANSWR, ".")')
    assert message == "'ANSWR' is not a hole of this query string (did you mean ANSWER?); holes are: ANSWER, N"
    assert (under, line, column) == ("ANSWR", 1, 34)


@pytest.mark.parametrize(
    "constraint, name",
    [("len(X) < 3", "X"), ("X in ['a']", "X"), ("X == 'a'", "X"), ("len(TOKENS(X)) < 2", "X"), ("INT(X)", "X"),
     ("JSON(X)", "X"), ("'\\n' not in X", "X")],
)
def test_every_way_to_name_the_constrained_variable(constraint: str, name: str) -> None:
    message, under, _, _ = only_problem(f'"[A]" where {constraint}')
    assert message.startswith(f"'{name}' is not a hole of this query string") and under == name


def test_other_names_in_constraints_are_fine() -> None:
    assert problems('options = ["x"]\n"[A]" where A in options and len(A) < limit', inputs=["limit"]) == []


def test_program_where_clause_sees_every_hole() -> None:
    text = 'argmax\n    "[A]"\n    for i in range(2):\n        "[B]"\nfrom "m"\nwhere INT(A) and INT(B) and INT(C)\n'
    message, under, line, column = only_problem(text)
    assert message == "'C' is not a hole of this query; holes are: A, B"
    assert (under, line, column) == ("C", 6, 33)


def test_unknown_constraint_function() -> None:
    message, under, line, column = only_problem('"[A]" where STOP_AT(A, ".")')
    assert message.startswith("unknown constraint function 'STOP_AT': did you mean STOPS_AT? use one of ")
    assert (under, line, column) == ("STOP_AT", 1, 13)


def test_defined_imported_and_builtin_functions_are_allowed() -> None:
    text = 'from helpers import ok\ndef mine(x):\n    return True\n"[A]" where mine(A) and ok(A) and isinstance(A, str) and given(A)'
    assert problems(text, inputs=["given"]) == []


def test_wrong_number_of_arguments() -> None:
    message, under, _, _ = only_problem('"[A]" where STOPS_AT(A)')
    assert message == 'STOPS_AT takes 2 arguments, as in STOPS_AT(V, "."), but is given 1'
    assert under == "STOPS_AT(A)"
    message, _, _, _ = only_problem('"[A]" where JSON(A, {}, 3)')
    assert message.startswith("JSON takes 1 or 2 arguments")
    assert problems('"[A]" where JSON(A, {}, strict=False, whitespace="flexible")') == []


def test_unknown_decoder_and_unknown_decoder_argument() -> None:
    message, under, line, column = only_problem('greedy\n    "[A]"\n')
    assert message == "unknown decoder 'greedy': use one of argmax, sample, beam, beam_sample, best_k, beam_var"
    assert (under, line, column) == ("greedy", 1, 1)
    message, under, _, _ = only_problem('sample(temp=0.8)\n"[A]"\n')
    assert message.startswith("sample does not take 'temp': it takes n, temperature, top_k, top_p and the common options")
    assert under == "temp=0.8"
    message, under, _, _ = only_problem('argmax(n=2) "[A]"')
    assert message == "argmax gives one result: use sample(n=...) or beam(n=...) for several" and under == "n=2"
    message, _, _, _ = only_problem('argmax(k=2) "[A]"')
    assert message.startswith("argmax does not take 'k': it takes n and the common options max_len")


def test_query_function_decoder_option() -> None:
    text = "@lmql.query(decoder=\"sampel\")\ndef f():\n    '''lmql\n    \"[A]\"\n    '''\n"
    message, under, _, _ = only_problem(text)
    assert message.startswith("unknown decoder 'sampel': did you mean sample?") and under == '"sampel"'


def test_distribution_must_name_the_last_hole() -> None:
    message, under, _, _ = only_problem('"[A] then [B]" distribution A in ["x", "y"]')
    assert message == (
        "distribution scores the last hole of this query string, which is 'B', not 'A': name B or move [A] to the end"
    )
    assert under == "A"
    message, _, _, _ = only_problem('argmax\n    "[A]"\n    "[B]"\ndistribution A in ["x"]\n')
    assert "last hole of the prompt, which is 'B'" in message
    message, _, _, _ = only_problem('"no hole" distribution A in ["x"]')
    assert message.startswith("this query string has no hole for distribution to score")


def test_invalid_hole_regex() -> None:
    message, under, line, column = only_problem("x = 1\n\"Date: [D: r'[0-9']\"")
    assert message.startswith("invalid regex: unterminated character set")
    assert (under, line, column) == ("r'[0-9'", 2, 12)


def test_invalid_regex_in_a_constraint() -> None:
    message, under, _, _ = only_problem('"[D]" where REGEX(D, r"(a")')
    assert message.startswith("invalid regex: missing )") and under == 'r"(a"'


def test_nested_queries_are_checked_with_their_parameters() -> None:
    text = (
        "@lmql.query\ndef pick(choices):\n    '''lmql\n"
        "    \"[ANSWER]\" where ANSWER in choices and STOPS_AT(ANSWR, \".\")\n    '''\n"
        "\"[X: pick(['a'])]\"\n"
    )
    message, under, line, column = only_problem(text)
    assert message.startswith("'ANSWR' is not a hole of this query string")
    assert (under, line, column) == ("ANSWR", 4, 53)


ENSEMBLE_BLOCK = '    "Q: [ANSWER]" where ANSWER in [" a", " b"]\n'


def test_an_ensemble_votes_on_a_hole_of_its_block() -> None:
    assert problems('ensemble "smollm2" vote ANSWER, samples=N, temperature=0:\n' + ENSEMBLE_BLOCK) == []
    assert only_problem('ensemble "smollm2" vote ANSWR:\n' + ENSEMBLE_BLOCK) == (
        "vote ANSWR names no hole of the ensemble's block (did you mean ANSWER?); its holes are: ANSWER", "ANSWR", 1, 25
    )
    message, under, _, _ = only_problem('"[X]"\nensemble "smollm2" vote X:\n    pass\n')
    assert message == "vote X needs a hole [X] in the ensemble's block, which has no holes" and under == "X"


@pytest.mark.parametrize("options, message, under", [
    ("samples=0", "samples= takes a whole number >= 1, not 0", "0"),
    ("samples=2.5", "samples= takes a whole number >= 1, not 2.5", "2.5"),
    ("temperature=-1", "temperature= takes a number >= 0, not -1", "-1"),
    ("k=3", "an ensemble has no option 'k': it takes samples= and temperature=", "k=3"),
    ("samples=2, samples=3", "a second samples= option: an ensemble takes each option once", "samples=3"),
])
def test_bad_ensemble_options(options: str, message: str, under: str) -> None:
    found = only_problem(f'ensemble "smollm2" vote ANSWER, {options}:\n' + ENSEMBLE_BLOCK)
    assert found[:2] == (message, under)


def test_all_problems_are_reported_in_source_order() -> None:
    found = problems('bogus\n    "[A: r\'(\']" where FOO(A) and INT(Z)\nwhere len(Q) < 2\n')
    assert [under for _, under, _, _ in found] == ["bogus", "r'('", "FOO", "Z", "Q"]
