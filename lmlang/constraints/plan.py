"""A hole's plan: what the decoder needs to generate one hole under its constraints, and the final check."""

from __future__ import annotations

import ast as pyast
import builtins
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from lmlang.constraints import meaning, structured
from lmlang.constraints.catalog import CONSTRAINT_FUNCTIONS
from lmlang.constraints.conditions import Condition, Translator, evaluate, finite
from lmlang.errors import ConstraintError, InputError
from lmlang.masks import (Automaton, TokenMatcher, Vocabulary, any_text, firing_phrases, from_regex, intersect,
                          preceded, until_stop)
from lmlang.masks.automaton import enumerate_values
from lmlang.masks.grammar import GrammarMatcher
from lmlang.source import Span
from lmlang.syntax.ast import Expr, HoleType


@dataclass(frozen=True)
class HolePlan:
    """How to generate the hole ``var``: stop phrases, a token budget, a mask, and the check of the result."""

    var: str
    stops: tuple[tuple[str, bool], ...]  # (phrase, keep): STOPS_AT keeps the phrase, STOPS_BEFORE drops it
    max_tokens: int | None
    min_tokens: int  # the value may not end (end of text, a stop phrase) before this many tokens
    value_type: str  # "int", "float" or "str": what finish() returns
    conditions: tuple[Condition, ...] = field(repr=False)
    automaton: Automaton | None = field(repr=False)
    max_chars: int | None = None
    scope: Mapping[str, object] = field(default_factory=dict, repr=False)
    structures: tuple[structured.Structure, ...] = field(default=(), repr=False)  # grammars the value follows

    @property
    def free_text(self) -> bool:
        """Whether the regular part allows any text (the grammars, if any, say what is allowed)."""
        return self.automaton is not None and self.automaton.key == any_text().key and self.max_chars is None

    def values(self, limit: int) -> list[bytes] | None:
        """Every value the mask allows, when they are at most ``limit`` and the mask alone decides them (no grammar,
        no stop phrase); else None."""
        if self.automaton is None or self.structures:
            return None
        found = enumerate_values(self.automaton, limit)
        if found is None:
            return None
        try:
            texts = [v.decode("utf-8") for v in found]
        except UnicodeDecodeError:  # a pattern over raw bytes: the byte automaton masks it
            return None
        if self.max_chars is not None:
            found = [v for v, text in zip(found, texts) if len(text) <= self.max_chars]
        return found

    def matcher(self, vocab: Vocabulary, heal: bytes = b"") -> TokenMatcher | None:
        """The token matcher for this plan on ``vocab`` (None when nothing needs masking), for a value written
        after the ``heal`` bytes taken back from the prompt (see :mod:`lmlang.masks.healing`). Not kept here: the
        decoder of ``vocab``'s model keeps its matchers, under :meth:`matcher_key`."""
        if self.automaton is None:
            return None
        if not heal:
            return TokenMatcher(self.automaton, vocab, self.max_chars)
        bound = None if self.max_chars is None else self.max_chars + len(heal.decode("utf-8"))
        return TokenMatcher(preceded(heal, self.automaton), vocab, bound)

    def matcher_key(self, vocab: Vocabulary, heal: bytes = b"") -> tuple[str | None, int | None, str, int, bytes]:
        """What the matcher of this plan on ``vocab`` depends on: plans with equal keys have equal matchers."""
        return (self.automaton.key if self.automaton is not None else None, self.max_chars, vocab.key, vocab.size,
                heal)

    def generation_matcher(self, regular: TokenMatcher | None, vocab: Vocabulary,
                           heal: bytes = b"") -> TokenMatcher | GrammarMatcher | None:
        """The matcher of one generation over ``regular`` (this plan's cached regular matcher, after ``heal``):
        itself, or where the value follows grammars, a new matcher holding the parsers of this one generation."""
        if regular is None or not self.structures:
            return regular
        grammars = [structured.mask_grammar(s, self.stops, heal) for s in self.structures]
        return GrammarMatcher(grammars, vocab, regular)

    def finish(self, text: str) -> object:
        """The value of the complete text (int, float or str), after checking every condition on it."""
        data = text.encode("utf-8", errors="surrogatepass")
        for cond in self.conditions:
            if cond.language is not None and not cond.language.matches(data):
                raise self._violation(text, cond)
            if cond.chars is not None:
                low, high = cond.chars
                if len(text) < low or (high is not None and len(text) > high):
                    raise self._violation(text, cond)
        for cond in self.conditions:
            problem = cond.structure.problem(text) if cond.structure is not None else None
            if problem is not None:
                raise ConstraintError(cond.span, f"the value of {self.var}, {text!r}, {problem}")
        structures = [c.structure for c in self.conditions if c.structure is not None]
        typed = [s for s in structures if s.python_type is not None]
        value = typed[0].value(text) if typed else _convert(text, self.value_type)
        for cond in self.conditions:
            if cond.predicate and not self._holds(cond, value):
                raise self._violation(text, cond)
        return value

    def _holds(self, cond: Condition, value: object) -> bool:
        scope = {**PREDICATE_FUNCTIONS, **self.scope, self.var: value}
        try:
            return bool(evaluate(cond.node, scope))
        except Exception as e:  # the user's expression: any exception is theirs to see
            raise ConstraintError(cond.span, f"checking {cond.source} on {self.var} = {value!r} failed: {e}") from None

    def _violation(self, text: str, cond: Condition) -> ConstraintError:
        return ConstraintError(cond.span, f"the value of {self.var}, {text!r}, does not satisfy {cond.source}")


