"""JSON Schema keywords the engine does not implement, rewritten (lmlang.constraints.schemas): over every small
instance, the mask allows exactly what jsonschema accepts, and what stays unenforceable is an error naming it."""

from __future__ import annotations

import itertools
import json

import jsonschema
import pytest

from lmlang.constraints import plan_hole
from lmlang.constraints.schemas import rewrite
from lmlang.constraints.structured import mask_grammar
from lmlang.errors import ConstraintError, NotEnforcedError
from lmlang.source import Source
from lmlang.syntax.ast import Expr

DRAFT7 = "http://json-schema.org/draft-07/schema#"
ABC = {"a": {"type": "integer"}, "b": {"type": "integer"}, "c": {"type": "integer"}}


def plan(schema):
    source = Source("query.lmq", "where JSON(X, S)")
    return plan_hole("X", [Expr(source.span(6, len(source.text)), "JSON(X, S)")], None, {"S": schema}, {}, ("X",))


def masked(p, text: str) -> bool:
    return all(mask_grammar(s, p.stops).accepts(text.encode()) for s in p.structures)


def instances() -> list[str]:
    """Every object with a subset of a, b, c (in the schema's order, as the mask writes them), and two non-objects."""
    objects = [json.dumps({k: 1 for k in keys}) for n in range(4) for keys in itertools.combinations("abc", n)]
    return [*objects, "1", '"x"']


@pytest.mark.parametrize("schema", [
    {"$schema": DRAFT7, "type": "object", "properties": ABC, "dependencies": {"a": ["b"]}},
    {"$schema": DRAFT7, "properties": ABC, "dependencies": {"a": ["b", "c"], "c": ["b"]}},
    {"properties": ABC, "dependentRequired": {"a": ["b", "c"]}},
    {"type": "object", "properties": ABC, "dependentSchemas": {"a": {"required": ["c"]}, "b": False}},
    {"$schema": DRAFT7, "type": "object", "properties": ABC,
     "dependencies": {"a": {"not": {"required": ["b"]}}, "b": {"not": {"required": ["a"]}}}},
    {"type": "object", "properties": ABC, "required": ["a"], "dependentRequired": {"a": ["b"]}},
    {"properties": ABC, "required": ["a"], "dependentSchemas": {"b": False, "c": True}},
    {"type": "object", "properties": ABC, "not": {"required": ["a", "b"]}},
    {"properties": ABC, "not": {"required": ["c"]}},
    {"properties": ABC, "not": {"anyOf": [{"required": ["a"]}, {"required": ["b"]}]}},
    {"properties": ABC, "not": {"allOf": [{"required": ["a"]}, {"required": ["c"]}], "description": "not both"}},
    {"type": "object", "properties": {**ABC, "b": {"not": {}}}},
    {"type": "object", "properties": {**ABC, "c": {"type": "integer", "not": False}}},
    {"type": "object", "properties": ABC, "oneOf": [{"required": ["a"], "not": {"required": ["b"]}},
                                                    {"required": ["b"], "not": {"required": ["a"]}}]},
])
def test_the_mask_allows_exactly_what_the_schema_does(schema):
    p = plan(schema)
    validator = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)(schema)
    for text in instances():
        assert masked(p, text) == validator.is_valid(json.loads(text)), text


@pytest.mark.parametrize("schema, good, bad", [
    ({"type": "array", "items": {"type": "integer"}, "uniqueItems": False}, "[1, 1]", '["x"]'),
    ({"type": "array", "items": {"type": "integer"}, "maxItems": 1, "uniqueItems": True}, "[1]", "[1, 2]"),
    # draft 7: what stands beside a $ref is ignored (jsonschema ignores it too)
    ({"$schema": DRAFT7, "definitions": {"n": {"type": "integer"}},
      "properties": {"a": {"$ref": "#/definitions/n", "type": "string"}}}, '{"a": 1}', '{"a": "x"}'),
    # ... but not in 2020-12, where both apply
    ({"$defs": {"n": {"type": "integer", "minimum": 0}},
      "properties": {"a": {"$ref": "#/$defs/n", "maximum": 5}}}, '{"a": 3}', '{"a": 7}'),
    # a reference into the siblings of a $ref still finds them
    ({"$schema": DRAFT7, "definitions": {"n": {"type": "integer"}},
      "properties": {"a": {"$ref": "#/definitions/n", "properties": {"x": {"type": "string"}}},
                     "b": {"$ref": "#/properties/a/properties/x"}}}, '{"a": 1, "b": "y"}', '{"a": 1, "b": 2}'),
])
def test_keywords_that_hold_of_every_value_the_rest_allows(schema, good, bad):
    p = plan(schema)
    validator = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)(schema)
    assert validator.is_valid(json.loads(good)) and masked(p, good)
    assert not validator.is_valid(json.loads(bad)) and not masked(p, bad)


