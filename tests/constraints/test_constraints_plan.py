"""plan_hole: which conditions apply, what finish() accepts and returns, and the errors users see."""

from __future__ import annotations

import numpy as np
import pytest

from lmlang.constraints import plan_hole
from lmlang.errors import ConstraintError, InputError, NotEnforcedError
from lmlang.source import Source
from lmlang.syntax.ast import Expr, HoleType


def where(text: str) -> Expr:
    source = Source("query.lmq", "where " + text)
    return Expr(source.span(6, len(source.text)), text)


def plan(var, text, hole_type=None, env=None, values=None, holes=("A", "B", "X")):
    return plan_hole(var, [where(text)] if text else [], hole_type, env or {}, values or {}, holes)


def typed(kind: str, pattern: str | None = None) -> HoleType:
    source = Source("query.lmq", f"[X: {kind}]")
    return HoleType(source.span(4, len(source.text) - 1), kind, pattern)


def accepts(p, text):
    try:
        p.finish(text)
        return True
    except ConstraintError:
        return False


@pytest.mark.parametrize(
    ("var", "text", "good", "bad"),
    [
        ("N", "INT(N)", ["42", " 7", "-3", "0"], ["4.2", "", "x", "007", "--1", "42 "]),
        ("F", "FLOAT(F)", ["3", "-0.5", " 12.25"], ["1e5", ".5", "1.", "x"]),
        ("D", 'REGEX(D, r"[0-9]{2}/[0-9]{2}/[0-9]{4}")', ["12/04/2024"], ["1/4/2024", "12/04/24"]),
        ("X", 'X in ["yes", "no"]', ["yes", "no"], ["maybe", "ye", ""]),
        ("X", 'X in set(["a", "b"])', ["a"], ["c"]),
        ("X", 'X not in ["yes"]', ["no", ""], ["yes"]),
        ("X", "len(X) < 5", ["", "abcd", "éééé"], ["abcde"]),
        ("X", "0 < len(X) < 3", ["a", "ab"], ["", "abc"]),
        ("X", "len(X) >= 2 and len(X) <= 3", ["ab", "abc"], ["a", "abcd"]),
        ("X", "len(X) != 2", ["a", "abc"], ["ab"]),
        ("X", "len(WORDS(X)) < 3", ["one two", " a  b\n"], ["a b c"]),
        ("X", 'STARTS_WITH(X, "The")', ["The end", "The"], ["the end"]),
        ("X", 'X == "text"', ["text"], ["tex", "texts"]),
        ("X", 'X != "text"', ["tex"], ["text"]),
        ("X", '"\\n" in X', ["a\nb"], ["ab"]),
        ("X", 'not "\\n" in X', ["ab"], ["a\n"]),
        ("X", '"\\n" not in X', ["ab"], ["a\n"]),
        ("X", 'INT(X) or X == "none"', ["12", "none"], ["nope"]),
        ("N", "INT(N) and N < 50", ["49", "-100", " 0"], ["50", "100"]),
        ("N", "INT(N) and 10 <= N <= 20", ["10", "20"], ["9", "21"]),
        ("N", "INT(N) and N != 3", ["2"], ["3"]),
        ("F", "FLOAT(F) and F > 1.5", ["2", "1.75"], ["1.5", "0"]),
        ("X", "X.isupper()", ["ABC"], ["abc"]),
    ],
)
def test_finish_accepts_exactly_the_values_that_satisfy(var, text, good, bad):
    p = plan(var, text)
    for value in good:
        assert accepts(p, value), value
    for value in bad:
        assert not accepts(p, value), value


def test_finish_converts_typed_values():
    assert plan("N", "INT(N)").finish(" 42") == 42
    assert plan("F", "FLOAT(F)").finish("2.5") == 2.5
    assert plan("X", "", typed("int")).finish("7") == 7
    assert plan("X", "", typed("float")).finish("-1.25") == -1.25
    assert plan("X", "", typed("regex", "[a-c]+")).finish("abc") == "abc"
    assert not accepts(plan("X", "", typed("regex", "[a-c]+")), "abd")
    assert plan("X", 'X in ["a"]').finish("a") == "a"


