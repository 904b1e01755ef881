"""What a query run returns: one type for the CLI, ``--json``, the Python API and the editor."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Stats:
    prefill_tokens: int  # prompt tokens evaluated by the model (tokens reused from the cache are not counted)
    generated_tokens: int  # tokens the decoder chose
    seconds: float


@dataclass(frozen=True)
class HoleScore:
    """How sure the model was of one hole's value."""

    logprob: float  # sum of the log-probabilities of the tokens chosen for the value (for a distribution: the
    # chosen candidate's log-probability)
    mean_logprob: float | None  # the same per token
    margin: float | None  # probability of the best first token minus that of the second, among the tokens the
    # constraints allow (1.0 when they left no choice; for a distribution: between the two likeliest candidates)
    tokens: int


@dataclass(frozen=True)
class Result:
    prompt: str
    variables: dict[str, Any]
    return_value: Any
    model: str
    stats: Stats
    scores: dict[str, HoleScore] = field(default_factory=dict)
    distributions: dict[str, list[tuple[Any, float]]] = field(default_factory=dict)
    logprob: float = 0.0  # of all the tokens the decoder chose in the run: what beam search ranks results by
    trace: list[dict[str, Any]] = field(default_factory=list)  # each stage of the multi-model blocks run
    returned: bool = False  # the query ran `return VALUE` (`return None` too): return_value is its value

    def to_json(self) -> dict[str, Any]:
        """The result as plain JSON data (values that JSON cannot hold become their ``repr``)."""
        data: dict[str, Any] = {
            "prompt": self.prompt,
            "variables": {k: _jsonable(v) for k, v in self.variables.items()},
            "return": _jsonable(self.return_value),
            "model": self.model,
            "stats": asdict(self.stats),
            "scores": {k: asdict(v) for k, v in self.scores.items()},
            "logprob": self.logprob,
        }
        if self.distributions:
            data["distributions"] = {k: [[_jsonable(c), p] for c, p in v] for k, v in self.distributions.items()}
        if self.trace:
            data["trace"] = [{k: _jsonable(v) for k, v in entry.items()} for entry in self.trace]
        return data


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return repr(value)