def plan_hole(
    var: str,
    where: Sequence[Expr],
    hole_type: HoleType | None,
    env: Mapping[str, object],
    values: Mapping[str, object],
    holes: Collection[str] = (),
) -> HolePlan:
    """The plan for the hole ``var`` under every ``where`` expression that applies to it.

    ``env`` holds the Python variables visible at the hole, ``values`` the holes bound so far, ``holes`` every
    hole of the query. Conjuncts about other holes are left out, except those whose other holes are all bound
    already (checked by ``finish``); a conjunct about ``var`` naming anything else unknown is an error.
    """
    scope = {**env, **values}
    conjuncts = [(expr, node) for expr in where for node in _conjuncts(expr.python().body)]
    mine = [(expr, node) for expr, node in conjuncts if _concerns(expr, node, var, scope, holes)]
    value_type = _value_type(var, hole_type, [node for _, node in mine], scope)
    numeric = value_type if value_type != "str" else None
    conditions = []
    type_condition = _type_condition(var, hole_type, scope)
    if type_condition is not None:
        conditions.append(type_condition)
    for expr, node in mine:
        conditions.append(Translator(var, expr, numeric, scope).condition(node))
    automaton, max_chars = _mask_language(var, conditions)
    structures = tuple(c.structure for c in conditions if c.structure is not None)
    return HolePlan(
        var=var,
        stops=tuple(s for c in conditions for s in c.stops),
        max_tokens=min((c.tokens[1] for c in conditions if c.tokens and c.tokens[1] is not None), default=None),
        min_tokens=max((c.tokens[0] for c in conditions if c.tokens), default=0),
        value_type=value_type,
        conditions=tuple(conditions),
        automaton=automaton,
        max_chars=max_chars,
        scope=scope,
        structures=structures,
    )


def _conjuncts(node: pyast.expr) -> list[pyast.expr]:
    if isinstance(node, pyast.BoolOp) and isinstance(node.op, pyast.And):
        return [c for v in node.values for c in _conjuncts(v)]
    return [node]


_KNOWN_FUNCTIONS = set(CONSTRAINT_FUNCTIONS) | set(dir(builtins))