def test_numeric_bound_on_typed_hole_is_masked_exactly():
    p = plan("X", "X < 50 and X >= 0", typed("int"))
    matches = [t for t in ["0", "9", "49", "50", "100", "-1", "07"] if p.automaton.matches(t.encode())]
    assert matches == ["0", "9", "49"]


@pytest.mark.parametrize("where, inside, outside", [
    ("X < 3.5", ["3.49", "3", "-7.25", " 0", "-0"], ["3.5", "3.50", "3.51", "4", "10.0"]),
    ("X >= -0.05 and X <= 1", ["-0.05", "-0.049", "0", "1.000", "0.999"], ["-0.051", "-1", "1.0001", "2"]),
    ("X > 0", ["0.001", "5"], ["0", "0.000", "-0", "-0.5"]),
])
def test_numeric_bound_on_a_float_hole_is_masked_exactly(where, inside, outside):
    """Decimal texts compared with the bound's decimal spelling; the mask is the check."""
    p = plan("X", where, typed("float"))
    assert [t for t in inside + outside if p.automaton.matches(t.encode())] == inside
    assert all(accepts(p, t) for t in inside) and not any(accepts(p, t) for t in outside)


def test_violation_names_hole_and_condition_with_span():
    p = plan("N", 'INT(N) and N < 50')
    with pytest.raises(ConstraintError) as info:
        p.finish("77")
    assert "N" in info.value.message and "N < 50" in info.value.message
    assert info.value.span.text == "N < 50"


def test_stops_tokens_and_matcher_absence():
    p = plan("A", 'STOPS_AT(A, ".") and STOPS_BEFORE(A, ["\\n", "Q:"]) and len(TOKENS(A)) < 20')
    assert p.stops == ((".", True), ("\n", False), ("Q:", False))
    assert p.max_tokens == 19
    assert p.automaton is None
    assert plan("A", "len(TOKENS(A)) <= 8").max_tokens == 8
    assert plan("A", "len(TOKENS(A)) <= 8").min_tokens == 0
    lower = plan("A", "len(TOKENS(A)) > 3 and len(TOKENS(A)) < 10 and 2 <= len(TOKENS(A))")
    assert (lower.min_tokens, lower.max_tokens) == (4, 9)


def test_options_and_bounds_come_from_the_environment():
    env = {"options": ["red", "green", "blue"], "limit": 4}
    p = plan("C", "C in options and len(C) < limit", env=env)
    assert accepts(p, "red") and not accepts(p, "green") and not accepts(p, "pink")
    assert p.max_chars == 3


def test_conditions_across_holes():
    p = plan("B", "A != B and len(A) < 10", values={"A": "same"})
    assert accepts(p, "other") and not accepts(p, "same")
    # A condition on a hole not generated yet is left to that hole.
    p = plan("A", "A != B")
    assert accepts(p, "anything") and p.automaton is None


def test_a_name_neither_defined_nor_a_hole_is_an_error():
    """Not a condition left for later: nothing could ever define it."""
    with pytest.raises(InputError) as info:
        plan("X", 'len(X) < 9 and X in [" " + a, " " + b]', env={"a": "Paris"})
    assert "uses 'b', which is neither a variable defined before the hole nor a hole" in info.value.message
    assert info.value.span.text == 'X in [" " + a, " " + b]'
    # Names a comprehension or lambda binds are its own.
    p = plan("X", "X in [w.upper() for w in WORDS] and (lambda v: len(v) < 4)(X)", env={"WORDS": ["ab", "c"]})
    assert accepts(p, "AB") and not accepts(p, "ab")


def test_unsatisfiable_constraints_are_reported_at_compile_time():
    with pytest.raises(ConstraintError) as info:
        plan("X", 'INT(X) and X in ["a"]')
    assert "the constraints on X cannot all hold" in info.value.message
    assert info.value.span.text == 'INT(X) and X in ["a"]'
    with pytest.raises(ConstraintError, match="cannot all hold"):
        plan("X", 'X in ["long answer"] and len(X) < 5')
    with pytest.raises(ConstraintError, match="cannot all hold"):
        plan("N", "INT(N) and N > 5 and N < 3")


def test_unsupported_regex_feature_points_into_the_pattern():
    with pytest.raises(ConstraintError) as info:
        plan("X", 'REGEX(X, r"ab(?=c)")')
    assert "lookarounds" in info.value.message
    assert info.value.span.text == "("
    assert info.value.span.column == len('where REGEX(X, r"ab') + 1