def test_rewriting_leaves_the_users_schema_unchanged():
    schema = {"type": "object", "properties": ABC, "dependentRequired": {"a": ["b"]}, "not": {"required": ["c"]}}
    before = json.dumps(schema)
    assert "dependentRequired" not in json.dumps(rewrite(schema))
    assert json.dumps(schema) == before


@pytest.mark.parametrize("schema, keyword", [
    ({"type": "string", "not": {"pattern": "^a"}}, "'not'"),
    ({"type": "object", "properties": ABC, "not": {"required": ["a"], "additionalProperties": False}}, "'not'"),
    ({"type": "array", "items": {"type": "string"}, "uniqueItems": True}, "'uniqueItems'"),
    ({"type": "array", "items": {"enum": list("abcdefgh")}, "uniqueItems": True}, "'uniqueItems'"),  # too many
    ({"type": "array", "items": {"enum": ["a", 1]}, "uniqueItems": True}, "'uniqueItems'"),
    ({"type": "object", "properties": ABC, "dependentSchemas": {"a": {"not": {"type": "integer"}}}}, "'not'"),
])
def test_what_stays_unenforceable_is_an_error_naming_it(schema, keyword):
    with pytest.raises(NotEnforcedError) as info:
        plan(schema)
    assert keyword in info.value.message and "strict=False" in info.value.message


def arrays(values: list[str], longest: int) -> list[str]:
    """Every array of up to ``longest`` items from ``values``, repeats included."""
    return [json.dumps(list(a)) for n in range(longest + 1) for a in itertools.product(values, repeat=n)]


@pytest.mark.parametrize("schema", [
    {"type": "array", "items": {"enum": ["x", "y", "z"]}, "uniqueItems": True},
    {"type": "array", "items": {"type": "string", "enum": ["x", "y", "z"]}, "uniqueItems": True, "minItems": 2},
    {"$schema": DRAFT7, "type": "array", "items": {"enum": ["x", "y", "z"]}, "uniqueItems": True, "maxItems": 2},
    {"type": "array", "items": {"const": "x"}, "uniqueItems": True},
    {"type": "array", "items": {"enum": ["x", "y"]}, "uniqueItems": True, "minItems": 3},  # nothing is valid
])
def test_unique_items_from_a_short_list_of_strings(schema):
    validator = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)(schema)
    texts = arrays(["x", "y", "z"], 4)
    if not any(validator.is_valid(json.loads(t)) for t in texts):
        with pytest.raises(ConstraintError, match="[Uu]nsatisfiable"):
            plan(schema)
        return
    p = plan(schema)
    for text in texts:
        assert masked(p, text) == validator.is_valid(json.loads(text)), text


def test_a_format_no_draft_defines_is_an_annotation_and_a_standard_one_the_mask_lacks_is_an_error() -> None:
    schema = {"type": "object", "properties": {"t": {"type": "string", "format": "topic"}}, "required": ["t"]}
    p = plan(schema)
    for text in ('{"t": "anything at all"}', '{"t": ""}'):
        assert masked(p, text)
        assert jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).is_valid(
            json.loads(text))  # the validator ignores it too: nothing invalid gets through
    assert not masked(p, '{"t": 1}')
    with pytest.raises(NotEnforcedError, match="'idn-email'"):
        plan({"type": "string", "format": "idn-email"})
