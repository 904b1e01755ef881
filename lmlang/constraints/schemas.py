"""JSON Schema keywords the mask engine does not implement, rewritten into ones it does, with the same meaning.

llguidance compiles ``properties``, ``required``, ``anyOf`` and ``allOf`` but refuses ``dependencies``,
``dependentRequired``, ``dependentSchemas``, ``not``, ``if``/``then``/``else`` and ``propertyNames``. Each form
below means exactly what it replaces, so the mask allows the values the schema allows, no more; the finished value
is still checked against the schema as written (:func:`lmlang.constraints.structured.validation_problem`).

* ``dependentRequired: {a: [b, c]}`` (``dependencies`` with a list): an object either has no ``a``, or has ``a``,
  ``b`` and ``c``: ``anyOf: [{properties: {a: false}}, {required: [a, b, c]}]``, appended to ``allOf``.
* ``dependentSchemas: {a: S}`` (``dependencies`` with a schema): ``anyOf: [{properties: {a: false}},
  {required: [a], allOf: [S]}]``.
* ``uniqueItems`` where every array the schema allows has unique items anyway (``false``, or ``maxItems`` of 0 or
  1), or where the items are an ``enum`` of a few strings: one ``anyOf`` branch per array of distinct items (four
  strings: 65 arrays), while that stays small. Anything else keeps it, for the engine to refuse by name: a
  context-free mask cannot hold it in general.
* ``not``, where its operand is a form whose complement can be written positively: ``not: {}`` (or ``true``)
  allows nothing; ``not: false`` everything; ``not: {required: [a, b]}`` an object missing ``a`` or ``b``
  (``required`` holds for anything that is not an object, so its complement is an object); a ``type`` (the other
  types, unless the complement would need the numbers with a fraction); a ``const`` or ``enum`` of scalars (the
  other types, the other boolean, the open intervals around the numbers, a pattern matching every other string);
  ``properties`` (an object with one of them failing its schema); a ``pattern`` of one class of characters,
  ``^C+$`` or ``^C*$`` (a string with a character outside the class, written out in code points as Python reads
  it; only when the class holds the line break, since Python's ``$`` also matches before a final one); ``not``;
  several of these side by side, and ``allOf``/``anyOf`` of them, by De Morgan. Any other ``not`` is left for the
  engine to refuse by name.
* ``if``/``then``/``else``, where the ``if`` has such a complement: ``anyOf: [allOf: [if, then], allOf: [not-if,
  else]]``. An ``allOf`` of ``if: {properties: {P: {const: c}}}``/``then`` pairs on one tag property becomes one
  ``anyOf`` with a branch per tag value (and one for objects without the tag, and one for other values), not one
  ``anyOf`` per condition, which the engine would multiply out.
* ``propertyNames`` that every string passes (``type: string``) goes; an ``enum``/``const`` (or ``false``) lists the
  names: each becomes a ``properties`` entry (holding what ``patternProperties`` or ``additionalProperties`` held
  for it) and ``additionalProperties`` is ``false``; a ``pattern`` or a range of lengths becomes
  ``patternProperties: {that: additionalProperties}`` with ``additionalProperties: false``, a listed property
  whose name fails is ``false`` (only where no ``patternProperties`` and no listed name would change meaning). A
  local ``$ref`` to one of those forms is followed. The pattern is read by the engine's regular expressions, as
  ``pattern`` is: where they and Python's differ, the final check decides.
* Keywords the schema's draft does not have (``if``/``then``/``else`` before draft 7, ``propertyNames`` before
  draft 6) go: its validator ignores them.

In drafts 3 to 7 the keywords next to a ``$ref`` are ignored (the validator ignores them too); they are dropped, since
the engine applies them and refuses them beside a recursive reference.

A name the object must have anyway (in the same schema's ``required``) needs no ``anyOf``: its dependency is
required outright, so schemas do not double in size per dependency they did not need.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import itertools
import json
import math
import re
from typing import Any
from urllib.parse import unquote

try:  # the parser of Python's own regular expressions, to read a character class as Python does
    from re import _constants as re_constants, _parser as re_parser
except ImportError:  # Python before 3.11
    import sre_constants as re_constants  # type: ignore[no-redef]
    import sre_parse as re_parser  # type: ignore[no-redef]

# Keywords whose value is one schema, a list of schemas, or an object of schemas: where schemas nest.
_ONE = ("additionalItems", "additionalProperties", "contains", "propertyNames", "not", "if", "then", "else",
        "unevaluatedItems", "unevaluatedProperties", "contentSchema", "items")
_LIST = ("allOf", "anyOf", "oneOf", "prefixItems", "items")
_MAP = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas", "dependencies")
# Keywords that say nothing about which values are valid: an operand of `not` may carry them.
_ANNOTATIONS = frozenset({"title", "description", "$comment", "examples", "default", "$id", "id", "$schema",
                          "readOnly", "writeOnly", "deprecated"})


def rewrite(schema: Any, conditions: bool = True) -> Any:
    """``schema`` with the keywords above replaced by their equivalents (a copy; ``schema`` is not changed).
    ``conditions=False`` leaves ``if``/``then``/``else``, ``propertyNames`` and any ``not`` but one of ``required``
    (and combinations of those) as they are: their rewrites put schemas the engine never had to compile
    (a ``then``, a complement) into the mask, where the engine may meet a limit of its own."""
    if not isinstance(schema, dict):
        return schema
    schema = copy.deepcopy(schema)
    legacy, unknown = _dialect(schema)
    refs = {unquote(r) for r in _refs(schema)} if legacy else None
    _walk(schema, "#", refs, legacy, _Context(schema, unknown, conditions))
    return schema


@dataclasses.dataclass(frozen=True)
class _Context:
    root: dict  # the schema being rewritten, where local references point
    unknown: frozenset[str]  # keywords the schema's dialect does not have: its validator ignores them
    conditions: bool  # whether to rewrite conditions (see rewrite)


def _dialect(schema: dict) -> tuple[bool, frozenset[str]]:
    """Whether the schema's dialect ignores the keywords next to a ``$ref`` (drafts 3 to 7), as its validator
    does, and the keywords among those rewritten here that it does not have (and its validator ignores)."""
    import jsonschema  # here: importing it costs every start a tenth of a second

    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    legacy = cls in (jsonschema.Draft3Validator, jsonschema.Draft4Validator, jsonschema.Draft6Validator,
                     jsonschema.Draft7Validator)
    if cls in (jsonschema.Draft3Validator, jsonschema.Draft4Validator):
        return legacy, frozenset({"if", "then", "else", "propertyNames"})
    if cls is jsonschema.Draft6Validator:
        return legacy, frozenset({"if", "then", "else"})
    return legacy, frozenset()


def _refs(value: Any) -> list[str]:
    if isinstance(value, dict):
        found = [value["$ref"]] if isinstance(value.get("$ref"), str) else []
        return found + [r for v in value.values() for r in _refs(v)]
    if isinstance(value, list):
        return [r for v in value for r in _refs(v)]
    return []


def _pointer(path: str, key: str | int) -> str:
    return f"{path}/{str(key).replace('~', '~0').replace('/', '~1')}"


def _walk(schema: Any, path: str, refs: set[str] | None, legacy: bool, context: _Context) -> None:
    if not isinstance(schema, dict):
        return
    if refs is not None and isinstance(schema.get("$ref"), str):
        _drop_ref_siblings(schema, path, refs)
    if context.conditions and "if" not in context.unknown:
        _tagged(schema)  # before its parts are rewritten one by one, which would multiply them
    for key in _ONE:
        if isinstance(schema.get(key), dict):
            _walk(schema[key], _pointer(path, key), refs, legacy, context)
    for key in _LIST:
        if isinstance(schema.get(key), list):
            for i, part in enumerate(schema[key]):
                _walk(part, _pointer(_pointer(path, key), i), refs, legacy, context)
    for key in _MAP:
        if isinstance(schema.get(key), dict):
            for name, part in schema[key].items():
                _walk(part, _pointer(_pointer(path, key), name), refs, legacy, context)
    for key in context.unknown:
        schema.pop(key, None)
    _dependencies(schema)
    _not(schema, context.conditions)
    if context.conditions:
        _conditional(schema)
        _property_names(schema, context)
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


def _not(schema: dict, conditions: bool) -> None:
    if "not" not in schema:
        return
    complement = _complement(schema["not"], conditions)
    if complement is None:
        return
    del schema["not"]
    if complement is not True:
        schema["allOf"] = [*schema.get("allOf", []), complement]


def _complement(operand: Any, conditions: bool = True) -> Any:
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
    if len(rest) > 1 and conditions:
        # The keywords below constrain independently of each other: the operand is their conjunction, and its
        # complement the disjunction of theirs.
        if not set(rest) <= _SEPARABLE:
            return None
        return _any_of([_complement({key: value}) for key, value in rest.items()])
    key, value = next(iter(rest.items())) if conditions and len(rest) == 1 else (None, None)
    if key == "type":
        return _type_complement(value)
    if key == "const":
        return _values_complement([value])
    if key == "enum":
        return _values_complement(value) if isinstance(value, list) else None
    if key == "not":
        return value if isinstance(value, (dict, bool)) else None
    if key == "properties" and isinstance(value, dict):
        # Fails only on an object that has one of the names with a value its schema refuses.
        parts = []
        for name, part in value.items():
            other = _complement(part)
            if other is None:
                return None
            if other is not False:
                parts.append({"required": [name], "properties": {name: other}})
        return {"type": "object", "anyOf": parts} if parts else False
    if key == "pattern" and isinstance(value, str):
        other = _pattern_complement(value)
        if other is None:
            return None
        return {"type": "string", "pattern": other}  # (a pattern holds of anything that is not a string)
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
            parts = [_complement(p, conditions) for p in rest[keyword]]
            if any(p is None for p in parts):
                return None
            if any(p is absorbing for p in parts):
                return absorbing
            kept = [p for p in parts if p is not (not absorbing)]
            return {dual: kept} if kept else (not absorbing)
    return None


_TYPES = ("null", "boolean", "object", "array", "number", "string")
# Keywords whose meaning does not depend on their siblings (``properties`` does not beside
# ``additionalProperties``, which is why that one is not here).
_SEPARABLE = frozenset({"type", "required", "properties", "const", "enum", "pattern", "not"})


def _any_of(parts: list[Any]) -> Any:
    """The disjunction of complements (None if one is unknown)."""
    if any(p is None for p in parts):
        return None
    if any(p is True for p in parts):
        return True
    kept = [p for p in parts if p is not False]
    if not kept:
        return False
    return kept[0] if len(kept) == 1 else {"anyOf": kept}


def _type_complement(value: Any) -> Any:
    names = {value} if isinstance(value, str) else set(value) if _is_names(value) else None
    if names is None or not names <= {*_TYPES, "integer"}:
        return None
    if "integer" in names and "number" not in names:
        return None  # the complement would hold the numbers with a fraction: no type says that
    rest = [t for t in _TYPES if t not in names]
    return {"type": rest} if rest else False


def _values_complement(values: list[Any]) -> Any:
    """Every value but those listed (scalars only; None for a list or object among them)."""
    if any(isinstance(v, (list, dict)) for v in values):
        return None
    strings = sorted({v for v in values if isinstance(v, str)})
    flags = {v for v in values if isinstance(v, bool)}
    numbers = sorted({v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)})
    present = {"string" if strings else None, "boolean" if flags else None, "number" if numbers else None,
               "null" if None in values else None}
    parts: list[Any] = [{"type": [t for t in _TYPES if t not in present]}]
    if strings:
        parts.append({"type": "string", "pattern": _other_strings(strings)})
    if len(flags) == 1:
        parts.append({"const": not next(iter(flags))})
    if numbers:  # the open intervals around and between the numbers listed
        parts.append({"type": "number", "exclusiveMaximum": numbers[0]})
        parts += [{"type": "number", "exclusiveMinimum": a, "exclusiveMaximum": b}
                  for a, b in zip(numbers, numbers[1:])]
        parts.append({"type": "number", "exclusiveMinimum": numbers[-1]})
    return {"anyOf": parts}


def _other_strings(strings: list[str]) -> str:
    """A regular expression (llguidance's dialect, anchored) matching every string but those listed: read along
    the tree of their prefixes, a string leaves it at some character, stops at a prefix that is not listed, or
    runs on past a listed string that no other extends."""
    tree: dict[str, Any] = {}
    for text in strings:
        node = tree
        for char in text:
            node = node.setdefault(char, {})
        node[""] = {}  # the end of a listed string (no character is empty)

    def other(node: dict[str, Any]) -> str:
        chars = [c for c in node if c]
        ways = [] if "" in node else [""]
        ways.append(f"[^{''.join(map(_regex_char, chars))}](?s:.)*" if chars else "(?s:.)+")
        ways += [_regex_char(c) + "(?:" + other(node[c]) + ")" for c in chars]
        return "|".join(ways)

    return "^(?:" + other(tree) + ")$"


def _regex_char(char: str) -> str:
    """One character, literally, in a regular expression of both Python's and llguidance's (Rust's) dialect."""
    return char if char.isascii() and char.isalnum() else f"\\x{{{ord(char):x}}}"


@functools.lru_cache(maxsize=64)
def _pattern_complement(pattern: str) -> str | None:
    """A pattern matching exactly the strings ``pattern`` does not (as Python's ``re.search``, jsonschema's, reads
    it), for the one form that has a simple complement: a string made of one class of characters,
    ``^C+$`` or ``^C*$``. The class is read by Python itself and written out as ranges of code points, so the two
    dialects' classes (``\\s``, ``\\w``) cannot differ. Python's ``$`` also matches before a final line break, so
    a class without the line break is left alone (None): its complement is not as simple."""
    found = re.fullmatch(r"\^(.+)([+*])\$", pattern, re.DOTALL)
    if found is None:
        return None
    item, repeat = found.groups()
    try:
        cls = re.compile(item)
        parsed = re_parser.parse(item)
    except (re.error, RecursionError):
        return None
    if len(parsed) != 1 or parsed[0][0] not in (re_constants.IN, re_constants.LITERAL, re_constants.NOT_LITERAL):
        return None
    inside = set(cls.findall(_all_chars()))
    if "\n" not in inside:
        return None
    ranges: list[list[int]] = []
    for point in range(0x110000):
        if 0xD800 <= point <= 0xDFFF or chr(point) in inside:
            continue
        if ranges and ranges[-1][1] == point - 1:
            ranges[-1][1] = point
        else:
            ranges.append([point, point])
    if not ranges:
        return None
    outside = "[" + "".join(f"\\x{{{a:x}}}" + (f"-\\x{{{b:x}}}" if b > a else "") for a, b in ranges) + "]"
    anything = "(?s:.)*"
    return f"^(?:{anything}{outside}{anything})$" if repeat == "*" else f"^(?:|{anything}{outside}{anything})$"


@functools.lru_cache(maxsize=1)
def _all_chars() -> str:
    """Every character a JSON string can carry (surrogates left out: they are not characters)."""
    return "".join(chr(p) for p in range(0x110000) if not 0xD800 <= p <= 0xDFFF)


def _conditional(schema: dict) -> None:
    """``if``/``then``/``else``: a value either passes ``if`` and ``then``, or fails ``if`` (its complement, written
    positively) and passes ``else``; kept, for the engine to refuse by name, when the complement is unknown."""
    if "if" not in schema:
        schema.pop("then", None)  # without an `if`, JSON Schema ignores them
        schema.pop("else", None)
        return
    test, then, otherwise = schema["if"], schema.get("then", True), schema.get("else", True)
    if _trivial(then) and _trivial(otherwise):
        branches: list[Any] = []
    else:
        other = _complement(test)
        if other is None:
            return
        branches = [b for b in (_all_of([test, then]), _all_of([other, otherwise])) if b is not False]
    for key in ("if", "then", "else"):
        schema.pop(key, None)
    if branches == [] and not (_trivial(then) and _trivial(otherwise)):
        schema["allOf"] = [*schema.get("allOf", []), False]
    elif branches:
        schema["allOf"] = [*schema.get("allOf", []), branches[0] if len(branches) == 1 else {"anyOf": branches}]


def _trivial(schema: Any) -> bool:
    return schema is True or (isinstance(schema, dict) and not set(schema) - _ANNOTATIONS)


def _all_of(parts: list[Any]) -> Any:
    if any(p is False for p in parts):
        return False
    kept = [p for p in parts if not _trivial(p)]
    if not kept:
        return True
    return kept[0] if len(kept) == 1 else {"allOf": kept}


def _property_names(schema: dict, context: _Context) -> None:
    """``propertyNames`` where what it allows is a list of names (``enum``, ``const``), a ``pattern`` or a range of
    lengths: the names the object may have become its ``properties`` (the rest ``false``) or a
    ``patternProperties`` holding what ``additionalProperties`` held. Anything else is left for the engine."""
    if "propertyNames" not in schema:
        return
    names = _resolved(schema["propertyNames"], context.root)
    props, patterns = schema.get("properties", {}), schema.get("patternProperties", {})
    extra = schema.get("additionalProperties", True)
    if not isinstance(props, dict) or not isinstance(patterns, dict):
        return
    if names is False:
        names = {"enum": []}
    if not isinstance(names, dict):
        if names is True:
            del schema["propertyNames"]
        return
    rest = {k: v for k, v in names.items() if k not in _ANNOTATIONS}
    kinds = rest.pop("type", "string")
    if not (kinds == "string" or (_is_names(kinds) and "string" in kinds)):
        return  # (a name is a string: a type without it allows no name; rare enough to leave to the engine)
    if not rest:
        del schema["propertyNames"]  # every name is a string
        return
    if set(rest) in ({"enum"}, {"const"}):
        allowed = rest["enum"] if "enum" in rest else [rest["const"]]
        if not isinstance(allowed, list):
            return
        names_allowed = list(dict.fromkeys(n for n in allowed if isinstance(n, str)))
        try:
            matched = {n: [part for p, part in patterns.items() if re.search(p, n)] for n in names_allowed}
        except (re.error, TypeError):
            return
        # patternProperties go (a name outside the list may match them), their schemas folded into the names'.
        kept = {n: (_all_of([props[n], *matched.get(n, [])]) if n in names_allowed else False) for n in props}
        kept.update({n: _all_of(matched[n]) if matched[n] else extra for n in names_allowed if n not in props})
        schema["properties"] = kept
        schema.pop("patternProperties", None)
        schema["additionalProperties"] = False
        del schema["propertyNames"]
        return
    if set(rest) == {"pattern"} and isinstance(rest["pattern"], str):
        regex = rest["pattern"]
        try:
            fits = [bool(re.search(regex, n)) for n in props]
        except re.error:
            return
    elif set(rest) <= {"minLength", "maxLength"} and all(isinstance(v, int) for v in rest.values()):
        least, most = rest.get("minLength", 0), rest.get("maxLength")
        regex = f"^(?s:.){{{least},{'' if most is None else most}}}$"
        fits = [least <= len(n) and (most is None or len(n) <= most) for n in props]
    else:
        return
    if patterns:
        return  # a name would have to match two patterns at once
    if extra is not False and not _trivial(extra) and any(fits):
        return  # a listed name matching the pattern would have to pass additionalProperties too
    schema["properties"] = {n: part if fit else False for (n, part), fit in zip(props.items(), fits)}
    if extra is not False:
        schema["patternProperties"] = {regex: {} if extra is True else extra}
        schema["additionalProperties"] = False
    del schema["propertyNames"]


def _resolved(schema: Any, root: dict) -> Any:
    """A schema that is only a local ``$ref`` (``#/...``), replaced by what it points to if that is not a
    reference too."""
    if not isinstance(schema, dict) or not isinstance(schema.get("$ref"), str):
        return schema
    if set(schema) - _ANNOTATIONS - {"$ref"} or not schema["$ref"].startswith("#/"):
        return schema
    found: Any = root
    for step in schema["$ref"][2:].split("/"):
        step = unquote(step).replace("~1", "/").replace("~0", "~")
        if not isinstance(found, dict) or step not in found:
            return schema
        found = found[step]
    if isinstance(found, dict) and "$ref" in json.dumps(found):
        return schema
    return found


def _tagged(schema: dict) -> None:
    """An ``allOf`` of ``{if: {properties: {P: {const: c}}}, then: T}``, one per tag value ``c`` of the same
    property ``P`` (with the same ``required: [P]`` and ``type: object`` or without): one ``anyOf`` with a branch
    per part of the values -- an object whose ``P`` is ``c`` (passes ``T`` of ``c``), one whose ``P`` is no ``c``
    (free), one without ``P`` and a non-object (where every ``if`` holds vacuously unless it requires ``P`` or an
    object: then every ``T``). Each ``if`` rewritten alone instead doubles the ways the engine expands per
    condition."""
    parts = schema.get("allOf")
    if not isinstance(parts, list):
        return
    groups: dict[tuple, list[int]] = {}
    for index, part in enumerate(parts):
        found = _tag_of(part)
        if found is not None:
            groups.setdefault(found[:3], []).append(index)
    merged: dict[int, Any] = {}
    for (name, required, typed), indexes in groups.items():
        if len(indexes) < 2:
            continue
        by_value: dict[str, list[Any]] = {}
        for i in indexes:
            value = _tag_of(parts[i])[3]  # type: ignore[index]
            by_value.setdefault(json.dumps(value), []).append(parts[i]["then"])
        values = [json.loads(v) for v in by_value]
        everything = [parts[i]["then"] for i in indexes]
        present = {"type": "object", "required": [name]}
        branches = [_all_of([{**present, "properties": {name: {"const": value}}}, *thens])
                    for value, thens in zip(values, by_value.values())]
        branches.append({**present, "properties": {name: _values_complement(values)}})
        branches.append(_all_of([{"type": "object", "properties": {name: False}}, *([] if required else everything)]))
        branches.append(_all_of([{"type": [t for t in _TYPES if t != "object"]}, *([] if typed else everything)]))
        merged[indexes[0]] = {"anyOf": [b for b in branches if b is not False]}
        merged.update({i: None for i in indexes[1:]})
    if merged:
        schema["allOf"] = [merged.get(i, part) for i, part in enumerate(parts) if merged.get(i, part) is not None]


def _tag_of(part: Any) -> tuple[str, bool, bool, Any] | None:
    """``(P, requires P, requires an object, c)`` of ``{if: {properties: {P: {const: c}}, ...}, then: ...}``."""
    if not isinstance(part, dict) or set(part) - _ANNOTATIONS != {"if", "then"} or not isinstance(part["if"], dict):
        return None
    test = {k: v for k, v in part["if"].items() if k not in _ANNOTATIONS}
    props = test.pop("properties", None)
    if not isinstance(props, dict) or len(props) != 1:
        return None
    (name, value), = props.items()
    if not isinstance(value, dict) or set(value) - _ANNOTATIONS != {"const"}:
        return None
    if isinstance(value["const"], (list, dict)):
        return None
    required = test.pop("required", None)
    typed = test.pop("type", None)
    if test or required not in (None, [name]) or typed not in (None, "object"):
        return None
    return name, required is not None, typed is not None, value["const"]