def _concerns(expr: Expr, node: pyast.expr, var: str, scope: Mapping[str, object], holes: Collection[str]) -> bool:
    """Whether the conjunct is about ``var`` and everything else it names is known once ``var`` is bound."""
    names = _free_names(node)
    if var not in names:
        return False
    unknown = names - {var} - set(scope) - _KNOWN_FUNCTIONS
    stray = sorted(unknown - set(holes))
    if stray:
        raise InputError(expr.span_of(node), f"the constraint on {var} uses '{stray[0]}', which is neither a "
                                             f"variable defined before the hole nor a hole of the query")
    return not unknown


def _free_names(node: pyast.expr) -> set[str]:
    """The names an expression reads from outside: not the functions it calls by name, nor the variables its
    comprehensions and lambdas bind."""
    called = {id(n.func) for n in pyast.walk(node) if isinstance(n, pyast.Call)}
    bound = set()
    for n in pyast.walk(node):
        if isinstance(n, pyast.comprehension):
            bound |= {t.id for t in pyast.walk(n.target) if isinstance(t, pyast.Name)}
        elif isinstance(n, pyast.Lambda):
            bound |= {a.arg for a in pyast.walk(n.args) if isinstance(a, pyast.arg)}
    return {n.id for n in pyast.walk(node) if isinstance(n, pyast.Name) and id(n) not in called} - bound


def _value_type(var: str, hole_type: HoleType | None, nodes: list[pyast.expr], scope: Mapping[str, object]) -> str:
    if hole_type is not None and hole_type.kind in ("int", "float"):
        return hole_type.kind
    called = {
        n.func.id
        for n in nodes
        if isinstance(n, pyast.Call) and isinstance(n.func, pyast.Name) and n.args
        and isinstance(n.args[0], pyast.Name) and n.args[0].id == var and n.func.id not in scope  # shadowed: theirs
    }
    return "int" if "INT" in called else "float" if "FLOAT" in called else "json" if "JSON" in called else "str"


def _type_condition(var: str, hole_type: HoleType | None, scope: Mapping[str, object]) -> Condition | None:
    if hole_type is not None and hole_type.kind == "query" and hole_type.call is not None:
        return _python_type_condition(var, hole_type, scope)
    if hole_type is None or hole_type.kind not in ("int", "float", "regex"):
        return None
    if hole_type.kind == "regex":
        pattern = hole_type.pattern or ""
        translator = Translator(var, Expr(hole_type.span, hole_type.span.text), None, {})
        language = translator.regex(pattern)
        source = f"[{var}: r{pattern!r}]"
    else:
        language = from_regex(meaning.INT_PATTERN if hole_type.kind == "int" else meaning.FLOAT_PATTERN)
        source = f"[{var}: {hole_type.kind}]"
    return Condition(source, hole_type.span, pyast.Constant(True), language=language)


def _python_type_condition(var: str, hole_type: HoleType, scope: Mapping[str, object]) -> Condition | None:
    """``[P: Person]`` for a Python type (a nested query's call is not one: the interpreter runs it instead)."""
    call = hole_type.call
    assert call is not None
    node = call.python().body
    if isinstance(node, pyast.Call):
        return None
    try:
        target = evaluate(node, scope)
    except Exception:  # not resolvable here: the interpreter reports what the hole's type names
        return None
    if not structured.is_python_type(target):
        return None
    structure = structured.type_structure(target, call.source, call.span, scope)
    return Condition(f"[{var}: {call.source}]", hole_type.span, pyast.Constant(True), structure=structure)


