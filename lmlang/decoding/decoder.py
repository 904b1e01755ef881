"""Decoders over whole programs: they drive runs of a compiled program on a model and fill its holes.

A run (:class:`Run`) pairs an ``Execution`` (the program's Python state) with a ``Prompt`` (its text and cache
sequence). ``argmax`` drives one run; ``sample(n=...)`` drives ``n`` runs that share the evaluated prefix in the
cache.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping

import numpy as np

from lmlang import constraints, multimodel
from lmlang.decoding.catalog import DECODERS, decoder_args
from lmlang.decoding.hole import HoleOutcome, HoleRequest, decode_hole
from lmlang.decoding.sampler import Sampler, log_softmax_at
from lmlang.errors import ConstraintError, LmlangError, NotEnforcedError, QueryRuntimeError, UsageError
from lmlang.interpret.execution import (BlockEvent, CompiledProgram, Execution, Finished, HoleEvent,
                                        NestedEvent, RoleEvent, TextEvent)
from lmlang.interpret.prompt import Prompt
from lmlang.masks import Vocabulary
from lmlang.models.kvcache import SequencePool
from lmlang.result import HoleScore, Result, Stats
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
    max_tokens: int = DEFAULT_MAX_TOKENS
    max_len: int | None = None
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
        name = overrides.get("decoder", name)
        args.update({k: v for k, v in overrides.items() if k != "decoder" and v is not None})
        if name not in DECODERS:
            raise UsageError(span, f"unknown decoder '{name}': use one of {', '.join(DECODERS)}")
        unknown = set(args) - decoder_args(name)
        if unknown:
            raise UsageError(span, f"the decoder {name} takes no argument {', '.join(sorted(unknown))}; "
                                   f"it takes {', '.join(sorted(decoder_args(name)))}")
        known = {k: args[k] for k in ("n", "temperature", "top_k", "top_p", "seed", "max_tokens", "max_len") if k in args}
        settings = DecoderSettings(name=name, span=span, **known)
        if name in ("beam", "beam_sample", "best_k"):
            raise NotEnforcedError(span, f"the {name} decoder is not available yet: use argmax or sample(n=...)")
        return settings

    def sampler(self, seed_offset: int = 0) -> Sampler:
        if self.name == "argmax":
            return Sampler(temperature=0.0)
        seed = None if self.seed is None else self.seed + seed_offset
        return Sampler(self.temperature, self.top_k, self.top_p, seed)


def _literal(expr: ast.Expr) -> Any:
    try:
        return eval(compile(expr.python(), "<decoder argument>", "eval"), {"__builtins__": {}}, {})
    except Exception:
        raise UsageError(expr.span, "a decoder argument must be a constant, such as 3, 0.8 or \"text\"") from None


class Run:
    """One continuation of a program on a model: its Python state, prompt, variables and scores."""

    def __init__(self, execution: Execution, prompt: Prompt) -> None:
        self.execution = execution
        self.prompt = prompt
        self.variables: dict[str, Any] = {}
        self.scores: dict[str, HoleScore] = {}
        self.distributions: dict[str, list[tuple[Any, float]]] = {}
        self.generated_tokens = 0
        self.logprob = 0.0
        self.depth = 0

    def fork(self) -> Run:
        other = Run(self.execution.fork(), self.prompt.fork())
        other.variables = dict(self.variables)
        other.scores = dict(self.scores)
        other.distributions = dict(self.distributions)
        other.generated_tokens, other.logprob, other.depth = self.generated_tokens, self.logprob, self.depth
        return other


class Decoder:
    """Runs compiled programs on one model."""

    def __init__(self, model: Any, pool: SequencePool | None = None) -> None:
        self.model = model
        self.pool = pool or SequencePool(model)
        self._vocabulary: Vocabulary | None = None

    @property
    def vocabulary(self) -> Vocabulary:
        if self._vocabulary is None:
            m = self.model
            self._vocabulary = Vocabulary(m.token_bytes, m.special_tokens, m.eog_tokens, str(m.path))
        return self._vocabulary

    def run(self, program: CompiledProgram, inputs: Mapping[str, Any], settings: DecoderSettings,
            on_text: TextSink | None = None) -> list[Result]:
        """``settings.n`` results of the program (one for argmax), each from its own run."""
        count = 1 if settings.name == "argmax" else settings.n
        results = []
        for i in range(count):
            started = time.perf_counter()
            run = Run(program.start(inputs), Prompt(self.model, self.pool))
            try:
                value = self._drive(run, settings, settings.sampler(i), on_text if i == 0 else None)
            finally:
                run.prompt.close()
            results.append(self._result(run, value, time.perf_counter() - started))
        return results

    def _drive(self, run: Run, settings: DecoderSettings, sampler: Sampler, on_text: TextSink | None) -> Any:
        execution = run.execution
        while True:
            event = execution.next_event()
            if isinstance(event, Finished):
                return event.value
            value = None
            if isinstance(event, TextEvent):
                run.prompt.add_text(event.text)
                if on_text is not None:
                    on_text(event.text, False)
            elif isinstance(event, RoleEvent):
                markup = run.prompt.set_role(event.role)
                if on_text is not None and markup:
                    on_text(markup, False)
            elif isinstance(event, NestedEvent):
                run.depth += 1 if event.entering else -1
                if not event.entering and event.site.depth == 0:
                    run.variables[event.site.hole.name] = event.value
            elif isinstance(event, HoleEvent):
                value = self._fill(run, event, settings, sampler, on_text)
            elif isinstance(event, BlockEvent):
                value = multimodel.run_block(self, run, event, settings, on_text)
            execution.resume(value)

    def _fill(self, run: Run, event: HoleEvent, settings: DecoderSettings, sampler: Sampler,
              on_text: TextSink | None) -> Any:
        site = event.site
        hole = site.hole
        if site.distribution is not None:
            return self._distribution(run, event)
        plan = constraints.plan_hole(hole.name, site.where, hole.type, event.env, event.env)
        seq = run.prompt.flush()
        room = (settings.max_len or self.model.n_ctx) - len(seq.tokens)
        limit = min(x for x in (settings.max_tokens, plan.max_tokens, room) if x is not None)
        if limit <= 0:
            raise ConstraintError(hole.span, f"no room left to generate {hole.name}: the prompt has {len(seq.tokens)} "
                                             f"tokens; raise max_len or n_ctx")
        request = HoleRequest(hole.name, hole.span, plan.stops, limit, plan.matcher(self.vocabulary))
        sink = None if on_text is None else (lambda piece: on_text(piece.decode("utf-8", "replace"), True))
        outcome = decode_hole(seq, request, sampler, sink)
        value = plan.finish(outcome.text)
        run.prompt.add_generated(outcome.text)
        self._record(run, hole.name, site.depth, value, outcome)
        return value

    def _record(self, run: Run, name: str, depth: int, value: Any, outcome: HoleOutcome) -> None:
        run.generated_tokens += outcome.sampled
        run.logprob += outcome.logprob
        if depth == 0:
            run.variables[name] = value
            run.scores[name] = HoleScore(outcome.logprob, outcome.mean_logprob, outcome.margin, len(outcome.tokens))

    def _distribution(self, run: Run, event: HoleEvent) -> Any:
        site = event.site
        dist = site.distribution
        assert dist is not None
        try:
            candidates = list(eval(compile(dist.values.python(), "<distribution>", "eval"), {}, event.env))
        except Exception as err:
            raise QueryRuntimeError(dist.values.span, f"the candidates of distribution {dist.var} could not be "
                                                      f"computed: {type(err).__name__}: {err}") from None
        if not candidates:
            raise QueryRuntimeError(dist.values.span, f"distribution {dist.var} has no candidates")
        seq = run.prompt.flush()
        scores = np.array([self.score_continuation(seq, str(c)) for c in candidates])
        probs = np.exp(scores - scores.max())
        probs /= probs.sum()
        best = int(np.argmax(probs))
        text = str(candidates[best])
        seq.append(self.model.tokenize(text))
        run.prompt.add_generated(text)
        run.distributions[dist.var] = [(c, float(p)) for c, p in zip(candidates, probs)]
        self._record(run, dist.var, site.depth, candidates[best],
                     HoleOutcome(text, [], [float(scores[best])], float(abs(np.sort(probs)[-1] - (np.sort(probs)[-2] if len(probs) > 1 else 0.0)))))
        return candidates[best]

    def score_continuation(self, seq: Any, text: str) -> float:
        """log P(text | what ``seq`` holds): the sum of its tokens' log-probabilities under the model."""
        tokens = self.model.tokenize(text)
        branch = seq.fork()
        try:
            total = 0.0
            for i, token in enumerate(tokens):
                total += float(log_softmax_at(branch.logits(), [token])[0])
                if i + 1 < len(tokens):
                    branch.append([token])
            return total
        finally:
            branch.release()

    def _result(self, run: Run, value: Any, seconds: float) -> Result:
        stats = Stats(run.prompt.prefill_tokens, run.generated_tokens, seconds)
        return Result(run.prompt.text, dict(run.variables), value, self.model.name, stats, dict(run.scores),
                      dict(run.distributions))
