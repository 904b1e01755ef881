"""Decoders over whole programs: they drive runs of a compiled program on a model and fill its holes.

A run (:class:`Run`) pairs an ``Execution`` (the program's Python state) with a ``Prompt`` (its text and cache
sequence). ``argmax`` (and ``sample`` with n=1) drives one run; ``sample(n=...)`` drives ``n`` runs in lockstep
(:mod:`.lockstep`) and ``beam``, ``beam_sample`` and ``best_k`` search over runs (:mod:`.beam`): their runs share
the evaluated prefix in the cache and advance one token each per llama_decode.

A ``distribution`` hole is scored instead of generated: every candidate's log-probability after the prompt, all
candidates in one batched evaluation over the shared prefix.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from lmlang import constraints, multimodel
from lmlang.decoding import decorator
from lmlang.decoding.catalog import DECODERS, NO_EFFECT, carried_over, decoder_args
from lmlang.decoding.decorator import Decorators
from lmlang.decoding.hole import HoleCursor, HoleOutcome, HoleRequest, generate
from lmlang.decoding.sampler import Sampler
from lmlang.errors import ConstraintError, LmlangWarning, QueryRuntimeError, UsageError
from lmlang.interpret.execution import (BlockEvent, CompiledProgram, Execution, Finished, HoleEvent,
                                        NestedEvent, RoleEvent, TextEvent)
from lmlang.interpret.prompt import Prompt
from lmlang.masks import Vocabulary
from lmlang.models.kvcache import SequencePool
from lmlang.result import HoleScore, HoleSpan, Result, Stats, token_pieces
from lmlang.source import Span
from lmlang.syntax import ast

DEFAULT_MAX_TOKENS = 256  # per hole, unless the decoder clause or a constraint says otherwise
SEARCHES = ("beam", "beam_sample", "best_k")  # decoders that search over several runs of the program

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
        fields = ("n", "temperature", "top_k", "top_p", "seed", "k", "max_tokens", "max_len", "cache")
        known = {k: args[k] for k in fields if k in args}
        for key in sorted(set(args) & set(NO_EFFECT)):
            warnings.warn(f"the decoder option {key} has no effect: {NO_EFFECT[key]}", LmlangWarning, stacklevel=2)
        if isinstance(known.get("cache"), str):
            warnings.warn(f"cache={known['cache']!r}: lmlang keeps no cache on disk; prompts are re-used within "
                          "the process", LmlangWarning, stacklevel=2)
        settings = DecoderSettings(name=name, span=span, **known)
        for key in ("n", "k", "max_tokens"):
            value = getattr(settings, key)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise UsageError(span, f"the decoder argument {key} must be a positive whole number, not {value!r}")
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
        if self.name in ("argmax", "beam", "best_k"):
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
        self.nested: list[tuple[int, int, str | None, int]] = []  # the prompt where each open nested query began
        self.trace: list[dict[str, Any]] = []  # the stages of its multi-model blocks (lmlang.multimodel)
        self.holes: list[HoleSpan] = []  # where each top-level value stands in the prompt

    def fork(self) -> Run:
        """An independent copy at the same event (the cache sequence forked, sharing what is evaluated)."""
        other = Run(self.execution.fork(), self.prompt.fork())
        other.variables = dict(self.variables)
        other.scores = dict(self.scores)
        other.distributions = dict(self.distributions)
        other.trace = list(self.trace)
        other.holes = list(self.holes)
        other.generated_tokens, other.logprob, other.nested = self.generated_tokens, self.logprob, list(self.nested)
        return other


@dataclass
class OpenHole:
    """A run stopped at a hole whose value is being generated."""

    event: HoleEvent
    plan: Any  # constraints.HolePlan
    cursor: HoleCursor


def _decorators(event: HoleEvent | NestedEvent) -> Decorators:
    if not event.decorators:
        return decorator.NONE
    return Decorators(event.decorators, event.site.hole.decorators)


def _state(run: Run) -> decorator.ProgramState:
    return decorator.ProgramState(lambda: run.prompt.text, run.variables)


def _streaming(decorators: Decorators, run: Run, sink: Callable[[bytes], None] | None) -> Callable[[bytes], None]:
    """The cursor's piece sink, also calling the hole's streaming decorators with the value so far."""
    value = bytearray()

    def piece(data: bytes) -> None:
        value.extend(data)
        decorators.stream(value.decode("utf-8", "replace"), _state(run))
        if sink is not None:
            sink(data)

    return piece


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
        """The results of the program under ``settings``: one, or ``settings.results`` ranked best first."""
        from lmlang.decoding import beam, lockstep  # they build on this module

        started = time.perf_counter()
        runs: list[Run] = []
        try:
            if settings.name in SEARCHES:
                finished = beam.search(self, program, inputs, settings, runs)
            elif settings.results > 1:
                finished = lockstep.sample(self, program, inputs, settings, runs)
            else:
                runs.append(Run(program.start(inputs), Prompt(self.model, self.pool)))
                finished = [(runs[0], self._drive(runs[0], settings, settings.sampler(0), on_text))]
                on_text = None  # streamed already
        finally:
            for run in runs:
                run.prompt.close()
        elapsed = time.perf_counter() - started
        results = [self._result(run, value, elapsed) for run, value in finished]
        if on_text is not None and results:  # several runs advanced together: show the best one
            on_text(results[0].prompt, False)
        return results

    def _drive(self, run: Run, settings: DecoderSettings, sampler: Sampler, on_text: TextSink | None) -> Any:
        """Run the program of ``run`` to its end, one hole after the other; its return value."""
        while True:
            hole = self.next_hole(run, settings, sampler, on_text)
            if isinstance(hole, Finished):
                return hole.value
            run.execution.resume(self._fill(run, hole, sampler))

    def _fill(self, run: Run, hole: OpenHole, sampler: Sampler) -> Any:
        """Generate the open hole to its end and close it: its value."""
        return self.close_hole(run, hole, generate(hole.cursor, sampler))

    def _nest(self, run: Run, event: NestedEvent, on_text: TextSink | None) -> Any:
        """A nested query's instructions and holes stand in the prompt while it runs; when it returns, they
        leave the prompt (and the cache), and its return value is written in their place, as in LMQL. The
        hole's value (after its decorators) when leaving."""
        if event.entering:
            run.nested.append(run.prompt.mark())
            return None
        run.prompt.rewind(run.nested.pop())
        text = "" if event.value is None else str(event.value)
        value, text = _decorators(event).finish(event.value, text, _state(run))
        run.prompt.add_text(text)
        if event.site.depth == 0:
            run.variables[event.site.hole.name] = value
            end = len(run.prompt.text)
            run.holes.append(HoleSpan(event.site.hole.name, end - len(text), end))
            if on_text is not None and text and not run.nested:
                on_text(text, True)
        return value

    def next_hole(self, run: Run, settings: DecoderSettings, sampler: Sampler,
                  on_text: TextSink | None = None) -> OpenHole | Finished:
        """Run the program of ``run`` to its next hole to generate, opened, or to its end."""
        event = self._advance(run, settings, sampler, on_text)
        if isinstance(event, Finished):
            return event
        return self.open_hole(run, event, settings, None if run.nested else on_text)

    def _advance(self, run: Run, settings: DecoderSettings, sampler: Sampler, on_text: TextSink | None,
                 stop_at: int | None = None) -> HoleEvent | Finished:
        """Run the program up to the next hole to generate (prompt text, roles, blocks and scored
        ``distribution`` holes on the way are handled here), the hole of site ``stop_at``, or its end."""
        execution = run.execution
        while True:
            event = execution.next_event()
            if isinstance(event, Finished):
                return event
            value = None
            shown = None if run.nested else on_text  # a nested query's text leaves the prompt: not streamed
            if isinstance(event, HoleEvent):
                fixed = _decorators(event).fixed_value(event.site.hole.name, _state(run))
                if fixed is not None:
                    value = self._fixed(run, event, fixed, shown)
                elif event.site.distribution is None or event.site.index == stop_at:
                    return event
                else:
                    value = self._distribution(run, event, shown)
            elif isinstance(event, TextEvent):
                run.prompt.add_text(event.text)
                if shown is not None:
                    shown(event.text, False)
            elif isinstance(event, RoleEvent):
                markup = run.prompt.set_role(event.role)
                if shown is not None and markup:
                    shown(markup, False)
            elif isinstance(event, NestedEvent):
                value = self._nest(run, event, on_text)
            elif isinstance(event, BlockEvent):
                value = multimodel.run_block(self, run, event, settings, shown)
            execution.resume(value)

    def open_hole(self, run: Run, event: HoleEvent, settings: DecoderSettings, on_text: TextSink | None) -> OpenHole:
        """Evaluate the prompt up to the hole and set up its generation under its constraints."""
        hole = event.site.hole
        plan = constraints.plan_hole(hole.name, event.site.where, hole.type, event.env, event.env, event.site.holes)
        seq = run.prompt.flush()
        room = (settings.max_len or self.model.n_ctx) - len(seq.tokens)
        limit = min(x for x in (settings.max_tokens, plan.max_tokens, room) if x is not None)
        if limit <= 0:
            raise ConstraintError(hole.span, f"no room left to generate {hole.name}: the prompt has {len(seq.tokens)} "
                                             f"tokens; raise max_len or n_ctx")
        # The vocabulary's layout costs a fifth of a second on a large vocabulary: built only for a mask.
        matcher = plan.matcher(self.vocabulary) if plan.automaton is not None else None
        if plan.min_tokens > limit:
            raise ConstraintError(hole.span, f"{hole.name} needs at least {plan.min_tokens} tokens, but at most "
                                             f"{limit} can be generated here: raise max_tokens or lower the bound")
        request = HoleRequest(hole.name, hole.span, plan.stops, limit, matcher, plan.min_tokens)
        sink = None if on_text is None else (lambda piece: on_text(piece.decode("utf-8", "replace"), True))
        decorators = _decorators(event)
        if decorators.streams:
            sink = _streaming(decorators, run, sink)
        return OpenHole(event, plan, HoleCursor(seq, request, sink))

    def close_hole(self, run: Run, hole: OpenHole, outcome: HoleOutcome) -> Any:
        """The hole's checked value, now part of the run; resume the run's execution with it."""
        value, shown = _decorators(hole.event).finish(hole.plan.finish(outcome.text), outcome.text, _state(run))
        if shown == outcome.text:
            run.prompt.add_generated(outcome.text)
        else:  # a decorator gave the prompt another text than the model wrote
            run.prompt.replace_since(hole.cursor.start, shown)
        self._record(run, hole.event.site.hole.name, hole.event.site.depth, value, outcome, shown)
        return value

    def _fixed(self, run: Run, event: HoleEvent, text: str, on_text: TextSink | None) -> Any:
        """A value a pre-processing decorator gave: written into the prompt, nothing generated."""
        value, shown = _decorators(event).finish(text, text, _state(run))
        run.prompt.add_text(shown)
        if on_text is not None:
            on_text(shown, True)
        self._record(run, event.site.hole.name, event.site.depth, value, HoleOutcome(shown, [], [], 1.0), shown)
        return value

    def _record(self, run: Run, name: str, depth: int, value: Any, outcome: HoleOutcome, shown: str) -> None:
        """Count the hole's work; a top-level one's value, score and place in the prompt (``shown``, just added)."""
        run.generated_tokens += outcome.sampled
        run.logprob += outcome.logprob
        if depth == 0:
            run.variables[name] = value
            pieces = token_pieces(outcome.steps, len(outcome.text.encode()))
            score = HoleScore(outcome.logprob, outcome.mean_logprob, outcome.margin, len(outcome.tokens), pieces)
            run.scores[name] = score
            end = len(run.prompt.text)
            cut = None if outcome.cut is None else outcome.cut.decode("utf-8", "replace")
            run.holes.append(HoleSpan(name, end - len(shown), end, score, cut))

    def _distribution(self, run: Run, event: HoleEvent, on_text: TextSink | None) -> Any:
        """Score each candidate of the hole's ``distribution`` clause; the likeliest is the hole's value."""
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
        texts = [str(c) for c in candidates]
        branches, logprobs = self._branch_logprobs(seq, texts)
        scores = np.array([float(lp.sum()) for lp in logprobs])
        probs = np.exp(scores - scores.max())
        probs /= probs.sum()
        best = int(np.argmax(probs))
        top = np.sort(probs)[::-1]
        value, shown = _decorators(event).finish(candidates[best], texts[best], _state(run))
        if shown == texts[best]:
            seq.append(branches[best])
            run.prompt.add_generated(shown)
        else:  # a decorator gave the prompt another text than the candidate's
            run.prompt.add_text(shown)
        if on_text is not None:
            on_text(shown, True)
        run.distributions[dist.var] = [(c, float(p)) for c, p in zip(candidates, probs)]
        margin = float(top[0] - (top[1] if len(top) > 1 else 0.0))
        outcome = HoleOutcome(texts[best], branches[best], [float(x) for x in logprobs[best]], margin)
        self._record(run, dist.var, site.depth, value, outcome, shown)
        return value

    def score_continuations(self, seq: Any, texts: list[str]) -> list[float]:
        """log P(text | what ``seq`` holds) for each text, all evaluated in one batch on forks of ``seq``."""
        return [float(lp.sum()) for lp in self._branch_logprobs(seq, texts)[1]]

    def _branch_logprobs(self, seq: Any, texts: list[str]) -> tuple[list[list[int]], list[np.ndarray]]:
        """Each text's tokens and their log-probabilities after what ``seq`` holds, in one batch."""
        branches = [self.model.tokenize(text) for text in texts]
        return branches, self.model.evaluate_branches(seq, branches)

    def score_continuation(self, seq: Any, text: str) -> float:
        """log P(text | what ``seq`` holds): the sum of its tokens' log-probabilities under the model."""
        return self.score_continuations(seq, [text])[0]

    def score_text(self, prompt: str, continuations: list[str]) -> list[float]:
        """log P(continuation | prompt) for each continuation (the prompt is plain text, BOS added if the model
        wants one)."""
        run_prompt = Prompt(self.model, self.pool)
        run_prompt.add_text(prompt)
        try:
            return self.score_continuations(run_prompt.flush(), continuations)
        finally:
            run_prompt.close()

    def score_program(self, program: CompiledProgram, inputs: Mapping[str, Any], settings: DecoderSettings,
                      candidates: list[str]) -> list[float]:
        """Run the program (one run, ``settings``' chooser) up to its last hole, which is not generated: the
        log-probability of each candidate as its value instead."""
        target = _last_hole(program)
        run = Run(program.start(inputs), Prompt(self.model, self.pool))
        sampler = settings.sampler(0)
        try:
            while True:
                event = self._advance(run, settings, sampler, None, stop_at=target)
                if isinstance(event, Finished):
                    raise UsageError(None, "the query ended before reaching its last hole, so there is nothing "
                                           "to score the candidates as")
                if event.site.index == target:
                    return self.score_continuations(run.prompt.flush(), candidates)
                run.execution.resume(self._fill(run, self.open_hole(run, event, settings, None), sampler))
        finally:
            run.prompt.close()

    def _result(self, run: Run, value: Any, seconds: float) -> Result:
        stats = Stats(run.prompt.prefill_tokens, run.generated_tokens, seconds)
        return Result(run.prompt.text, dict(run.variables), value, self.model.name, stats, dict(run.scores),
                      dict(run.distributions), run.logprob, list(run.trace), list(run.holes))


def _last_hole(program: CompiledProgram) -> int:
    """The site of the query's last hole: the one a ``distribution`` clause scores."""
    top = [site for site in program.sites if site.depth == 0]
    if not top:
        raise UsageError(None, "the query has no hole to score candidates at")
    scored = [site.index for site in top if site.distribution is not None]
    return scored[-1] if scored else top[-1].index
