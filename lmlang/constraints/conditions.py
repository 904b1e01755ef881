"""From ``where`` expressions to conditions on one hole's value.

Each conjunct of the ``where`` clause that concerns the hole becomes one :class:`Condition`: an exact language
(an automaton, masked while decoding and checked on the final value), a bound on characters (a counter next to
the automaton), a bound on tokens, stop phrases, or -- for what no automaton expresses -- a Python predicate
checked on the final value only. ``and``/``or``/``not`` of maskable parts stay maskable; a part that is not makes
its whole conjunct a predicate (the mask then does not restrict it, which never forbids a valid value).
"""

from __future__ import annotations

import ast as pyast
import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lmlang.constraints import meaning, structured
from lmlang.constraints.catalog import canonical
from lmlang.errors import ConstraintError, NotEnforcedError
from lmlang.interpret import namespace
from lmlang.masks import Automaton, PatternError, from_regex, intersect, literals, negate, union
from lmlang.source import Span
from lmlang.syntax.ast import Expr

# Membership in a string (`V in "abc"`) means being one of its substrings; beyond this length, a predicate.
_MAX_SUBSTRING_SOURCE = 200


@dataclass(frozen=True)
class Condition:
    """One conjunct about the hole. Exactly one of the fields after ``span`` describes it."""

    source: str
    span: Span
    node: pyast.expr
    language: Automaton | None = None
    chars: tuple[int, int | None] | None = None  # (at least, at most) characters
    tokens: tuple[int, int | None] | None = None  # (at least, at most) tokens
    stops: tuple[tuple[str, bool], ...] = ()
    predicate: bool = False  # checked by evaluating the Python expression on the final value
    structure: structured.Structure | None = None  # JSON or GRAMMAR: a grammar mask and a check of the value