def _mask_language(var: str, conditions: list[Condition]) -> tuple[Automaton | None, int | None]:
    """The automaton to mask with (None: nothing to mask) and the bound on characters kept as a counter.

    With stop phrases, the automaton reads the text the model writes, of which the value is the part up to the
    first phrase (:func:`~lmlang.masks.until_stop`): a phrase is allowed only where the value, cut there, is
    complete. The counter bounds the written text, so near the bound a ``STOPS_BEFORE`` phrase may not fit.
    """
    languages = [c for c in conditions if c.language is not None]
    bounded = [c for c in conditions if c.chars is not None]
    stopping = [c for c in conditions if c.stops]
    low = max((c.chars[0] for c in bounded), default=0)  # type: ignore[index]
    high = min((c.chars[1] for c in bounded if c.chars[1] is not None), default=None)  # type: ignore[index]
    if not languages and not bounded and not any(c.structure is not None for c in conditions):
        return None, None
    automaton = any_text()
    for cond in languages:
        automaton = intersect(automaton, cond.language)  # type: ignore[arg-type]
    if low > 0:
        automaton = intersect(automaton, from_regex(meaning.char_count(low, None)))
    involved = languages + bounded
    # Finitely many values (`P in [...]`) end by themselves, so a stop phrase none of them contains is moot, as
    # in LMQL; with endless values, a stop that can never happen is surely a mistake.
    moot_stops = finite(automaton)
    if not automaton.empty and stopping:
        automaton = until_stop(automaton, tuple(s for c in stopping for s in c.stops))
        involved += stopping
    if automaton.empty or (high is not None and int(automaton.min_chars[automaton.start]) > high):
        sources = " and ".join(c.source for c in involved)
        raise ConstraintError(_covering(involved), f"the constraints on {var} cannot all hold: {sources}")
    if stopping and not moot_stops:
        _check_stops_can_end(var, stopping, languages + bounded, firing_phrases(automaton))
    return automaton, high


def _check_stops_can_end(var: str, stopping: list[Condition], others: list[Condition], firing: frozenset[str]) -> None:
    """A ``STOPS_AT`` keeps its phrase in the value: if no value the other conditions allow can end with it, the
    stop could never happen, which is surely not what the query means."""
    for cond in stopping:
        if any(phrase in firing for phrase, _ in cond.stops) or not all(keep for _, keep in cond.stops):
            continue
        phrases = " or ".join(repr(p) for p, _ in cond.stops)
        sources = " and ".join(c.source for c in others)
        raise ConstraintError(
            cond.span,
            f"{cond.source} can never end {var}: STOPS_AT keeps the phrase in the value, and no value ending with "
            f"{phrases} satisfies {sources}; use STOPS_BEFORE to end the value just before the phrase",
        )


def _covering(conditions: list[Condition]) -> Span:
    first = conditions[0].span
    same = [c.span for c in conditions if c.span.source is first.source]
    return Span(first.source, min(s.start for s in same), max(s.end for s in same))


def _convert(text: str, value_type: str) -> object:
    if value_type == "int":
        return int(text)
    if value_type == "float":
        return float(text)
    if value_type == "json":
        return json.loads(text)
    return text


def _matches(pattern: str, value: object) -> bool:
    return isinstance(value, str) and from_regex(pattern).matches(value.encode("utf-8", errors="surrogatepass"))


def _starts_with(value: object, prefix: object) -> bool:
    return str(value).startswith(tuple(prefix) if isinstance(prefix, (list, tuple, set)) else str(prefix))


# The constraint functions as Python predicates, for conditions checked on the final value: the same
# patterns as the masks (an int or float value stands for the text it was converted from).
PREDICATE_FUNCTIONS: dict[str, object] = {
    "INT": lambda v: (isinstance(v, int) and not isinstance(v, bool)) or _matches(meaning.INT_PATTERN, v),
    "FLOAT": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) or _matches(meaning.FLOAT_PATTERN, v),
    "REGEX": lambda v, pattern: _matches(pattern, v if isinstance(v, str) else str(v)),
    "STARTS_WITH": _starts_with,
    "WORDS": lambda v: str(v).split(),
    "STOPS_AT": lambda v, phrase: True,
    "STOPS_BEFORE": lambda v, phrase: True,
}