def test_unenforceable_forms_are_refused():
    with pytest.raises(ConstraintError, match="condition of its own"):
        plan("X", 'not STOPS_AT(X, ".")')
    with pytest.raises(ConstraintError, match="condition of its own"):
        plan("X", '(STOPS_AT(X, ".") and INT(X)) or INT(X)')
    with pytest.raises(ConstraintError, match="cannot evaluate") as info:
        plan("X", "X in options[3]", env={"options": []})
    assert info.value.span.text == "options[3]"


def test_matcher_keys_name_the_language_and_masks(smollm2):
    vocab = smollm2.vocabulary()
    p = plan("X", 'X in ["yes", "no"]')
    m = p.matcher(vocab)
    assert p.matcher_key(vocab) == plan("X", 'X in ["no", "yes"]').matcher_key(vocab)
    assert p.matcher_key(vocab) != plan("X", 'X in ["no", "maybe"]').matcher_key(vocab)
    allowed = {vocab.token_bytes[t] for t in np.flatnonzero(m.allowed(m.start()))}
    assert allowed <= {b"y", b"ye", b"yes", b"n", b"no"} and b"yes" in allowed
    assert plan("X", 'STOPS_AT(X, ".")').matcher(vocab) is None


def test_stop_phrase_is_allowed_where_the_value_is_complete():
    p = plan("N", 'INT(N) and STOPS_BEFORE(N, "\\n")')
    written = p.automaton
    assert written.matches(b"42\n") and written.matches(b"42\nanything after")  # cut at the newline
    assert not written.matches(b"\n") and not written.matches(b"-\n")  # the value would be incomplete
    assert written.matches(b"42")  # or ended by end-of-sequence
    assert p.finish("42") == 42


def test_stops_at_keeps_its_phrase_under_the_other_conditions():
    p = plan("X", 'REGEX(X, r"[a-z ]+\\.") and STOPS_AT(X, ".")')
    assert p.automaton.matches(b"the end.") and not p.automaton.matches(b".")
    assert p.finish("the end.") == "the end."


def test_stops_at_that_can_never_end_the_value_is_an_error():
    with pytest.raises(ConstraintError) as info:
        plan("N", 'INT(N) and STOPS_AT(N, "\\n")')
    assert "use STOPS_BEFORE" in info.value.message
    assert info.value.span.text == 'STOPS_AT(N, "\\n")'
    plan("N", 'INT(N) and STOPS_AT(N, ["\\n", "0"])')  # one phrase of the list can end it


def test_stops_before_that_always_cuts_short_is_unsatisfiable():
    with pytest.raises(ConstraintError, match="cannot all hold"):
        plan("X", 'X == "ab" and STOPS_BEFORE(X, "b")')


def test_a_value_left_with_one_way_to_go_is_still_forced_with_a_stop_phrase():
    p = plan("X", 'X == " Paris" and STOPS_BEFORE(X, "\\n")')
    assert p.automaton.forced(p.automaton.start) == b" Paris"


def masked(p, text):
    """Whether the plan's mask lets the model write ``text`` (its automaton and each grammar)."""
    from lmlang.constraints.structured import mask_grammar

    data = text.encode()
    return p.automaton.matches(data) and all(mask_grammar(s, p.stops).accepts(data) for s in p.structures)


@pytest.mark.parametrize("text, good", [
    ('{"a": [{"b": 1}]}', True), (' [1, 2.5e3, "x\\n", true, null]', True), ("{}", True), ('"é"', True),
    ('{"a": {"b": {"c": {"d": [[[[1]]]]}}}}', True),  # any depth
    ('{"a" 1}', False), ("[1,]", False), ("{'a': 1}", False), ("  {}", False),
    ('{"a":' + " " * 30 + "1}", False),  # white space is bounded
])
def test_json_is_masked_and_parsed(text, good):
    p = plan("X", "JSON(X)")
    assert p.automaton is not None and masked(p, text) == good
    if good:
        assert p.finish(text) == __import__("json").loads(text)



FLEXIBLE = (['{\n  "a": 1,\n  "b": [\n    1, 2\n  ]\n}', '{"a":1}', '{ "a" : 1 }', '{"a": 1, "b": [1, 2]}'],
            ['{"a":' + " " * 3 + "1}", '{\n' + " " * 41 + '"a": 1}'])  # bounded all the same


