"""Structured values: ``JSON(V[, schema])``, ``GRAMMAR(V, source)`` and holes typed by Python types.

Each becomes a :class:`Structure`: a context-free grammar for the mask (:mod:`lmlang.masks.grammar`) and a check
of the finished value that does not trust the mask. A JSON value is parsed and validated by ``jsonschema``, an
independent validator, so a schema keyword the mask follows loosely (or, with ``strict=False``, ignores) can never
let an invalid value through; a grammar's value is parsed again from its text.

Decisions (documented in the README):

* One white-space character may lead a JSON value (models write ``" {"`` after a colon); inside it, tokens are
  spaced as ``json.dumps`` spaces them (``{"a": 1, "b": [1, 2]}``) unless the query asks for no spaces or for
  flexible white space (:data:`JSON_SPACINGS`), which is bounded so that a model cannot pad it without end.
* Keywords that validate nothing (``title``, ``description``, ``$comment``, ``id``, ``x-...``, ``readonly``,
  ``examples``, ``default``...) are ignored, as JSON Schema says. A keyword the mask cannot enforce
  (``uniqueItems``, an unknown ``format``) is an error naming it; ``strict=False`` masks without it, checks the
  value with it, and warns.
* Keywords the engine lacks but that say the same as ones it has (``dependencies``, ``not`` of ``required``, a
  type or values, ``if``/``then``/``else`` on such conditions, ``propertyNames`` listing names or a pattern,
  ``uniqueItems`` over a few strings) are rewritten into those first (:mod:`lmlang.constraints.schemas`).
* Stop phrases on a structured hole: the mask lets a ``STOPS_BEFORE`` phrase follow a complete value; a
  ``STOPS_AT`` phrase, kept in the value, is checked on the finished value only.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import re
import types
import typing
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lmlang.constraints.schemas import rewrite
from lmlang.errors import ConstraintError, LmlangWarning, NotEnforcedError
from lmlang.masks import grammar as engine
from lmlang.source import Span

# JSON(V, whitespace="flexible"), between two tokens of JSON: up to two spaces or tabs, or a line break and an indent
# of up to 40 (pretty-printed JSON nested a few levels deep). Never more: a model that wants more has to go on with
# the value.
JSON_WHITESPACE = r"[ \t]{0,2}|\r?\n[ \t]{0,40}"
# How JSON(V, whitespace=...) spaces a value's tokens (llguidance's JsonCompileOptions). The default is flexible, as
# llguidance's: a small model held to one line loops inside what a schema leaves open far more often than one let
# to pretty-print as it learned to (benchmarks/README.md, JSON Schema). "compact" is guidance's default and
# Python's json.dumps: one line, a space after each comma and colon -- {"a": 1, "b": [1, 2]}.
JSON_SPACINGS: dict[str, dict[str, Any]] = {
    "compact": {"item_separator": ", ", "key_separator": ": ", "whitespace_flexible": False},
    "none": {"item_separator": ",", "key_separator": ":", "whitespace_flexible": False},
    "flexible": {"item_separator": ",", "key_separator": ":", "whitespace_flexible": True,
                 "whitespace_pattern": f"(?:{JSON_WHITESPACE})"},
}
# oneOf is masked as anyOf (llguidance's approximation); the check of the finished value holds it exactly.
_JSON_OPTIONS = {"coerce_one_of": True}
_LEAD = r"/[ \t\n\r]/"


@dataclass(frozen=True)
class Structure:
    """A JSON value (with its schema, or any) or a grammar's sentence; ``python_type`` when a typed hole's."""

    kind: str  # "json" | "grammar"
    source: str  # how the query wrote it, for messages
    grammar: engine.Grammar = field(repr=False)  # the value's language, for the mask
    schema: Any = None  # JSON: what jsonschema checks the parsed value against (None: any JSON)
    python_type: Any = None
    namespace: Mapping[str, Any] | None = field(default=None, repr=False)  # resolves the type's annotations

    @property
    def key(self) -> str:
        return self.grammar.key

    def problem(self, text: str) -> str | None:
        """Why the finished ``text`` is not a valid value (None if it is)."""
        if self.kind == "grammar":
            data = text.encode("utf-8", "surrogatepass")
            return None if self.grammar.accepts(data) else "is not a sentence of the grammar"
        try:
            value = parse_json(text)
        except ValueError as err:
            return f"is not JSON ({err})"
        if self.schema is None:
            return None
        return validation_problem(self.schema, value)

    def value(self, text: str) -> Any:
        """The value of a valid text: the parsed JSON, an instance of the Python type, or the text itself."""
        if self.kind == "grammar":
            return text
        data = parse_json(text)
        return data if self.python_type is None else construct(self.python_type, data, self.namespace)


def parse_json(text: str) -> Any:
    """The JSON value of ``text``; NaN and Infinity, which JSON does not have, are refused."""

    def refuse(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


def validation_problem(schema: Any, value: Any) -> str | None:
    """Why ``value`` is invalid under ``schema`` according to jsonschema (None: valid). References are resolved
    inside the schema only: nothing is fetched."""
    import jsonschema  # here, as in json_structure: only schemas need it, and it costs every start 0.1 s
    import referencing

    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    validator = cls(schema, registry=referencing.Registry(), format_checker=cls.FORMAT_CHECKER)
    try:
        error = jsonschema.exceptions.best_match(validator.iter_errors(value))
    except referencing.exceptions.Unresolvable as err:
        return f"cannot be checked: the schema refers to {err.ref!r}, which is not inside it"
    if error is None:
        return None
    where = "".join(f"[{p!r}]" for p in error.absolute_path)
    return f"is invalid under the schema{' at ' + where if where else ''}: {error.message}"


# ------------------------------------------------------------------------------------------ building


def json_structure(schema: Any, source: str, span: Span | None, strict: bool = True,
                   whitespace: str = "flexible") -> Structure:
    """``JSON(V)`` (``schema`` None) or ``JSON(V, schema)``: the schema a dict, a bool, or its JSON text;
    ``whitespace`` one of :data:`JSON_SPACINGS`."""
    if whitespace not in JSON_SPACINGS:
        raise ConstraintError(span, f"JSON's whitespace must be one of {', '.join(map(repr, JSON_SPACINGS))}, "
                                    f"not {whitespace!r}")
    if isinstance(schema, str):
        try:
            schema = json.loads(schema)
        except ValueError as err:
            raise ConstraintError(span, f"JSON's schema is not valid JSON: {err}") from None
    if schema is not None and not isinstance(schema, (dict, bool)):
        raise ConstraintError(span, f"JSON's schema must be a JSON schema (a dict or its JSON text), not {schema!r}")
    if schema is not None and not isinstance(schema, bool):
        import jsonschema  # here: importing it costs every start (the CLI's too) a tenth of a second

        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        try:
            cls.check_schema(schema)
        except jsonschema.exceptions.SchemaError as err:
            raise ConstraintError(span, f"JSON's schema is not a valid JSON schema: {err.message}") from None
    grammar = _json_grammar({} if schema is None else schema, source, span, strict, whitespace)
    return Structure("json", source, grammar, schema)


def _json_grammar(schema: Any, source: str, span: Span | None, strict: bool,
                  whitespace: str = "flexible") -> engine.Grammar:
    options = {**_JSON_OPTIONS, **JSON_SPACINGS[whitespace]}
    # The same meaning in keywords the engine implements. Rewritten conditions put into the mask schemas the
    # engine would not otherwise compile (a `then`, a complement), where it may meet a limit of its own (a schema
    # too large, overlapping patterns): then they stay as written, for the engine to refuse by name.
    candidates = [rewrite(schema)]
    index = 0
    while True:
        grammar, compiled, message = _compiled(candidates[index], options, source)
        if grammar is not None:
            return grammar
        unenforced = _unenforced(message)
        if unenforced:
            break
        if index == 0:  # (only now: rewriting a large schema costs time)
            candidates.append(rewrite(schema, conditions=False))
        if index == 1 or candidates[1] == candidates[0]:
            raise ConstraintError(span, f"the schema cannot be compiled: {message}")
        index += 1
    if strict:
        raise NotEnforcedError(span, f"the schema uses {unenforced}, which lmlang's JSON mask cannot enforce; "
                                     "pass strict=False to mask without it and check the finished value "
                                     "against the whole schema")
    for attempt in range(index, 2):
        lenient = compiled if attempt == index else rewrite(schema, conditions=False)
        try:
            grammar = engine.json_schema(lenient, {**options, "lenient": True}, source)
            break
        except engine.GrammarError as err:
            message = str(err)
    else:
        raise ConstraintError(span, f"the schema cannot be compiled: {message}")
    warnings.warn(f"{source}: the mask ignores {unenforced}; the finished value is checked against it",
                  LmlangWarning, stacklevel=2)
    return grammar


def _compiled(schema: Any, options: dict[str, Any], source: str) -> tuple[engine.Grammar | None, Any, str]:
    """The grammar of ``schema`` (formats no draft defines left out), or None, the schema last tried and why."""
    dropped: set[str] = set()
    while True:
        try:
            return engine.json_schema(schema, options, source), schema, ""
        except engine.GrammarError as err:
            message = str(err)
        annotation = _annotation_format(message, schema)
        if annotation is None or annotation in dropped:
            return None, schema, message
        dropped.add(annotation)
        schema = _without_format(schema, annotation)


# The formats some draft of JSON Schema defines (draft 3's included): a schema naming one means it, so a mask that
# cannot enforce it says so. Any other format is no standard's: validators ignore it, and so may the mask.
_STANDARD_FORMATS = frozenset({
    "date-time", "date", "time", "duration", "email", "idn-email", "hostname", "idn-hostname", "ipv4", "ipv6",
    "uri", "uri-reference", "iri", "iri-reference", "uuid", "uri-template", "json-pointer",
    "relative-json-pointer", "regex", "color", "host-name", "ip-address", "utc-millisec", "style", "phone"})


def _annotation_format(message: str, schema: Any) -> str | None:
    """The format an llguidance error says it does not know, when no JSON Schema draft defines it (``topic``,
    ``path``): such a format is an annotation, checked by no validator, which the mask may leave out without
    letting anything invalid through. None for any other error."""
    found = re.search(r"Unknown format: (\S+)", message)
    if found is None:
        return None
    name = found.group(1).strip("\"'")
    return None if name in _STANDARD_FORMATS else name


def _without_format(schema: Any, name: str) -> Any:
    """``schema`` with every ``"format": name`` left out (a copy)."""
    if isinstance(schema, dict):
        return {key: _without_format(value, name) for key, value in schema.items()
                if not (key == "format" and value == name)}
    if isinstance(schema, list):
        return [_without_format(item, name) for item in schema]
    return schema


def _unenforced(message: str) -> str | None:
    """The keyword (or format) an llguidance error says it does not implement, spelled for a user."""
    found = re.search(r"Unimplemented keys: \[(.*?)\]", message)
    if found:
        return " and ".join(f"'{k.strip().strip(chr(34))}'" for k in found.group(1).split(","))
    found = re.search(r"Unknown format: (\S+)", message)
    if found:
        return f"the format '{found.group(1)}'"
    return None


def grammar_structure(text: str, source: str, span: Span | None) -> Structure:
    """``GRAMMAR(V, source)``: Lark EBNF (a ``start`` rule) or GBNF (a ``root ::=`` rule)."""
    if not isinstance(text, str) or not text.strip():
        raise ConstraintError(span, "GRAMMAR needs the grammar's text: Lark EBNF with a start rule, or GBNF")
    gbnf = re.search(r"^\s*root\s*::=", text, re.MULTILINE) is not None
    try:
        grammar = engine.gbnf(text, source) if gbnf else engine.lark(text, source)
    except engine.GrammarError as err:
        raise ConstraintError(span, f"the grammar cannot be compiled: {err}") from None
    return Structure("grammar", source, grammar)


def mask_grammar(structure: Structure, stops: Sequence[tuple[str, bool]], heal: bytes = b"") -> engine.Grammar:
    """What the model may write for ``structure`` on a hole with ``stops``: a JSON value may have one leading
    white-space character, and a value may be followed by a ``STOPS_BEFORE`` phrase and anything after it (the
    decoder cuts the value there); a ``STOPS_AT`` phrase belongs to the value, whose text the finish check reads.
    ``heal``: the bytes taken back from the prompt, written first (see :mod:`lmlang.masks.healing`)."""
    before = [p for p, keep in stops if not keep]
    keeps = any(keep for _, keep in stops)
    key = (structure.key, tuple(sorted(before)), keeps, heal)
    found = _WRAPPED.get(key)
    if found is not None:
        return found
    rule = "start: " + ("HEAL " if heal else "") + ("LEAD? " if structure.kind == "json" else "") + "@value"
    terminals = [f"LEAD: {_LEAD}"] if structure.kind == "json" else []
    if heal:
        terminals.append(f"HEAL: /{_regex_literal(heal.decode('utf-8'))}/")
    if keeps:
        rule += " TAIL?"
        terminals.append(r"TAIL: /(?s:.+)/")
    elif before:
        rule += " TAIL?"
        phrases = "|".join(_regex_literal(p) for p in before)
        terminals.append(f"TAIL: /(?:{phrases})(?s:.*)/")
    inner = json.loads(structure.grammar.text)["grammars"] if structure.grammar.text.lstrip().startswith("{") else [
        {"lark_grammar": structure.grammar.text}]
    value = {**inner[0], "name": "value"}
    found = engine.lark_grammar([{"name": "top", "lark_grammar": "\n".join([rule, *terminals])}, value, *inner[1:]],
                                structure.source)
    _WRAPPED[key] = found
    if len(_WRAPPED) > 256:
        _WRAPPED.pop(next(iter(_WRAPPED)))
    return found


_WRAPPED: dict[tuple, engine.Grammar] = {}


def _regex_literal(text: str) -> str:
    """``text`` as a regular expression inside a Lark ``/.../`` terminal: every character but letters and digits
    written as its code point, so no newline, slash or backslash can end or bend it."""
    return "".join(c if c.isascii() and c.isalnum() else f"\\x{{{ord(c):x}}}" for c in text)


# ------------------------------------------------------------------------------------------ Python types


def is_python_type(target: Any) -> bool:
    """Whether a hole's type names a Python type lmlang can generate (not a nested query)."""
    if isinstance(target, type):
        return True
    return typing.get_origin(target) is not None or target is typing.Any


