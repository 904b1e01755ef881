"""What a query run returns: one type for the CLI, ``--json``, the Python API and the editor."""

from __future__ import annotations

import codecs
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence


@dataclass(frozen=True)
class Stats:
    prefill_tokens: int  # prompt tokens evaluated by the model (tokens reused from the cache are not counted)
    generated_tokens: int  # tokens the decoder chose
    seconds: float
    prefill_seconds: float = 0.0  # of ``seconds``, those spent evaluating prompt text


@dataclass(frozen=True)
class TokenPiece:
    """One step of a hole's generation: the text it added to the value and how sure the model was of it."""

    text: str  # "" for the end of text that closed the value
    logprob: float  # the model's log-probability of the token (0.0 for forced text: there was no choice)
    forced: bool = False  # written because the constraints left one way to go on, not chosen by the model
    wanted: str | None = None  # the model's likeliest token at this step when the constraints forbade it
    end: bool = False  # the end-of-text token

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"text": self.text, "logprob": round(self.logprob, 5)}
        data.update({k: v for k, v in (("forced", self.forced), ("wanted", self.wanted), ("end", self.end)) if v})
        return data


@dataclass(frozen=True)
class HoleScore:
    """How sure the model was of one hole's value."""

    logprob: float  # sum of the log-probabilities of the tokens chosen for the value (for a distribution: the
    # chosen candidate's log-probability)
    mean_logprob: float | None  # the same per token
    margin: float | None  # at the first step where the constraints allow more than one token, the probability of
    # the best minus that of the second among them (1.0 when no step had a choice; for a distribution: between
    # the two likeliest candidates)
    tokens: int
    pieces: tuple[TokenPiece, ...] = ()  # each step of the generation, in order (none for a distribution)


@dataclass(frozen=True)
class HoleSpan:
    """Where one value of a hole stands in the prompt: ``prompt[start:end]`` (a hole in a loop has one each time)."""

    var: str
    start: int
    end: int
    score: HoleScore | None = None  # None for the return value of a nested query
    cut: str | None = None  # what the model wrote past the value's end and a stop phrase cut off

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"var": self.var, "start": self.start, "end": self.end}
        if self.cut is not None:
            data["cut"] = self.cut
        if self.score is not None:
            data["pieces"] = [p.to_json() for p in self.score.pieces]
        return data


def token_pieces(steps: Sequence[tuple[bytes | None, float, bool, bytes | None]], kept: int) -> tuple[TokenPiece, ...]:
    """The pieces of a generation from the decoder's steps ``(bytes or None for the end of text, logprob, forced,
    the forbidden likeliest token's bytes or None)``, clipped to the ``kept`` bytes of the value. A character
    split across tokens belongs to the token that completes it."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    pieces, used = [], 0
    for data, logprob, forced, wanted in steps:
        shown = "" if data is None else decoder.decode(data[: max(0, kept - used)])
        used += 0 if data is None else len(data)
        pieces.append(TokenPiece(shown, logprob, forced, None if wanted is None else
                                 wanted.decode("utf-8", "replace"), data is None))
    return tuple(pieces)


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
    holes: list[HoleSpan] = field(default_factory=list)  # where each value stands in the prompt, in order

    def to_json(self) -> dict[str, Any]:
        """The result as plain JSON data (values that JSON cannot hold become their ``repr``)."""
        data: dict[str, Any] = {
            "prompt": self.prompt,
            "variables": {k: _jsonable(v) for k, v in self.variables.items()},
            "return": _jsonable(self.return_value),
            "model": self.model,
            "stats": asdict(self.stats),
            "scores": {k: {f: v for f, v in asdict(s).items() if f != "pieces"} for k, s in self.scores.items()},
            "holes": [h.to_json() for h in self.holes],
            "logprob": self.logprob,
        }
        if self.distributions:
            data["distributions"] = {k: [[_jsonable(c), p] for c, p in v] for k, v in self.distributions.items()}
        if self.trace:
            data["trace"] = [{k: _jsonable(v) for k, v in entry.items()} for entry in self.trace]
        return data

    def _repr_html_(self) -> str | None:
        """The result drawn for notebooks (Jupyter, VS Code) by :mod:`lmlang.view`; None (plain repr) without it."""
        return _html_views[-1](self) if _html_views else None


# The renderer behind Result._repr_html_: lmlang.view, a face above this module, installs it when lmlang is
# imported, so that this module need not import upwards.
_html_views: list[Callable[[Result], str]] = []


def register_html_view(render: Callable[[Result], str]) -> None:
    """Make ``render`` draw results in notebooks."""
    _html_views.append(render)


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return repr(value)
