"""``if``/``then``/``else``, ``propertyNames`` and ``not`` of a type, a value or a pattern, rewritten into keywords
the engine implements (lmlang.constraints.schemas): over every small instance, the mask allows exactly what
jsonschema accepts; what has no exact rewrite is an error naming it, or with strict=False a check of the value."""

from __future__ import annotations

import itertools
import json
import warnings

import jsonschema
import pytest

import lmlang
from lmlang.constraints import plan_hole
from lmlang.constraints.schemas import rewrite
from lmlang.constraints.structured import mask_grammar
from lmlang.errors import ConstraintError, LmlangWarning, NotEnforcedError
from lmlang.source import Source
from lmlang.syntax.ast import Expr

DRAFT4 = "http://json-schema.org/draft-04/schema#"
DRAFT7 = "http://json-schema.org/draft-07/schema#"
ABC = {"a": {}, "b": {}, "c": {}}
SCALARS = [None, True, False, 0, 1, 2, 2.5, -1, "", "x", "y", "xy", "yx", "http", "htt", "https"]


def plan(schema, strict: bool = True):
    text = "where JSON(X, S)" if strict else "where JSON(X, S, strict=False)"
    source = Source("query.lmq", text)
    return plan_hole("X", [Expr(source.span(6, len(source.text)), text[6:])], None, {"S": schema}, {}, ("X",))


def masked(p, text: str) -> bool:
    return all(mask_grammar(s, p.stops).accepts(text.encode()) for s in p.structures)


def objects(keys: str = "abc", values: tuple = (1, "x", True, None)) -> list[str]:
    """Every object with a subset of ``keys`` (in that order, the order the mask writes them in) and values from
    ``values``."""
    found = []
    for n in range(len(keys) + 1):
        for chosen in itertools.combinations(keys, n):
            for picked in itertools.product(values, repeat=n):
                found.append(json.dumps(dict(zip(chosen, picked))))
    return found


def scalars() -> list[str]:
    return [json.dumps(v) for v in SCALARS] + ["[]", "{}", "[1]"]


def strings(alphabet: str, longest: int) -> list[str]:
    return [json.dumps("".join(s), ensure_ascii=False)
            for n in range(longest + 1) for s in itertools.product(alphabet, repeat=n)]


def exact(schema, texts: list[str]) -> None:
    p = plan(schema)
    validator = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)(schema)
    valid = 0
    for text in texts:
        ok = validator.is_valid(json.loads(text))
        valid += ok
        assert masked(p, text) == ok, text
    assert 0 < valid < len(texts)  # the instances tell the schema apart from true and false


IF_THEN_ELSE = [
    {"type": "object", "properties": ABC,
     "if": {"properties": {"a": {"const": "x"}}}, "then": {"required": ["b"]}, "else": {"required": ["c"]}},
    {"$schema": DRAFT7, "properties": ABC,  # JSONSchemaStore's usual form: a tag names the shape of the rest
     "if": {"properties": {"a": {"const": "x"}}, "required": ["a"], "type": "object"},
     "then": {"properties": {"b": {"type": "integer"}}, "type": "object"}},
    {"properties": ABC, "if": {"properties": {"a": {"enum": ["x", 1, True, None]}}},
     "then": {"properties": {"b": {"const": 1}}}, "else": {"properties": {"b": {"type": "string"}}}},
    {"properties": ABC, "if": {"properties": {"a": {"type": "string"}}, "required": ["a"]},
     "else": {"properties": {"c": False}}},
    {"properties": ABC, "if": {"not": {"required": ["a"]}}, "then": {"required": ["b"]}},
    {"properties": ABC, "if": {"properties": {"a": {"const": True}, "b": {"const": "x"}}},
     "then": {"properties": {"c": {"type": "boolean"}}}, "else": {"properties": {"c": {"type": "null"}}}},
    {"properties": ABC, "allOf": [  # several, each on its own tag value
        {"if": {"properties": {"a": {"const": "x"}}, "required": ["a"]}, "then": {"required": ["b"]}},
        {"if": {"properties": {"a": {"const": 1}}, "required": ["a"]}, "then": {"required": ["c"]}}]},
]