class Translator:
    """Translates the conjuncts about ``var``; ``numeric`` is "int", "float" or None (the hole's value type)."""

    def __init__(self, var: str, expr: Expr, numeric: str | None, scope: Mapping[str, object]) -> None:
        self.var = var
        self.expr = expr
        self.numeric = numeric
        self.scope = scope

    def condition(self, node: pyast.expr) -> Condition:
        span = self.expr.span_of(node)
        source = span.text
        if isinstance(node, pyast.BoolOp) and isinstance(node.op, pyast.Or):
            either = self._disjunction(node, source, span)
            if either is not None:
                return either
        stops = self._stops(node)
        if stops is not None:
            return Condition(source, span, node, stops=stops)
        tokens = self._length_bound(node, "TOKENS")
        if tokens is not None:
            return Condition(source, span, node, tokens=tokens)
        chars = self._char_bound(node)
        if chars is not None:
            return Condition(source, span, node, chars=chars)
        structure = self._structure(node)
        if structure is not None:
            return Condition(source, span, node, structure=structure)
        language = self.language(node)
        if language is None:
            self._refuse_unenforceable(node)
            return Condition(source, span, node, predicate=True)
        return Condition(source, span, node, language=language)

    # -------------------------------------------------------------------------------- conjunct-only forms

    def _disjunction(self, node: pyast.BoolOp, source: str, span: Span) -> Condition | None:
        """An ``or`` of stop conditions or of token bounds, which no automaton expresses but the decoder enforces.

        A stop condition holds for every value (a value that never meets its phrase ends another way), so an
        ``or`` with one holds for every value too: what it asks of the decoder is to end the value at the first
        phrase of any of its stop conditions, as LMQL does. An ``or`` of token bounds is the union of their
        ranges, enforced as one bound when the union is a range."""
        parts = node.values
        stops = [self._stops(part) for part in parts]
        if any(found is not None for found in stops):
            return Condition(source, span, node, stops=tuple(s for found in stops if found for s in found))
        bounds = [self._length_bound(part, "TOKENS") for part in parts]
        if not all(bound is not None for bound in bounds):
            return None
        ranges = sorted(bounds, key=lambda b: b[0])  # type: ignore[arg-type, return-value]
        low, high = ranges[0]  # type: ignore[misc]
        for lo, hi in ranges[1:]:  # type: ignore[misc]
            if high is not None and lo > high + 1:
                raise NotEnforcedError(span, f"{source} allows token counts with a gap between them, which lmlang "
                                             f"cannot enforce: bound the tokens by one range")
            high = None if high is None or hi is None else max(high, hi)
        return Condition(source, span, node, tokens=(low, high))

    def _stops(self, node: pyast.expr) -> tuple[tuple[str, bool], ...] | None:
        name = self._call_on_var(node)
        if name not in ("STOPS_AT", "STOPS_BEFORE"):
            return None
        assert isinstance(node, pyast.Call)
        phrases = self._strings(node.args[1], f"{name}'s phrase")
        return tuple((p, name == "STOPS_AT") for p in phrases)

    def _char_bound(self, node: pyast.expr) -> tuple[int, int | None] | None:
        return self._length_bound(node, None)

    def _length_bound(self, node: pyast.expr, wrapper: str | None) -> tuple[int, int | None] | None:
        """(at least, at most) when ``node`` bounds ``len(V)`` / ``len(wrapper(V))`` (chains included)."""
        if not isinstance(node, pyast.Compare):
            return None
        low, high = 0, None
        for op, left, right in self._pairs(node):
            if self._is_len_of(right, wrapper) and not self._mentions_var(left):
                flipped = _FLIPPED.get(type(op))
                op, left, right = (flipped() if flipped else op), right, left
            if not (self._is_len_of(left, wrapper) and not self._mentions_var(right)):
                return None
            bound = self._number(right)
            if bound is None or not isinstance(op, (pyast.Lt, pyast.LtE, pyast.Gt, pyast.GtE, pyast.Eq)):
                return None
            lo, hi = _int_interval(op, bound)
            low = max(low, lo or 0)
            high = hi if high is None else high if hi is None else min(high, hi)
        return low, high

    # -------------------------------------------------------------------------------- languages

    def language(self, node: pyast.expr) -> Automaton | None:
        """The exact language of ``node`` as a condition on the value, or None if it has none."""
        if isinstance(node, pyast.BoolOp):
            parts = [self.language(v) for v in node.values]
            if any(p is None for p in parts):
                return None
            combine = intersect if isinstance(node.op, pyast.And) else union
            result = parts[0]
            for part in parts[1:]:
                result = combine(result, part)
            return result
        if isinstance(node, pyast.UnaryOp) and isinstance(node.op, pyast.Not):
            inner = self.language(node.operand)
            return None if inner is None else negate(inner)
        if isinstance(node, pyast.Call):
            return self._call_language(node)
        if isinstance(node, pyast.Compare):
            result = None
            for op, left, right in self._pairs(node):
                part = self._comparison(op, left, right)
                if part is None:
                    return None
                result = part if result is None else intersect(result, part)
            return result
        return None

    def _call_language(self, node: pyast.Call) -> Automaton | None:
        name = self._call_on_var(node)
        if name == "INT":
            return self.regex(meaning.INT_PATTERN)
        if name == "FLOAT":
            return self.regex(meaning.FLOAT_PATTERN)
        if name == "REGEX":
            pattern = self._value(node.args[1])
            if not isinstance(pattern, str):
                raise ConstraintError(self.expr.span_of(node.args[1]), "REGEX needs a pattern string, such as r\"[0-9]+\"")
            return self.regex(pattern, node.args[1])
        if name == "STARTS_WITH":
            prefixes = self._strings(node.args[1], "STARTS_WITH's prefix")
            return _union_all([self.regex(meaning.starts_with(p)) for p in prefixes])
        if name in ("STOPS_AT", "STOPS_BEFORE"):
            raise ConstraintError(
                self.expr.span_of(node), f"{name} must be a condition of its own in the where clause, not inside or/not"
            )
        if name in ("JSON", "GRAMMAR"):
            raise NotEnforcedError(self.expr.span_of(node), f"{name} must be a condition of its own in the where "
                                                            "clause, not inside or/not")
        return None

    def _structure(self, node: pyast.expr) -> structured.Structure | None:
        """``JSON(V[, schema][, strict=...][, whitespace=...])`` or ``GRAMMAR(V, source)`` as a conjunct of its
        own: a grammar."""
        name = self._call_on_var(node)
        if name not in ("JSON", "GRAMMAR"):
            return None
        assert isinstance(node, pyast.Call)
        span = self.expr.span_of(node)
        options: dict[str, Any] = {"strict": True, "whitespace": "flexible"}
        for keyword in node.keywords:
            value = self._value(keyword.value)
            if name != "JSON" or keyword.arg not in options or not isinstance(value, type(options[keyword.arg])):
                hint = ""
                if name == "JSON":
                    spacings = " or ".join(repr(w) for w in structured.JSON_SPACINGS)
                    hint = f" (strict=True or False; whitespace={spacings})"
                raise ConstraintError(self.expr.span_of(keyword.value),
                                      f"{name} takes no argument {keyword.arg}={value!r}{hint}")
            options[keyword.arg] = value
        argument = node.args[1] if len(node.args) > 1 else None
        where = self.expr.span_of(argument) if argument is not None else span
        if name == "GRAMMAR":
            if argument is None:
                raise ConstraintError(span, "GRAMMAR needs the grammar's text, as in GRAMMAR(V, source)")
            return structured.grammar_structure(self._value(argument), span.text, where)
        schema = self._value(argument) if argument is not None else None
        return structured.json_structure(schema, span.text, where, options["strict"], options["whitespace"])

    def _comparison(self, op: pyast.cmpop, left: pyast.expr, right: pyast.expr) -> Automaton | None:
        if self._is_var(left) and not self._mentions_var(right):
            return self._compare_value(op, self._value(right))
        if self._is_var(right) and not self._mentions_var(left):
            if isinstance(op, (pyast.In, pyast.NotIn)):
                needle = self._value(left)
                if not isinstance(needle, str):
                    return None
                found = self.regex(meaning.contains(needle))
                return found if isinstance(op, pyast.In) else negate(found)
            flipped = _FLIPPED.get(type(op))
            return None if flipped is None else self._compare_value(flipped(), self._value(left))
        for wrapper, pattern in (("WORDS", meaning.word_count), (None, meaning.char_count)):
            bound = self._length_bound(pyast.Compare(left=left, ops=[op], comparators=[right]), wrapper)
            if bound is not None:
                return self.regex(pattern(*bound))
            if isinstance(op, pyast.NotEq):
                equal = self._length_bound(pyast.Compare(left=left, ops=[pyast.Eq()], comparators=[right]), wrapper)
                if equal is not None:
                    return negate(self.regex(pattern(*equal)))
        return None

    def _compare_value(self, op: pyast.cmpop, value: object) -> Automaton | None:
        if isinstance(op, (pyast.In, pyast.NotIn)):
            members = self._members(value)
            if members is None:
                return None
            return members if isinstance(op, pyast.In) else negate(members)
        if isinstance(op, (pyast.Eq, pyast.NotEq)):
            same = self._members([value])
            if same is None:
                return None
            return same if isinstance(op, pyast.Eq) else negate(same)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            return None
        if self.numeric == "int":
            low, high = _int_interval(op, value)
            return self.regex(meaning.int_range(low, high))
        if self.numeric == "float" and type(op) in _ORDER_SYMBOLS:
            return self.regex(meaning.float_range(_ORDER_SYMBOLS[type(op)], value))
        return None

    def _members(self, container: object) -> Automaton | None:
        """The texts whose value is one of ``container``'s members."""
        if isinstance(container, str):
            if len(container) > _MAX_SUBSTRING_SOURCE or self.numeric:
                return None
            container = {container[i:j] for i in range(len(container) + 1) for j in range(i, len(container) + 1)}
        try:
            members = list(container)  # type: ignore[call-overload]
        except TypeError:
            return None
        # Strings are texts even for a numeric hole (`N in ["1", "2"]`): the text must be one of them.
        if all(isinstance(m, str) for m in members):
            texts = sorted({m.encode() for m in members})
            digest = hashlib.sha1(b"\x00".join(texts)).hexdigest()
            return literals(texts, key=f"set:{len(texts)}:{digest}")
        if self.numeric == "int" and all(isinstance(m, int) and not isinstance(m, bool) for m in members):
            return _union_all([self.regex(meaning.int_range(m, m)) for m in sorted(set(members))])
        return None

    def regex(self, pattern: str, where: pyast.expr | None = None) -> Automaton:
        try:
            return from_regex(pattern)
        except PatternError as e:
            span = self.expr.span_of(where) if where is not None else self.expr.span
            start = _literal_body_offset(span.text, pattern) if where is not None else None
            if start is not None and e.offset is not None:
                span = span.shifted(start + e.offset, 1)
            raise ConstraintError(span, f"{e.message} (in the pattern {pattern!r})") from None

    # -------------------------------------------------------------------------------- helpers

    def _pairs(self, node: pyast.Compare):
        lefts = [node.left, *node.comparators[:-1]]
        return list(zip(node.ops, lefts, node.comparators))

    def _is_var(self, node: pyast.expr) -> bool:
        return isinstance(node, pyast.Name) and node.id == self.var

    def _mentions_var(self, node: pyast.expr) -> bool:
        return any(isinstance(n, pyast.Name) and n.id == self.var for n in pyast.walk(node))

    def _call_on_var(self, node: pyast.expr) -> str | None:
        """The function name of ``F(V, ...)`` calls on the hole variable."""
        if isinstance(node, pyast.Call) and isinstance(node.func, pyast.Name) and node.args and self._is_var(node.args[0]):
            return None if node.func.id in self.scope else canonical(node.func.id)  # a query's name shadows
        return None

    def _is_len_of(self, node: pyast.expr, wrapper: str | None) -> bool:
        if not (isinstance(node, pyast.Call) and isinstance(node.func, pyast.Name) and node.func.id == "len"
                and "len" not in self.scope):
            return False
        if len(node.args) != 1:
            return False
        inner = node.args[0]
        if wrapper is None:
            return self._is_var(inner)
        return self._call_on_var(inner) == wrapper

    def _value(self, node: pyast.expr) -> object:
        """A Python value in the where clause (a list of options, a bound), evaluated now."""
        try:
            return evaluate(node, self.scope)
        except Exception as e:  # the user's expression: any exception is theirs to see
            raise ConstraintError(self.expr.span_of(node), f"cannot evaluate {pyast.unparse(node)}: {e}") from None

    def _number(self, node: pyast.expr) -> int | float | None:
        value = self._value(node)
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    def _strings(self, node: pyast.expr, what: str) -> list[str]:
        value = self._value(node)
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, (list, tuple, set, frozenset)) or not all(isinstance(v, str) and v for v in values):
            raise ConstraintError(self.expr.span_of(node), f"{what} must be a non-empty string or a list of them")
        return list(values)

    def _refuse_unenforceable(self, node: pyast.expr) -> None:
        for sub in pyast.walk(node):
            if isinstance(sub, pyast.Call) and isinstance(sub.func, pyast.Name) and sub.func.id not in self.scope \
                    and canonical(sub.func.id) in ("TOKENS", "STOPS_AT", "STOPS_BEFORE"):
                raise NotEnforcedError(
                    self.expr.span_of(sub), f"{sub.func.id} can only be used as a condition of its own in the where "
                                            f"clause, or in an or of such conditions"
                )


