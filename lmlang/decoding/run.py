"""A run of a program on a model (its Python state, prompt, variables and scores) and a hole open in it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lmlang.decoding.hole import HoleCursor
from lmlang.interpret.execution import Execution, HoleEvent
from lmlang.interpret.prompt import Prompt
from lmlang.result import HoleScore, HoleSpan


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
        execution.context.attach(lambda: self.prompt.text, lambda: self.variables)  # LMQL's `context`

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