@pytest.mark.parametrize("schema", IF_THEN_ELSE)
def test_if_then_else_over_every_small_object(schema):
    exact(schema, [*objects(), "1", '"x"', "[]"])


@pytest.mark.parametrize("schema", [
    {"if": {"enum": [1, 2.5, "x", "xy"]}, "then": {"type": "number"}, "else": {"type": ["string", "boolean"]}},
    {"if": {"const": "http"}, "else": {"not": {"type": ["null", "array", "object"]}}},
    {"if": {"type": "integer"}, "then": {"minimum": 1}},  # a type's complement: here no type says it
])
def test_if_on_values_over_every_small_scalar(schema):
    if schema["if"] == {"type": "integer"}:
        with pytest.raises(NotEnforcedError, match="'if'"):
            plan(schema)
        return
    exact(schema, scalars())


@pytest.mark.parametrize("schema", [
    {"properties": ABC, "if": {"properties": {"a": {"const": 1}}}},  # no then, no else: nothing to hold
    {"properties": ABC, "then": {"required": ["a"]}, "else": False},  # no if: ignored
    {"$schema": DRAFT4, "properties": ABC, "if": {"properties": {"a": {"const": 1}}}, "then": False},  # not a
    # draft 4 keyword: its validator ignores it, so does the mask
])
def test_conditionals_that_say_nothing_allow_everything(schema):
    p = plan(schema)
    validator = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)(schema)
    for text in objects():
        assert validator.is_valid(json.loads(text)) and masked(p, text), text


@pytest.mark.parametrize("schema", [
    {"not": {"type": ["array", "object", "null"]}},  # Github_medium's
    {"not": {"type": "number"}},
    {"not": {"enum": ["x", "xy", 1, 2.5, False]}},
    {"not": {"const": None}},
    {"not": {"not": {"type": "string"}}},
    {"not": {"type": "string", "const": "x"}},
])
def test_not_of_a_type_or_a_value(schema):
    exact(schema, scalars())


def test_not_of_properties_over_every_small_object():
    exact({"properties": ABC, "not": {"properties": {"a": {"const": 1}, "b": {"type": "string"}}}}, objects())
    exact({"type": "object", "properties": ABC, "not": {"required": ["a"], "properties": {"b": {"const": 1}}}},
          objects())


# Github_ultra's officer names: not only dots, commas, stars, dashes, braces and white space.
NAME = r"^[\.\,\*\\\-\s\{\}\(\)]+$"


@pytest.mark.parametrize("schema, alphabet", [
    ({"type": "string", "minLength": 1, "not": {"pattern": NAME}}, ".a \n\x1c\u00e9\u2003"),
    ({"type": "string", "not": {"pattern": r"^[a\s]*$"}}, "ab \n\x0b"),
    ({"not": {"pattern": r"^[^b]+$"}}, "ab\n"),
    ({"type": "string", "not": {"pattern": r"^[\d\s]+$"}}, "1a\n\u0663"),  # Python's \d: every script's digits
])
def test_not_of_a_pattern_of_one_class_over_every_short_string(schema, alphabet):
    exact(schema, [*strings(alphabet, 3), "1", "null"])


@pytest.mark.parametrize("schema", [
    {"type": "string", "not": {"pattern": "^a"}},
    {"type": "string", "not": {"pattern": "^[ab]+$"}},  # Python's $ also ends before a final line break
    {"type": "string", "not": {"pattern": "//"}},
    {"type": "string", "not": {"pattern": r"^\d+$"}},
])
def test_not_of_other_patterns_stays_an_error(schema):
    with pytest.raises(NotEnforcedError, match="'not'"):
        plan(schema)


