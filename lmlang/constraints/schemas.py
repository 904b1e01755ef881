"""JSON Schema keywords the mask engine does not implement, rewritten into ones it does, with the same meaning.

llguidance compiles ``properties``, ``required``, ``anyOf`` and ``allOf`` but refuses ``dependencies``,
``dependentRequired``, ``dependentSchemas`` and ``not``. Each form below means exactly what it replaces, so the
mask allows the values the schema allows, no more; the finished value is still checked against the schema as
written (:func:`lmlang.constraints.structured.validation_problem`).

* ``dependentRequired: {a: [b, c]}`` (``dependencies`` with a list): an object either has no ``a``, or has ``a``,
  ``b`` and ``c``: ``anyOf: [{properties: {a: false}}, {required: [a, b, c]}]``, appended to ``allOf``.
* ``dependentSchemas: {a: S}`` (``dependencies`` with a schema): ``anyOf: [{properties: {a: false}},
  {required: [a], allOf: [S]}]``.
* ``uniqueItems`` where every array the schema allows has unique items anyway (``false``, or ``maxItems`` of 0 or
  1), or where the items are an ``enum`` of a few strings: one ``anyOf`` branch per array of distinct items (four
  strings: 65 arrays), while that stays small. Anything else keeps it, for the engine to refuse by name: a
  context-free mask cannot hold it in general.
* ``not``, where its operand is a form whose complement is one of those: ``not: {}`` (or ``true``) allows nothing;
  ``not: false`` everything; ``not: {required: [a, b]}`` an object missing ``a`` or ``b`` (``required`` holds for
  anything that is not an object, so its complement is an object); ``allOf`` and ``anyOf`` of such operands by De
  Morgan. Any other ``not`` is left for the engine to refuse by name.

In drafts 3 to 7 the keywords next to a ``$ref`` are ignored (the validator ignores them too); they are dropped, since
the engine applies them and refuses them beside a recursive reference.

A name the object must have anyway (in the same schema's ``required``) needs no ``anyOf``: its dependency is
required outright, so schemas do not double in size per dependency they did not need.
"""

from __future__ import annotations

import copy
import itertools
import math
from typing import Any
from urllib.parse import unquote

# Keywords whose value is one schema, a list of schemas, or an object of schemas: where schemas nest.
_ONE = ("additionalItems", "additionalProperties", "contains", "propertyNames", "not", "if", "then", "else",
        "unevaluatedItems", "unevaluatedProperties", "contentSchema", "items")
_LIST = ("allOf", "anyOf", "oneOf", "prefixItems", "items")
_MAP = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas", "dependencies")
# Keywords that say nothing about which values are valid: an operand of `not` may carry them.
_ANNOTATIONS = frozenset({"title", "description", "$comment", "examples", "default", "$id", "id", "$schema",
                          "readOnly", "writeOnly", "deprecated"})


def rewrite(schema: Any) -> Any:
    """``schema`` with the keywords above replaced by their equivalents (a copy; ``schema`` is not changed)."""
    if not isinstance(schema, dict):
        return schema
    schema = copy.deepcopy(schema)
    legacy = _legacy(schema)
    refs = {unquote(r) for r in _refs(schema)} if legacy else None
    _walk(schema, "#", refs, legacy)
    return schema


def _legacy(schema: dict) -> bool:
    """Whether the schema's dialect ignores the keywords next to a ``$ref`` (drafts 3 to 7), as its validator
    does."""
    import jsonschema  # here: importing it costs every start a tenth of a second

    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return cls in (jsonschema.Draft3Validator, jsonschema.Draft4Validator, jsonschema.Draft6Validator,
                   jsonschema.Draft7Validator)


def _refs(value: Any) -> list[str]:
    if isinstance(value, dict):
        found = [value["$ref"]] if isinstance(value.get("$ref"), str) else []
        return found + [r for v in value.values() for r in _refs(v)]
    if isinstance(value, list):
        return [r for v in value for r in _refs(v)]
    return []


def _pointer(path: str, key: str | int) -> str:
    return f"{path}/{str(key).replace('~', '~0').replace('/', '~1')}"


def _walk(schema: Any, path: str, refs: set[str] | None, legacy: bool) -> None:
    if not isinstance(schema, dict):
        return
    if refs is not None and isinstance(schema.get("$ref"), str):
        _drop_ref_siblings(schema, path, refs)
    for key in _ONE:
        if isinstance(schema.get(key), dict):
            _walk(schema[key], _pointer(path, key), refs, legacy)
    for key in _LIST:
        if isinstance(schema.get(key), list):
            for i, part in enumerate(schema[key]):
                _walk(part, _pointer(_pointer(path, key), i), refs, legacy)
    for key in _MAP:
        if isinstance(schema.get(key), dict):
            for name, part in schema[key].items():
                _walk(part, _pointer(_pointer(path, key), name), refs, legacy)
    _dependencies(schema)
    _not(schema)
    _unique_items(schema, legacy)


