"""The decoder of one model: it drives runs of a compiled program and fills their holes.

A run (:class:`Run`) pairs an ``Execution`` (the program's Python state) with a ``Prompt`` (its text and cache
sequence). The decoder advances a run to its next hole (:meth:`Decoder.next_hole`), generates it, and closes it;
the strategies that combine these steps over one run or several (``argmax``, ``sample``, ``beam``...) are
registered by name in :mod:`lmlang.decoding.strategies`.

A ``distribution`` hole is scored instead of generated: every candidate's log-probability after the prompt, all
candidates in one batched evaluation over the shared prefix.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np

from lmlang import constraints
from lmlang.caches import BoundedCache
from lmlang.decoding import decorator
from lmlang.decoding.decorator import Decorators
from lmlang.decoding.hole import HoleCursor, HoleOutcome, HoleRequest, generate, leading_within
from lmlang.decoding.run import OpenHole, Run
from lmlang.decoding.runner import BlockHandler
from lmlang.decoding.sampler import Sampler
from lmlang.decoding.settings import DEFAULT_MAX_TOKENS, DecoderSettings, TextSink
from lmlang.errors import ConstraintError, QueryRuntimeError, UsageError
from lmlang.interpret import namespace
from lmlang.interpret.execution import (NO_RETURN, BlockEvent, CompiledProgram, Finished, HoleEvent, NestedEvent,
                                        RoleEvent, TextEvent)
from lmlang.interpret.prompt import Prompt
from lmlang.masks import TokenMatcher, Vocabulary
from lmlang.masks.choices import ChoiceMatcher
from lmlang.masks.healing import HealingMatcher, extended, joins
from lmlang.models.kvcache import SequencePool
from lmlang.result import HoleScore, HoleSpan, Result, Stats, token_pieces

__all__ = ["DEFAULT_MAX_TOKENS", "Decoder", "DecoderSettings", "OpenHole", "Run", "TextSink", "last_hole"]

MATCHERS_KEPT = 64  # token matchers per decoder: each holds per-state masks the size of the vocabulary
EXTENSIBLE_KEPT = 4096  # answers about single tokens, a few bytes each
# A hole with at most this many possible values follows their tokenizations (lmlang.masks.choices).
CHOICES_LISTED = 256


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
    """Runs compiled programs on one model. It owns the model's pool of idle prompts and its token matchers;
    ``blocks`` runs the program's multi-model blocks (a session supplies it)."""

    def __init__(self, model: Any, pool: SequencePool | None = None, blocks: BlockHandler | None = None,
                 matchers: int = MATCHERS_KEPT) -> None:
        self.model = model
        self.pool = pool or SequencePool(model)
        self.blocks = blocks
        self.matchers: BoundedCache[tuple[Any, ...], TokenMatcher] = BoundedCache("matchers", matchers)
        # Whether another token starts with a token's bytes (token healing asks it of a prompt's last token).
        self.extensible: BoundedCache[int, bool] = BoundedCache("extensible tokens", EXTENSIBLE_KEPT)

    @property
    def vocabulary(self) -> Vocabulary:
        return self.model.vocabulary()

    def prompt(self) -> Prompt:
        """An empty prompt on this model's cache."""
        return Prompt(self.model, self.pool)

    def start(self, program: CompiledProgram, inputs: Mapping[str, Any]) -> Run:
        """A new run of ``program`` on this model, at its beginning."""
        return Run(program.start(inputs), self.prompt())

    def clear(self) -> None:
        """Forget the idle and saved prompts and the token matchers."""
        self.pool.clear()
        self.pool.prompts.clear()
        self.matchers.clear()
        self.extensible.clear()

    def drive(self, run: Run, settings: DecoderSettings, sampler: Sampler,
              on_text: TextSink | None = None) -> Any:
        """Run the program of ``run`` to its end, one hole after the other; its return value."""
        while True:
            hole = self.next_hole(run, settings, sampler, on_text)
            if isinstance(hole, Finished):
                return hole.value
            run.execution.resume(self.fill(run, hole, sampler))

    def fill(self, run: Run, hole: OpenHole, sampler: Sampler) -> Any:
        """Generate the open hole to its end and close it: its value."""
        return self.close_hole(run, hole, generate(hole.cursor, sampler))

    def _nest(self, run: Run, event: NestedEvent, on_text: TextSink | None) -> Any:
        """A nested query's instructions and holes stand in the prompt while it runs; when it returns a value, they
        leave the prompt (and the cache), and the value is written in their place, as in LMQL (``None`` too); one
        that returns none is a macro. The hole's value (after its decorators) when leaving."""
        if event.entering:
            run.nested.append(run.prompt.mark())
            return None
        mark = run.nested.pop()
        if event.value is NO_RETURN:  # no `return VALUE`: a macro, whose text stays in the prompt and is the value
            text = "".join(run.prompt.parts[mark[0]:])
            value, shown = _decorators(event).finish(text, text, _state(run))
            if shown != text:
                run.prompt.rewind(mark)
                run.prompt.add_text(shown)
            text = shown
        else:
            run.prompt.rewind(mark)
            value, text = _decorators(event).finish(event.value, str(event.value), _state(run))
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
        event = self.advance(run, settings, sampler, on_text)
        if isinstance(event, Finished):
            return event
        return self.open_hole(run, event, settings, None if run.nested else on_text)

    def advance(self, run: Run, settings: DecoderSettings, sampler: Sampler, on_text: TextSink | None,
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
                    value = self._distribution(run, event, settings, shown)
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
                if self.blocks is None:
                    raise UsageError(event.statement.span, "a multi-model block runs only in a session: run the "
                                                           "query with lmlang.run or Query.run")
                value = self.blocks(self, run, event, settings, shown)
            execution.resume(value)

    def open_hole(self, run: Run, event: HoleEvent, settings: DecoderSettings, on_text: TextSink | None) -> OpenHole:
        """Evaluate the prompt up to the hole and set up its generation under its constraints."""
        hole = event.site.hole
        plan = constraints.plan_hole(hole.name, event.site.where, hole.type, event.env, event.env, event.site.holes)
        built: dict[bytes, Any] = {}
        healable = self.heals(settings.token_healing)

        def heals(token: int) -> bool:
            assert healable is not None
            if not healable(token):
                return False
            if plan.automaton is None:
                return True
            piece = self.model.token_bytes[token]
            built[piece] = matcher = self._matcher(plan, piece)
            # Only where the constraint lets a token join the bytes to the value's first character: else taking
            # them back gains nothing and costs a decode (a space before digits, on a model that spells every
            # digit alone; a second space is no better).
            return joins(np.flatnonzero(matcher.allowed(matcher.start())), len(piece), self.model.token_blob())

        seq = run.prompt.flush(heal=None if healable is None else heals)
        heal = run.prompt.take_healed()
        room = (settings.max_len or self.model.n_ctx) - len(seq.tokens)
        limit = min(x for x in (settings.max_tokens, plan.max_tokens, room) if x is not None)
        if limit <= 0:
            raise ConstraintError(hole.span, f"no room left to generate {hole.name}: the prompt has {len(seq.tokens)} "
                                             f"tokens; raise max_len or n_ctx")
        # The vocabulary's layout costs a fifth of a second on a large vocabulary: built only for a mask.
        matcher = (built.get(heal) or self._matcher(plan, heal)) if plan.automaton is not None else None
        healing = self._healing(heal) if heal and matcher is None else None
        if plan.min_tokens > limit:
            raise ConstraintError(hole.span, f"{hole.name} needs at least {plan.min_tokens} tokens, but at most "
                                             f"{limit} can be generated here: raise max_tokens or lower the bound")
        request = HoleRequest(hole.name, hole.span, plan.stops, limit, matcher, plan.min_tokens, heal, healing)
        sink = None if on_text is None else (lambda piece: on_text(piece.decode("utf-8", "replace"), True))
        decorators = _decorators(event)
        if decorators.streams:
            sink = _streaming(decorators, run, sink)
        return OpenHole(event, plan, HoleCursor(seq, request, sink))

    def _matcher(self, plan: Any, heal: bytes) -> Any:
        values = plan.values(CHOICES_LISTED)
        if values is not None:
            key = ("choices", plan.automaton.key, plan.max_chars, heal)
            listed = self.matchers.get_or_make(key, lambda: self._choices(values, heal))
            if listed is not None:
                return listed
        vocabulary = self.vocabulary
        # A grammar writes the healed bytes itself: a regular part that allows any text needs no prefix, and its
        # masks cost nothing then.
        regular_heal = b"" if plan.structures and plan.free_text else heal
        regular = self.matchers.get_or_make(plan.matcher_key(vocabulary, regular_heal),
                                            lambda: plan.matcher(vocabulary, regular_heal))
        return plan.generation_matcher(regular, vocabulary, heal)

    def heals(self, mode: bool | str) -> Callable[[int], bool] | None:
        """Which last tokens of a prompt a hole takes back under the decoder option ``token_healing``: by
        default a token ending in a space or tab (tokenizers join those to the next word, so a model rarely
        sees them last), with "any" every token (a word cut short: "http" before "s://"); and only a token that
        some other token extends (else the hole could only write it again)."""
        if mode is False:
            return None

        def heals(token: int) -> bool:
            piece = self.model.token_bytes[token]
            if mode is True and not piece.endswith((b" ", b"\t")):
                return False
            return self.extensible.get_or_make(token, lambda: extended(piece, self.model.token_blob()))

        return heals

    def _choices(self, values: list[bytes], heal: bytes) -> ChoiceMatcher | None:
        """A hole's few values each as the tokenizer spells it (after the ``heal`` bytes); None where the tokenizer
        does not spell some value's bytes exactly (the byte automaton then masks the hole)."""
        model = self.model
        spellings = []
        for value in values:
            text = heal + value
            tokens = model.tokenize(text.decode("utf-8"))
            if b"".join(model.token_bytes[t] for t in tokens) != text:
                return None
            spellings.append(tokens)
        return ChoiceMatcher(spellings, model.token_bytes, model.eog_tokens)

    def _healing(self, heal: bytes) -> HealingMatcher:
        """The matcher of the healed bytes alone, for a hole without constraints (no vocabulary layout needed)."""
        model = self.model
        return self.matchers.get_or_make(("healing", heal), lambda: HealingMatcher(
            heal, model.token_bytes, model.special_tokens | model.eog_tokens, model.token_blob()))

    def close_hole(self, run: Run, hole: OpenHole, outcome: HoleOutcome) -> Any:
        """The hole's checked value, now part of the run; resume the run's execution with it."""
        value, shown = _decorators(hole.event).finish(hole.plan.finish(outcome.text), outcome.text, _state(run))
        if shown == outcome.text:
            run.prompt.add_generated(outcome.text)
        else:  # a decorator gave the prompt another text than the model wrote
            run.prompt.replace_since(hole.cursor.start, shown, hole.cursor.request.heal)
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
            score = HoleScore(outcome.logprob, outcome.mean_logprob, outcome.margin,
                              len(outcome.tokens) - outcome.healed_tokens, pieces)
            run.scores[name] = score
            end = len(run.prompt.text)
            cut = None if outcome.cut is None else outcome.cut.decode("utf-8", "replace")
            run.holes.append(HoleSpan(name, end - len(shown), end, score, cut))

    def _distribution(self, run: Run, event: HoleEvent, settings: DecoderSettings, on_text: TextSink | None) -> Any:
        """Score each candidate of the hole's ``distribution`` clause; the likeliest is the hole's value. With token
        healing, each candidate is scored as the tokenizer spells it after the prompt's held-back bytes, given
        that the text goes on with those bytes (their own probability is the same for every candidate)."""
        site = event.site
        dist = site.distribution
        assert dist is not None
        try:
            candidates = list(namespace.evaluate(dist.values.python(), event.env, filename="<distribution>"))
        except Exception as err:
            raise QueryRuntimeError(dist.values.span, f"the candidates of distribution {dist.var} could not be "
                                                      f"computed: {type(err).__name__}: {err}") from None
        if not candidates:
            raise QueryRuntimeError(dist.values.span, f"distribution {dist.var} has no candidates")
        seq = run.prompt.flush(heal=self.heals(settings.token_healing))
        heal = run.prompt.take_healed()
        texts = [str(c) for c in candidates]
        prefix = heal.decode("utf-8")
        branches, logprobs = self._branch_logprobs(seq, [prefix + text for text in texts])
        if heal:
            given = self._healed_mass(seq, heal)
            for scores in logprobs:
                scores[0] -= given
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
            run.prompt.replace_since(len(seq.tokens), shown, heal)
        if on_text is not None:
            on_text(shown, True)
        run.distributions[dist.var] = [(c, float(p)) for c, p in zip(candidates, probs)]
        margin = float(top[0] - (top[1] if len(top) > 1 else 0.0))
        outcome = HoleOutcome(texts[best], branches[best], [float(x) for x in logprobs[best]], margin,
                              healed_tokens=leading_within(branches[best], self.model.token_bytes, len(heal)))
        self._record(run, dist.var, site.depth, value, outcome, shown)
        return value

    def _healed_mass(self, seq: Any, heal: bytes) -> float:
        """log P(the text after ``seq`` goes on with the bytes ``heal``), as the next token tells it."""
        logits = seq.logits().astype(np.float64)
        ids = self._healing(heal).ids(1)
        peak = float(logits.max())
        total = np.log(np.exp(logits - peak).sum())
        return float(np.log(np.exp(logits[ids] - peak).sum()) - total)

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
        run_prompt = self.prompt()
        run_prompt.add_text(prompt)
        try:
            return self.score_continuations(run_prompt.flush(), continuations)
        finally:
            run_prompt.close()

    def score_program(self, program: CompiledProgram, inputs: Mapping[str, Any], settings: DecoderSettings,
                      candidates: list[str]) -> list[float]:
        """Run the program (one run, ``settings``' chooser) up to its last hole, which is not generated: the
        log-probability of each candidate as its value instead."""
        target = last_hole(program)
        run = self.start(program, inputs)
        sampler = settings.sampler(0)
        try:
            while True:
                event = self.advance(run, settings, sampler, None, stop_at=target)
                if isinstance(event, Finished):
                    raise UsageError(None, "the query ended before reaching its last hole, so there is nothing "
                                           "to score the candidates as")
                if event.site.index == target:
                    return self.score_continuations(run.prompt.flush(), candidates)
                run.execution.resume(self.fill(run, self.open_hole(run, event, settings, None), sampler))
        finally:
            run.prompt.close()

    def result(self, run: Run, value: Any, seconds: float) -> Result:
        """The result of a finished run whose program returned ``value``."""
        stats = Stats(run.prompt.prefill_tokens, run.generated_tokens, seconds, run.prompt.prefill_seconds)
        returned = value is not NO_RETURN
        return Result(run.prompt.text, dict(run.variables), value if returned else None, self.model.name, stats,
                      dict(run.scores), dict(run.distributions), run.logprob, list(run.trace), returned,
                      list(run.holes))


def last_hole(program: CompiledProgram) -> int:
    """The site of the query's last hole: the one a ``distribution`` clause scores."""
    top = [site for site in program.sites if site.depth == 0]
    if not top:
        raise UsageError(None, "the query has no hole to score candidates at")
    scored = [site.index for site in top if site.distribution is not None]
    return scored[-1] if scored else top[-1].index