PROPERTY_NAMES = [
    ({"type": "object", "propertyNames": {"enum": ["a", "b"]}}, "abc"),
    ({"properties": {"a": {"type": "integer"}, "c": {}}, "propertyNames": {"enum": ["a", "b"], "type": "string"},
      "additionalProperties": {"type": "string"}}, "acb"),
    ({"patternProperties": {"^b": {"type": "integer"}}, "propertyNames": {"const": "b"}}, "abc"),
    ({"propertyNames": {"pattern": "^[ab]$"}, "additionalProperties": {"type": "integer"}}, "abc"),
    ({"properties": {"c": {"type": "string"}}, "propertyNames": {"pattern": "^[ab]$"}}, "cab"),
    ({"properties": {"a": {"type": "string"}}, "propertyNames": {"pattern": "^[ab]$"},
      "additionalProperties": False}, "abc"),
    ({"$defs": {"d": {"enum": ["a", "b"]}}, "propertyNames": {"$ref": "#/$defs/d"},
      "additionalProperties": {"type": "integer"}}, "abc"),
    ({"$schema": DRAFT7, "definitions": {"d": {"enum": ["a", "c"]}}, "type": "object",
      "propertyNames": {"$ref": "#/definitions/d"}}, "abc"),
    ({"propertyNames": False}, "abc"),
]


@pytest.mark.parametrize("schema, order", PROPERTY_NAMES)
def test_property_names_over_every_small_object(schema, order):
    exact(schema, [*objects(order), "1"])


def test_property_names_by_length():
    texts = [json.dumps(dict.fromkeys(keys, 1)) for n in range(3) for keys in itertools.combinations(
        ["", "a", "bb", "ccc"], n)]
    exact({"type": "object", "propertyNames": {"minLength": 1, "maxLength": 2}}, texts)


@pytest.mark.parametrize("schema", [
    {"type": "object", "propertyNames": {"type": "string"}},
    {"$schema": DRAFT4, "type": "object", "propertyNames": False},  # not a draft 4 keyword
])
def test_property_names_every_name_passes(schema):
    p = plan(schema)
    for text in objects():
        assert masked(p, text), text


@pytest.mark.parametrize("schema", [
    {"type": "object", "propertyNames": {"pattern": "^a", "maxLength": 3}},
    {"type": "object", "patternProperties": {"x": {}}, "propertyNames": {"pattern": "^a"}},
    {"type": "object", "properties": {"ab": {}}, "additionalProperties": {"type": "integer"},
     "propertyNames": {"pattern": "^a"}},
    {"type": "object", "propertyNames": {"format": "email"}},
])
def test_other_property_names_stay_an_error(schema):
    with pytest.raises(NotEnforcedError, match="'propertyNames'") as info:
        plan(schema)
    assert "strict=False" in info.value.message


# ------------------------------------------------------------------------------------------ strict=False


@pytest.mark.parametrize("schema, keyword, good, bad", [
    ({"type": "array", "items": {"type": "string"}, "uniqueItems": True}, "uniqueItems", '["x", "y"]', '["x", "x"]'),
    ({"type": "object", "properties": ABC, "if": {"properties": {"a": {"type": "integer"}}},
      "then": {"required": ["b"]}}, "if", '{"a": 1, "b": 2}', '{"a": 1}'),
    ({"type": "object", "propertyNames": {"pattern": "^a", "maxLength": 2}}, "propertyNames", '{"ab": 1}',
     '{"abc": 1}'),
    ({"type": "string", "not": {"pattern": "^a"}}, "not", '"ba"', '"ab"'),
])
def test_without_strict_the_mask_ignores_the_keyword_and_the_value_is_checked(schema, keyword, good, bad):
    with pytest.raises(NotEnforcedError, match=f"'{keyword}'"):
        plan(schema)
    with pytest.warns(LmlangWarning, match=f"'{keyword}'"):
        p = plan(schema, strict=False)
    assert masked(p, bad)  # the mask lets it through ...
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert p.finish(good) == json.loads(good)
        with pytest.raises(ConstraintError, match="invalid under the schema"):  # ... the check does not
            p.finish(bad)


# ------------------------------------------------------------------------------------------ on SmolLM2

GENERATED = [  # each schema, and a valid example the prompt shows
    ({"type": "object", "properties": {"kind": {"enum": ["cat", "dog"]}, "name": {"type": "string", "maxLength": 12},
                                       "barks": {"type": "boolean"}},
      "required": ["kind", "name"], "additionalProperties": False,
      "if": {"properties": {"kind": {"const": "dog"}}}, "then": {"required": ["barks"]},
      "else": {"properties": {"barks": False}}}, {"kind": "dog", "name": "Rex", "barks": True}),
    ({"type": "object", "propertyNames": {"enum": ["x", "y"]}, "additionalProperties": {"type": "integer"},
      "minProperties": 1}, {"x": 3, "y": 4}),
    ({"type": "object", "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 12,
                                                "not": {"pattern": r"^[\.\-\s]+$"}}},
      "required": ["name"], "additionalProperties": False}, {"name": "Ada"}),
]
PROMPT = 'argmax\n"A JSON value: {EX}\\nAnother JSON value:[X]" where JSON(X, S{OPTS})\n'


