"""A decoder and its arguments, as the decoder clause gives them and a caller overrides them."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from lmlang.decoding.catalog import DECODERS, NO_EFFECT, argument_problem, carried_over, decoder_args
from lmlang.decoding.sampler import Sampler
from lmlang.errors import LmlangWarning, UsageError
from lmlang.source import Span
from lmlang.syntax import ast

DEFAULT_MAX_TOKENS = 256  # per hole, unless the decoder clause or a constraint says otherwise

# Called with each piece of text as it is produced, and whether the model wrote it.
TextSink = Callable[[str, bool], None]


@dataclass(frozen=True)
class DecoderSettings:
    """A decoder and its arguments, from the decoder clause, overridden by the caller."""

    name: str = "argmax"
    n: int = 1
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    seed: int | None = None
    k: int | None = None  # best_k: how many results
    max_tokens: int = DEFAULT_MAX_TOKENS
    max_len: int | None = None
    cache: bool | str | None = None  # LMQL's name: True re-uses prompts earlier runs left in the cache
    # A hole may re-write the prompt's last token (lmlang.masks.healing): True where it ends in white space,
    # "any" whatever it is, False never.
    token_healing: bool | str = True
    span: Span | None = field(default=None, compare=False)

    @staticmethod
    def from_clause(clause: ast.DecoderClause | None, overrides: Mapping[str, Any]) -> DecoderSettings:
        args: dict[str, Any] = {}
        span = None
        name = "argmax"
        if clause is not None:
            name, span = clause.name, clause.span
            for arg in clause.args:
                key = arg.name or ("n" if not args else None)
                if key is None:
                    raise UsageError(arg.span, f"give the decoder's arguments by name, as in {clause.name}(n=2)")
                args[key] = _literal(arg.value)
        chosen = overrides.get("decoder") or name
        if chosen not in DECODERS:
            raise UsageError(span, f"unknown decoder '{chosen}': use one of {', '.join(DECODERS)}")
        if chosen != name:  # another decoder replaces the clause's: its arguments go with it, bounds stay
            args = carried_over(args, chosen)
            name = chosen
        args.update({k: v for k, v in overrides.items() if k != "decoder" and v is not None})
        unknown = set(args) - decoder_args(name)
        if unknown:
            raise UsageError(span, f"the decoder {name} takes no argument {', '.join(sorted(unknown))}; "
                                   f"it takes {', '.join(sorted(decoder_args(name)))}")
        fields = ("n", "temperature", "top_k", "top_p", "seed", "k", "max_tokens", "max_len", "cache", "token_healing")
        known = {k: args[k] for k in fields if k in args}
        for key in sorted(set(args) & set(NO_EFFECT)):
            warnings.warn(f"the decoder option {key} has no effect: {NO_EFFECT[key]}", LmlangWarning, stacklevel=2)
        if isinstance(known.get("cache"), str):
            warnings.warn(f"cache={known['cache']!r}: lmlang keeps no cache on disk; prompts are re-used within "
                          "the process", LmlangWarning, stacklevel=2)
        settings = DecoderSettings(name=name, span=span, **known)
        for key in ("n", "k", "max_tokens", "token_healing"):
            value = getattr(settings, key)
            problem = None if value is None else argument_problem(key, value)
            if problem is not None:
                raise UsageError(span, problem)
        if name == "argmax" and settings.n != 1:
            raise UsageError(span, f"argmax gives one result, not n={settings.n}: use sample(n=...) or beam(n=...)")
        return settings

    @property
    def results(self) -> int:
        """How many results the decoder returns."""
        if self.name == "argmax":
            return 1
        return (self.k or self.n) if self.name == "best_k" else self.n

    def sampler(self, seed_offset: int = 0) -> Sampler:
        """The token chooser of one run (the ``seed_offset``-th); greedy for the decoders that do not sample."""
        if self.name in ("argmax", "beam", "best_k", "beam_var"):
            return Sampler(temperature=0.0)
        seed = None if self.seed is None else self.seed + seed_offset
        return Sampler(self.temperature, self.top_k, self.top_p, seed)


def _literal(expr: ast.Expr) -> Any:
    try:
        return eval(compile(expr.python(), "<decoder argument>", "eval"), {"__builtins__": {}}, {})
    except Exception:
        raise UsageError(expr.span, "a decoder argument must be a constant, such as 3, 0.8 or \"text\"") from None