_FLIPPED = {
    pyast.Lt: pyast.Gt,
    pyast.Gt: pyast.Lt,
    pyast.LtE: pyast.GtE,
    pyast.GtE: pyast.LtE,
    pyast.Eq: pyast.Eq,
    pyast.NotEq: pyast.NotEq,
}


_ORDER_SYMBOLS = {pyast.Lt: "<", pyast.LtE: "<=", pyast.Gt: ">", pyast.GtE: ">="}


def _int_interval(op: pyast.cmpop, bound: float) -> tuple[int | None, int | None]:
    """The whole numbers ``x`` with ``x <op> bound``, as an interval (None: unbounded)."""
    if isinstance(op, pyast.Lt):
        return None, math.ceil(bound) - 1
    if isinstance(op, pyast.LtE):
        return None, math.floor(bound)
    if isinstance(op, pyast.Gt):
        return math.floor(bound) + 1, None
    if isinstance(op, pyast.GtE):
        return math.ceil(bound), None
    if isinstance(op, pyast.Eq):
        return (int(bound), int(bound)) if float(bound).is_integer() else (1, 0)
    raise ValueError(op)


def _union_all(parts: list[Automaton]) -> Automaton:
    result = parts[0]
    for part in parts[1:]:
        result = union(result, part)
    return result