@pytest.mark.model
def test_generated_values_are_valid(smollm2) -> None:
    values = 0
    for schema, shown in GENERATED:
        query = lmlang.compile(PROMPT.replace("{OPTS}", ""))
        try:
            result = query.run("smollm2", S=schema, EX=json.dumps(shown), decoder_args={"max_tokens": 40})
        except ConstraintError:
            continue  # out of tokens: never an invalid value
        jsonschema.validate(result.variables["X"], schema)
        values += 1
    assert values >= 2


@pytest.mark.model
def test_without_strict_a_generated_value_is_valid_or_refused(smollm2) -> None:
    schema = {"type": "array", "items": {"type": "string", "maxLength": 8}, "maxItems": 4, "uniqueItems": True}
    query = lmlang.compile(PROMPT.replace("{OPTS}", ", strict=False"))
    outcomes = 0
    for shown in (["a", "b", "c"], ["ok", "ok", "ok"]):  # the second example is itself invalid
        try:
            with pytest.warns(LmlangWarning, match="uniqueItems"):
                result = query.run("smollm2", S=schema, EX=json.dumps(shown), decoder_args={"max_tokens": 40})
        except ConstraintError:
            outcomes += 1
            continue
        jsonschema.validate(result.variables["X"], schema)
        outcomes += 1
    assert outcomes == 2


@pytest.mark.parametrize("test", [
    {"properties": {"a": {"const": VALUE}}} for VALUE in ("x",)] + [
    {"properties": {"a": {"const": "x"}}, "required": ["a"]},
    {"properties": {"a": {"const": "x"}}, "required": ["a"], "type": "object"},
    {"properties": {"a": {"const": "x"}}, "type": "object"},
])
def test_tagged_conditionals_over_every_small_value(test):
    """JSONSchemaStore's tagged unions: one if/then per tag value, rewritten as one anyOf (not one per if)."""

    def on(value, then):
        return {"if": {**test, "properties": {"a": {"const": value}}}, "then": then}

    schema = {"properties": ABC, "allOf": [
        on("x", {"required": ["b"]}), on(1, {"properties": {"b": {"type": "string"}}}),
        on("x", {"properties": {"c": {"const": 1}}}), on(True, {"properties": {"c": False}}),
        {"properties": {"c": {"type": ["integer", "boolean"]}}}]}
    exact(schema, [*objects(values=(1, "x", True)), "1", '"x"', "[]", "null"])
    parts = rewrite(schema)["allOf"]
    assert len(parts) == 2  # the four conditionals became one


@pytest.mark.parametrize("unique", [False, True])
def test_a_rewrite_the_engine_cannot_compile_leaves_the_keyword_to_refuse_by_name(unique):
    """A `then` the engine cannot compile (overlapping patternProperties, an llguidance limit) stays unrewritten:
    strict, an error naming `if` (or another keyword it cannot enforce); strict=False, the mask ignores the
    conditional and the value is checked."""
    schema = {"type": "object", "if": {"properties": {"a": {"const": 1}}},
              "then": {"patternProperties": {".*": {}, "^x$": {"type": "integer"}}}}
    if unique:
        schema["properties"] = {"u": {"type": "array", "items": {"type": "string"}, "uniqueItems": True}}
    keyword = "'(if|uniqueItems)'" if unique else "'if'"
    with pytest.raises(NotEnforcedError, match=keyword):
        plan(schema)
    with pytest.warns(LmlangWarning, match=keyword):
        p = plan(schema, strict=False)
    assert masked(p, '{"a": 1, "x": "y"}')
    with pytest.raises(ConstraintError, match="invalid under the schema"):
        p.finish('{"a": 1, "x": "y"}')
    assert p.finish('{"a": 2, "x": "y"}') == {"a": 2, "x": "y"}