def _unique_items(schema: dict, legacy: bool) -> None:
    """``uniqueItems`` where it holds of every array the rest allows (``false``, or at most one item), or where
    the items come from a short list of strings: then the arrays of distinct items, one ``anyOf`` branch each."""
    if schema.get("uniqueItems") is not True:
        if schema.get("uniqueItems") is False:
            del schema["uniqueItems"]
        return
    most = schema.get("maxItems")
    if isinstance(most, int) and most <= 1:
        del schema["uniqueItems"]
        return
    values = _finite_strings(schema.get("items"))
    if values is None:
        return
    least = schema.get("minItems", 0) if isinstance(schema.get("minItems"), int) else 0
    longest = min(len(values), most if isinstance(most, int) else len(values))
    if least > longest:  # no array of distinct items is long enough: nothing is valid
        branches: list[Any] = []
    else:
        if sum(math.perm(len(values), n) for n in range(least, longest + 1)) > _UNIQUE_BRANCHES:
            return  # too many to list: left for the engine, which names it
        branches = [_exactly(list(chosen), legacy) for n in range(least, longest + 1)
                    for chosen in itertools.permutations(values, n)]
    del schema["uniqueItems"]
    schema["allOf"] = [*schema.get("allOf", []), {"anyOf": branches} if branches else False]


_UNIQUE_BRANCHES = 256  # arrays listed for uniqueItems at most (four strings in any order: 65)


def _finite_strings(items: Any) -> list[str] | None:
    """The strings an ``items`` schema that is only an ``enum`` or ``const`` of strings allows (None otherwise)."""
    if not isinstance(items, dict):
        return None
    rest = {k: v for k, v in items.items() if k not in _ANNOTATIONS}
    if rest.get("type", "string") != "string":
        return None
    rest.pop("type", None)
    if set(rest) == {"const"}:
        found = [rest["const"]]
    elif set(rest) == {"enum"} and isinstance(rest["enum"], list):
        found = rest["enum"]
    else:
        return None
    if not all(isinstance(v, str) for v in found):
        return None
    return list(dict.fromkeys(found))


def _exactly(values: list[str], legacy: bool) -> dict:
    """The one array ``values``, in the dialect's words for items by position."""
    consts = [{"const": v} for v in values]
    if legacy:
        return {"items": consts, "additionalItems": False, "minItems": len(values)}
    return {"prefixItems": consts, "items": False, "minItems": len(values)}


def _dependencies(schema: dict) -> None:
    required = set(schema["required"]) if isinstance(schema.get("required"), list) else set()
    added: list[Any] = []
    for key in ("dependencies", "dependentRequired", "dependentSchemas"):
        found = schema.get(key)
        if not isinstance(found, dict) or not all(_is_names(v) or isinstance(v, (dict, bool))
                                                  for v in found.values()):
            continue  # not a form this knows: left for the engine, which names it
        del schema[key]
        for name, then in found.items():
            if then is True or then == [] or then == {}:
                continue
            if then is False:
                present: Any = False
            elif isinstance(then, list):
                present = {"required": [name, *then]}
            else:
                present = {"required": [name], "allOf": [then]}
            if present is False:  # the name is not allowed (an object that must have it is not valid)
                added.append(_absent([name]))
            elif name in required:
                added.append(present)
            else:
                added.append({"anyOf": [_absent([name]), present]})
    if added:
        schema["allOf"] = [*schema.get("allOf", []), *added]


def _drop_ref_siblings(schema: dict, path: str, refs: set[str]) -> None:
    """Drafts 3 to 7: a ``$ref`` stands for the whole schema, its siblings are ignored; the engine, which would
    apply them, refuses them around a recursive reference. Kept: definitions, and anything a reference points
    into."""
    for key in list(schema):
        if key in ("$ref", "definitions", "$defs", "$id", "id", "$schema") or key in _ANNOTATIONS:
            continue
        inside = _pointer(path, key)
        if not any(r == inside or r.startswith(inside + "/") for r in refs):
            del schema[key]


def _is_names(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _absent(names: list[str]) -> dict:
    return {"properties": {n: False for n in names}}


def _not(schema: dict) -> None:
    if "not" not in schema:
        return
    complement = _complement(schema["not"])
    if complement is None:
        return
    del schema["not"]
    if complement is not True:
        schema["allOf"] = [*schema.get("allOf", []), complement]


def _complement(operand: Any) -> Any:
    """A schema allowing exactly the values ``operand`` does not (``True``: all), or None when this cannot say."""
    if operand is False:
        return True
    if operand is True:
        return False
    if not isinstance(operand, dict):
        return None
    rest = {k: v for k, v in operand.items() if k not in _ANNOTATIONS}
    if not rest:
        return False
    if set(rest) == {"required"} and _is_names(rest["required"]):
        names = list(dict.fromkeys(rest["required"]))
        if not names:
            return False
        if len(names) == 1:
            return {"type": "object", **_absent(names)}
        return {"type": "object", "anyOf": [_absent([n]) for n in names]}
    # De Morgan: not (A and B) = not A or not B; not (A or B) = not A and not B.
    for keyword, dual, absorbing in (("allOf", "anyOf", True), ("anyOf", "allOf", False)):
        if set(rest) == {keyword} and isinstance(rest[keyword], list) and rest[keyword]:
            parts = [_complement(p) for p in rest[keyword]]
            if any(p is None for p in parts):
                return None
            if any(p is absorbing for p in parts):
                return absorbing
            kept = [p for p in parts if p is not (not absorbing)]
            return {dual: kept} if kept else (not absorbing)
    return None