def _literal_body_offset(text: str, pattern: str) -> int | None:
    """Where the pattern starts inside a string literal's source, if the literal spells it character by
    character (a raw string, or one without escapes); else None."""
    body = text.lstrip("rRbBuUfF")
    if len(body) >= 2 and body[0] == body[-1] and body[0] in "'\"" and body[1:-1] == pattern:
        return len(text) - len(body) + 1
    return None


def evaluate(node: pyast.expr, scope: Mapping[str, object]) -> object:
    """Evaluates a Python expression node in ``scope`` (the query's variables and bound hole values)."""
    return namespace.evaluate(node, scope, filename="<where>")



def finite(automaton: Automaton) -> bool:
    """Whether the language has finitely many values (its minimal DFA has no cycle outside the dead state)."""
    live = [sorted({t for t in row if t != 0}) for row in automaton.rows]  # state 0 is the dead state
    live[0] = []
    indegree = [0] * len(live)
    for targets in live:
        for t in targets:
            indegree[t] += 1
    ready = [s for s in range(len(live)) if indegree[s] == 0]
    seen = 0
    while ready:
        state = ready.pop()
        seen += 1
        for t in live[state]:
            indegree[t] -= 1
            if indegree[t] == 0:
                ready.append(t)
    return seen == len(live)