def type_structure(target: Any, source: str, span: Span | None,
                   namespace: Mapping[str, Any] | None = None) -> Structure:
    """``[P: T]``: a JSON value of the schema of ``T``, constructed into an instance of ``T``."""
    try:
        schema = schema_of(target, namespace)
    except TypeError as err:
        raise NotEnforcedError(span, f"the hole's type {source} cannot be generated: {err}") from None
    grammar = _json_grammar(schema, source, span, strict=True)
    return Structure("json", source, grammar, schema, python_type=target, namespace=namespace)


def schema_of(target: Any, namespace: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The JSON schema of a Python type (definitions of classes under ``$defs``, so recursive types work);
    ``namespace`` resolves annotations written as strings (classes defined inside a query)."""
    defs: dict[str, Any] = {}
    root = _schema(target, defs, namespace)
    return {**root, "$defs": defs} if defs else root


_SCALARS = {str: {"type": "string"}, int: {"type": "integer"}, float: {"type": "number"},
            bool: {"type": "boolean"}, type(None): {"type": "null"}}


def _schema(tp: Any, defs: dict[str, Any], namespace: Mapping[str, Any] | None) -> dict[str, Any]:
    if tp in _SCALARS:
        return dict(_SCALARS[tp])
    if tp is typing.Any or tp is object:
        return {}
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Annotated:
        return _schema(args[0], defs, namespace)
    if origin is typing.Literal:
        return {"enum": [a.value if isinstance(a, enum.Enum) else a for a in args]}
    if origin is typing.Union or (hasattr(types, "UnionType") and origin is types.UnionType):
        return {"anyOf": [_schema(a, defs, namespace) for a in args]}
    if origin in (list, Sequence, typing.List, set, frozenset) or tp in (list, set, frozenset):  # noqa: UP006
        # A set's duplicates collapse when it is built, so its schema does not ask for unique items.
        return {"type": "array", "items": _schema(args[0], defs, namespace) if args else {}}
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return {"type": "array", "items": _schema(args[0], defs, namespace)}
        return {"type": "array", "prefixItems": [_schema(a, defs, namespace) for a in args], "items": False,
                "minItems": len(args)}
    if origin is dict or tp is dict:
        if args and args[0] is not str:
            raise TypeError(f"a dict's keys must be str to be JSON, not {args[0]!r}")
        return {"type": "object", "additionalProperties": _schema(args[1], defs, namespace) if args else {}}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return {"enum": [m.value for m in tp]}
    if isinstance(tp, type) and hasattr(tp, "model_json_schema"):  # a pydantic model
        schema = tp.model_json_schema(ref_template="#/$defs/{model}")
        found = schema.pop("$defs", {})
        for part in [schema, *found.values()]:
            _closed(part)
        defs.update(found)
        return schema
    if isinstance(tp, type) and (dataclasses.is_dataclass(tp) or _is_typed_dict(tp)):
        name = _def_name(tp)
        if name not in defs:
            defs[name] = {}  # a recursive reference finds it while its fields are read
            defs[name] = _class_schema(tp, defs, namespace)
        return {"$ref": f"#/$defs/{name}"}
    raise TypeError(f"{getattr(tp, '__name__', tp)!r} is not a type lmlang can write as JSON (a dataclass, "
                    "pydantic model, TypedDict, Enum, Literal, list, dict, Optional, str, int, float or bool)")


def _closed(schema: Any) -> None:
    """Objects with listed properties take no others, unless the schema says otherwise: the model then writes
    the class's fields, not ones the class would drop."""
    if isinstance(schema, dict):
        if "properties" in schema and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
        for value in schema.values():
            _closed(value)
    elif isinstance(schema, list):
        for value in schema:
            _closed(value)


def _is_typed_dict(tp: type) -> bool:
    return issubclass(tp, dict) and hasattr(tp, "__required_keys__")


def _def_name(tp: type) -> str:
    return f"{tp.__module__}.{tp.__qualname__}".replace("<", "").replace(">", "")


def _hints(tp: type, namespace: Mapping[str, Any] | None) -> dict[str, Any]:
    return typing.get_type_hints(tp, localns=dict(namespace or {}))


def _class_schema(tp: type, defs: dict[str, Any], namespace: Mapping[str, Any] | None) -> dict[str, Any]:
    hints = _hints(tp, namespace)
    if dataclasses.is_dataclass(tp):
        names = [f.name for f in dataclasses.fields(tp) if f.init]
        required = [f.name for f in dataclasses.fields(tp) if f.init and f.default is dataclasses.MISSING
                    and f.default_factory is dataclasses.MISSING]  # type: ignore[misc]
    else:
        names = list(hints)
        required = [n for n in names if n in tp.__required_keys__]  # type: ignore[attr-defined]
    properties = {n: _schema(hints[n], defs, namespace) for n in names}
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


def construct(tp: Any, data: Any, namespace: Mapping[str, Any] | None = None) -> Any:
    """An instance of ``tp`` from valid JSON ``data`` (nested classes built from their parts)."""
    if tp is typing.Any or tp is object or tp in (str, bool, type(None)):
        return data
    if tp is int:
        return int(data)
    if tp is float:
        return float(data)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Annotated:
        return construct(args[0], data, namespace)
    if origin is typing.Literal:
        for a in args:
            if (a.value if isinstance(a, enum.Enum) else a) == data:
                return a
        return data
    if origin is typing.Union or (hasattr(types, "UnionType") and origin is types.UnionType):
        for a in args:
            if validation_problem(schema_of(a, namespace), data) is None:
                return construct(a, data, namespace)
        return data
    if origin in (list, Sequence, typing.List) or tp is list:  # noqa: UP006
        return [construct(args[0], d, namespace) for d in data] if args else list(data)
    if origin in (set, frozenset) or tp in (set, frozenset):
        return (origin or tp)(construct(args[0], d, namespace) for d in data) if args else (origin or tp)(data)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(construct(args[0], d, namespace) for d in data)
        return tuple(construct(a, d, namespace) for a, d in zip(args, data))
    if origin is dict or tp is dict:
        return {k: construct(args[1], v, namespace) for k, v in data.items()} if args else dict(data)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return tp(data)
    if isinstance(tp, type) and hasattr(tp, "model_validate"):
        return tp.model_validate(data)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        hints = _hints(tp, namespace)
        return tp(**{k: construct(hints[k], v, namespace) for k, v in data.items()})
    if isinstance(tp, type) and _is_typed_dict(tp):
        hints = _hints(tp, namespace)
        return {k: construct(hints[k], v, namespace) for k, v in data.items()}
    return data