@pytest.mark.parametrize("whitespace, good, bad", [
    (None, *FLEXIBLE),  # the default: spaced as the model likes, within bounds
    ("flexible", *FLEXIBLE),
    # One line, spaced as json.dumps spaces it.
    ("compact", ['{"a": 1, "b": [1, 2]}', ' {"a": {"c": null}}', "[]"],
     ['{\n  "a": 1}', '{"a":1}', '{"a": 1,"b": [1]}', '{ "a": 1 }', '{"a": 1, "b": [1,  2]}', '[\n1]']),
    ("none", ['{"a":1,"b":[1,2]}'], ['{"a": 1}', '{\n"a":1}']),
])
def test_json_whitespace_is_flexible_unless_the_query_asks(whitespace, good, bad):
    option = f", whitespace={whitespace!r}" if whitespace else ""
    for condition in (f"JSON(X{option})", f"JSON(X, S{option})"):
        p = plan("X", condition, env={"S": {"type": ["object", "array"]}})
        for text in good:
            assert masked(p, text), (condition, text)
            assert p.finish(text) == __import__("json").loads(text)
        for text in bad:
            assert not masked(p, text), (condition, text)


def test_typed_holes_are_json_spaced_as_the_model_likes_within_bounds():
    p = type_hole("dict[str, list[int]]", {})
    assert masked(p, '{"a": [1, 2]}') and masked(p, '{\n  "a": [1, 2]\n}')
    assert not masked(p, '{"a":' + " " * 3 + "[1]}")


@pytest.mark.parametrize("condition, message", [
    ('JSON(X, whitespace="pretty")', "whitespace must be one of 'compact', 'none', 'flexible'"),
    ("JSON(X, whitespace=2)", "whitespace='compact' or 'none' or 'flexible'"),
    ('GRAMMAR(X, G, whitespace="none")', "GRAMMAR takes no argument whitespace"),
])
def test_a_json_whitespace_that_does_not_exist_is_a_clear_error(condition, message):
    with pytest.raises(ConstraintError) as info:
        plan("X", condition, env={"G": ARITH})
    assert message in info.value.message

SCHEMA = {"type": "object", "additionalProperties": False, "required": ["name"],
          "properties": {"age": {"type": "integer", "minimum": 0, "maximum": 150}, "name": {"type": "string"},
                         "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "maxItems": 2},
                         "score": {"type": "number", "exclusiveMaximum": 1}}}


@pytest.mark.parametrize("text, good", [
    ('{"name": "Bo"}', True), ('{"age": 30, "name": "Bo"}', True), ('{"name": "Bo", "tags": ["a"], "score": 0.5}', True),
    ('{"name":"Bo","tags":["a"]}', True),
    ('{"name": "Bo", "age": 3}', None),  # valid, but the mask writes the properties in the schema's order
    ('{"age": 3}', False), ('{"age": 151, "name": "Bo"}', False), ('{"name": "Bo", "tags": ["a", "b", "a"]}', False),
    ('{"name": "Bo", "score": 1}', False),
    ('{"name": "Bo", "extra": 1}', False),  # additionalProperties: false
])
def test_json_schema_is_masked_and_checked(text, good):
    p = plan("X", "JSON(X, SCHEMA)", env={"SCHEMA": SCHEMA})
    assert masked(p, text) == bool(good)
    assert accepts(p, text) == (good is not False)


# The unsound examples of issue 12: each schema against the invalid value a model was led to write.
@pytest.mark.parametrize("schema, bad, good", [
    ({"properties": {"a": {"type": "integer"}}}, '{"a": "x"}', '{"a": 1}'),
    ({"type": "object", "additionalProperties": False}, '{"a": 1}', "{}"),
    ({"type": "object", "additionalProperties": {"type": "integer"}}, '{"a": "x"}', '{"a": 1}'),
    ({"type": "integer", "enum": ["one", 1]}, '"one"', "1"),
])
def test_json_schema_examples_that_were_unsound(schema, bad, good):
    p = plan("X", "JSON(X, S)", env={"S": schema})
    assert not masked(p, bad) and not accepts(p, bad)
    assert masked(p, good) and accepts(p, good)


