"""One stage of a multi-model block: the block's body run once, on one model, after the enclosing prompt.

A stage is an ordinary run of the program (an ``Execution`` of the body's generator, driven by that model's
decoder), so everything a query string can do works inside a block. On the enclosing run's own model the stage
forks the enclosing prompt, sharing its evaluated cache; on another model the enclosing prompt is replayed, its
messages in that model's chat markup, and an accepted stage's text comes back the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from lmlang.decoding.run import Run
from lmlang.decoding.runner import BlockRunner, ModelRunner
from lmlang.decoding.sampler import Sampler
from lmlang.decoding.settings import DecoderSettings
from lmlang.errors import LmlangError, ModelError
from lmlang.interpret.execution import BlockEvent, Execution
from lmlang.multimodel.scope import evaluate
from lmlang.result import HoleScore
from lmlang.source import Span


@dataclass
class Stage:
    """The outcome of one run of a block's body on one model."""

    model: str
    run: Run
    values: dict[str, Any]  # the variables the body bound (empty when it failed)
    context_chars: int  # how much of the run's prompt is the enclosing text
    context_entries: int  # how much of the run's prompt script is the enclosing prompt's
    seconds: float
    error: LmlangError | None = None
    extra_prefill: int = 0  # work of further samples taken to measure this stage (consistency)
    extra_generated: int = 0
    extra_seconds: float = 0.0
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        """What the block added to the prompt in this stage."""
        return self.run.prompt.text[self.context_chars:]

    @property
    def prefill_tokens(self) -> int:
        return self.run.prompt.prefill_tokens + self.extra_prefill

    @property
    def generated_tokens(self) -> int:
        return self.run.generated_tokens + self.extra_generated

    @property
    def total_seconds(self) -> float:
        return self.seconds + self.extra_seconds

    def score(self, name: str) -> HoleScore | None:
        return self.run.scores.get(name)

    def close(self) -> None:
        self.run.prompt.close()


def runner_named(blocks: BlockRunner, name: str, span: Span | None) -> ModelRunner:
    """The runner of the model ``name`` (loaded on first use); an unknown name is the query's error at ``span``."""
    try:
        return blocks.runner(name)
    except ModelError as err:
        raise ModelError(span, err.message) from None


def check_model_name(blocks: BlockRunner, name: Any, span: Span | None) -> str:
    """``name`` if it names a model (without loading it), else a ModelError at ``span``."""
    if not isinstance(name, str):
        raise ModelError(span, f"a model is named by a string, such as \"smollm2\", not {name!r}")
    try:
        blocks.resolve(name)
    except ModelError as err:
        raise ModelError(span, err.message) from None
    return name


def run_stage(runner: ModelRunner, outer: Run, event: BlockEvent, settings: DecoderSettings, sampler: Sampler,
              arm: int = 0) -> Stage:
    """Run arm ``arm`` of the block's body on ``runner``'s model after ``outer``'s prompt.

    A query error inside the stage (a constraint that cannot be met, the query's own Python failing) is kept in
    ``Stage.error`` for the caller to decide on: a cascade moves on to its next model.
    """
    if runner.model is outer.prompt.model:
        prompt = outer.prompt.fork()
    else:
        prompt = runner.prompt()
        outer.prompt.replay(prompt)
    body: Callable[..., Any] = event.body
    run = Run(Execution(outer.execution.program, lambda: body(arm), []), prompt)
    context = (len(prompt.text), len(prompt.script))
    started = time.perf_counter()
    try:
        values = runner.drive(run, settings, sampler)
    except LmlangError as err:
        return Stage(runner.model.name, run, {}, *context, time.perf_counter() - started, err)
    return Stage(runner.model.name, run, dict(values or {}), *context, time.perf_counter() - started)


def model_names(blocks: BlockRunner, exprs: tuple[Any, ...], scope: dict[str, Any], what: str) -> list[str]:
    """The models a block's header names (``what``: "the cascade's model"), evaluated where the block stands."""
    return [check_model_name(blocks, evaluate(expr, scope, what), expr.span) for expr in exprs]


def settle(outer: Run, stage: Stage, adopted: bool) -> None:
    """End a stage: its work counts on ``outer`` either way; an adopted stage becomes part of ``outer``, any other
    is closed."""
    if adopted:
        _adopt(outer, stage)
    _count_work(outer, stage, adopted)
    if not adopted:
        stage.close()


def _adopt(outer: Run, stage: Stage) -> None:
    """Make the accepted stage part of ``outer``: its text, variables, scores and work."""
    outer.variables.update(stage.run.variables)
    outer.scores.update(stage.run.scores)
    outer.distributions.update(stage.run.distributions)
    outer.logprob += stage.run.logprob
    # The stage's values stand after its copy of the enclosing text; the block's text follows the enclosing prompt.
    shift = len(outer.prompt.text) - stage.context_chars
    outer.holes.extend(replace(h, start=h.start + shift, end=h.end + shift) for h in stage.run.holes)
    if stage.run.prompt.model is outer.prompt.model:
        # The stage forked the enclosing prompt: its sequence already holds the block, so it replaces it.
        stage.run.prompt.prefill_tokens += outer.prompt.prefill_tokens
        outer.prompt.close()
        outer.prompt = stage.run.prompt
    else:
        stage.run.prompt.replay(outer.prompt, stage.context_entries)
        stage.close()


def _count_work(outer: Run, stage: Stage, adopted: bool) -> None:
    """Add a stage's tokens to the enclosing run's statistics (a rejected stage's work was done all the same)."""
    outer.generated_tokens += stage.generated_tokens
    if adopted and stage.run.prompt is outer.prompt:
        outer.prompt.prefill_tokens += stage.extra_prefill
    else:
        outer.prompt.prefill_tokens += stage.prefill_tokens