@pytest.mark.parametrize("schema, good, bad", [
    ({"$defs": {"n": {"type": "object", "properties": {"k": {"$ref": "#/$defs/n"}}, "additionalProperties": False}},
      "$ref": "#/$defs/n"}, '{"k": {"k": {"k": {}}}}', '{"k": {"j": 1}}'),
    ({"anyOf": [{"type": "integer"}, {"type": "string", "maxLength": 2}]}, '"ab"', '"abc"'),
    ({"oneOf": [{"type": "integer", "minimum": 5}, {"type": "integer", "maximum": 0}]}, "7", "3"),
    ({"type": "string", "pattern": "^a+$"}, '"aaa"', '"ab"'),
    ({"type": "string", "format": "date"}, '"2024-02-29"', '"2024-13-01"'),
    ({"type": "string", "format": "uuid"}, '"123e4567-e89b-12d3-a456-426614174000"', '"123"'),
    ({"type": "number", "minimum": 0, "maximum": 1}, "0.25", "1.5"),
    ({"type": "integer", "multipleOf": 5}, "15", "12"),
    ({"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}], "items": False}, '[1, "a"]', '[1, 2]'),
    ({"type": "object", "patternProperties": {"^x_": {"type": "integer"}}, "additionalProperties": False},
     '{"x_a": 1}', '{"y": 1}'),
    ({"type": "object", "minProperties": 1}, '{"a": 1}', "{}"),
    ({"const": {"a": [1, None]}}, '{"a": [1, null]}', '{"a": [1]}'),
    ({"type": "object", "title": "T", "description": "d", "$comment": "c", "x-vendor": 1, "examples": [{}],
      "properties": {"id": {"type": "string", "readonly": True, "default": "x"}}}, '{"id": "a"}', '{"id": 1}'),
])
def test_json_schema_keywords_real_schemas_use(schema, good, bad):
    p = plan("X", "JSON(X, S)", env={"S": schema})
    assert masked(p, good) and accepts(p, good)
    assert not accepts(p, bad)


def test_json_schema_keyword_the_mask_cannot_hold_is_an_error_naming_it():
    with pytest.raises(NotEnforcedError) as info:
        plan("X", "JSON(X, S)", env={"S": {"type": "array", "uniqueItems": True}})
    assert "'uniqueItems'" in info.value.message and "strict=False" in info.value.message
    assert info.value.span.text == "S"


def test_json_schema_not_strict_masks_without_the_keyword_and_checks_it():
    from lmlang.errors import LmlangWarning

    with pytest.warns(LmlangWarning, match="uniqueItems"):
        p = plan("X", "JSON(X, S, strict=False)", env={"S": {"type": "array", "items": {"type": "integer"},
                                                              "uniqueItems": True}})
    assert masked(p, "[1, 1]") and not accepts(p, "[1, 1]")
    assert p.finish("[1, 2]") == [1, 2]


@pytest.mark.parametrize("schema, message", [
    ({"type": "strin"}, "not a valid JSON schema"),
    ("{not json", "not valid JSON"),
    (3, "must be a JSON schema"),
])
def test_json_schema_that_is_not_one_is_refused(schema, message):
    with pytest.raises(ConstraintError) as info:
        plan("X", "JSON(X, S)", env={"S": schema})
    assert message in info.value.message and info.value.span.text == "S"


ARITH = """
start: expr
?expr: term (("+" | "-") term)*
?term: atom (("*" | "/") atom)*
?atom: NUMBER | "(" expr ")"
NUMBER: /[0-9]+/
"""


@pytest.mark.parametrize("text, good", [("1+2*3", True), ("((((1))))", True), ("(1+", False), ("1++2", False)])
def test_grammar_is_masked_and_checked(text, good):
    p = plan("X", "GRAMMAR(X, G)", env={"G": ARITH})
    assert masked(p, text) == good and accepts(p, text) == good
    if good:
        assert p.finish(text) == text


def test_gbnf_grammar():
    p = plan("X", "GRAMMAR(X, G)", env={"G": 'root ::= "(" root ")" | "x"'})
    assert masked(p, "((x))") and not masked(p, "((x)")


def test_grammar_combines_with_a_regex_and_a_stop_phrase():
    p = plan("X", 'GRAMMAR(X, G) and REGEX(X, r"[0-9+]*") and STOPS_BEFORE(X, "\\n")', env={"G": ARITH})
    assert masked(p, "1+2\nanything") and not masked(p, "(1)") and not masked(p, "1+\n")
    assert p.finish("1+2") == "1+2"


@pytest.mark.parametrize("source, message", [("start: foo", 'unknown name: "foo"'), ("", "needs the grammar's text")])
def test_a_grammar_that_does_not_compile_is_a_clear_error(source, message):
    with pytest.raises(ConstraintError) as info:
        plan("X", "GRAMMAR(X, G)", env={"G": source})
    assert message in info.value.message


@pytest.mark.parametrize("text", ['GRAMMAR(X, G) or X == "a"', "not JSON(X)", 'JSON(X, S) or X == "a"'])
def test_structured_conditions_inside_or_and_not_are_refused(text):
    # `not JSON(X)` through a bounded regular mask would let deeper JSON through: never an approximation.
    with pytest.raises(NotEnforcedError, match="condition of its own"):
        plan("X", text, env={"G": ARITH, "S": {"type": "integer"}})


# ------------------------------------------------------------------------------------------ typed holes

import dataclasses  # noqa: E402
import enum  # noqa: E402
from typing import Literal, Optional, TypedDict  # noqa: E402


@dataclasses.dataclass
class Address:
    city: str


@dataclasses.dataclass
class Person:
    name: str
    age: int
    home: Optional[Address] = None
    friends: list["Person"] = dataclasses.field(default_factory=list)


class Size(enum.Enum):
    S = "small"
    L = "large"


class Point(TypedDict):
    x: int
    y: int


def type_hole(source: str, env: dict):
    src = Source("query.lmq", f"[X: {source}]")
    hole_type = HoleType(src.span(4, len(src.text) - 1), "query", call=Expr(src.span(4, len(src.text) - 1), source))
    return plan("X", "", hole_type=hole_type, env=env)


@pytest.mark.parametrize("source, text, value", [
    ("Person", '{"name": "Ann", "age": 3, "home": {"city": "Rome"}, "friends": [{"name": "Bo", "age": 4}]}',
     Person("Ann", 3, Address("Rome"), [Person("Bo", 4)])),
    ("Size", '"large"', Size.L),
    ("Literal['a', 'b']", '"b"', "b"),
    ("Point", '{"x": 1, "y": 2}', {"x": 1, "y": 2}),
    ("dict[str, int]", '{"a": 1}', {"a": 1}),
    ("tuple[int, str]", '[1, "a"]', (1, "a")),
    ("set[int]", "[1, 1, 2]", {1, 2}),
    ("Optional[int]", "null", None),
    ("bool", "true", True),
])
def test_a_python_type_hole_returns_an_instance(source, text, value):
    env = {"Person": Person, "Size": Size, "Point": Point, "Literal": Literal, "Optional": Optional}
    p = type_hole(source, env)
    assert masked(p, text)
    assert p.finish(text) == value


@pytest.mark.parametrize("source, text", [
    ("Person", '{"name": "Ann"}'), ("Person", '{"name": "Ann", "age": 3, "pet": "cat"}'), ("Size", '"medium"'),
    ("Point", '{"x": 1.5, "y": 2}'),
])
def test_a_python_type_hole_refuses_what_the_type_cannot_hold(source, text):
    p = type_hole(source, {"Person": Person, "Size": Size, "Point": Point})
    assert not masked(p, text) and not accepts(p, text)


def test_a_type_lmlang_cannot_write_as_json_is_a_clear_error():
    with pytest.raises(NotEnforcedError, match="'complex' is not a type lmlang can write as JSON"):
        type_hole("complex", {})


def test_a_schema_that_blew_up_the_regular_route_compiles_at_once():
    # Four optional properties nested four deep: a 1.07-million-character regular expression and 51 s before.
    schema: dict = {"type": "integer"}
    for _ in range(4):
        schema = {"type": "object", "properties": {k: schema for k in "abcd"}}
    p = plan("X", "JSON(X, S)", env={"S": schema})
    text = '{"a": {"b": {"c": {"d": 1}}}, "d": {}}'
    assert masked(p, text) and p.finish(text) == {"a": {"b": {"c": {"d": 1}}}, "d": {}}
    assert not masked(p, '{"a": {"b": {"c": {"d": "x"}}}}')
