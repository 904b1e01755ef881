"""Ensembles, written ``route vote="VAR", models=[...], samples=k:`` over a single ``case _:`` arm: the block
runs ``samples`` times on each model (sampled at ``temperature`` when more than once) and the most frequent
value of ``VAR`` wins; a tie goes to the answer with the best mean token log-probability. The winning run with
the best score is the one whose text and variables the query keeps."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from lmlang.decoding.decoder import Decoder, DecoderSettings, Run
from lmlang.decoding.sampler import Sampler
from lmlang.errors import UsageError
from lmlang.interpret.execution import BlockEvent
from lmlang.multimodel.stage import (
    Stage,
    adopt,
    check_model_name,
    count_work,
    decoder_named,
    run_stage,
)
from lmlang.multimodel.trace import stage_entry, trace_of
from lmlang.syntax import ast

DEFAULT_TEMPERATURE = 0.7


def run_ensemble(decoder: Decoder, run: Run, event: BlockEvent, settings: DecoderSettings, options: dict[str, Any],
                 spans: dict[str, Any]) -> dict[str, Any]:
    statement = event.statement
    assert isinstance(statement, ast.Route)
    var = options["vote"]
    if not isinstance(var, str) or not var.isidentifier():
        raise UsageError(spans["vote"], f"vote= names the variable voted on, as a string: vote=\"ANSWER\" (got {var!r})")
    if len(statement.arms) != 1:
        raise UsageError(statement.span, "an ensemble (route vote=...) has one arm, case _:, holding the block to run")
    models = options.get("models", [decoder.model.name])
    if isinstance(models, str) or not models:
        raise UsageError(spans.get("models", statement.span), "models= takes a list of model names, such as "
                                                             "models=[\"smollm2\", \"gemma3-270m\"]")
    names = [check_model_name(m, spans.get("models")) for m in models]
    samples = options.get("samples", 1)
    if not isinstance(samples, int) or samples < 1:
        raise UsageError(spans.get("samples", statement.span), f"samples= takes a whole number >= 1, not {samples!r}")
    temperature = float(options.get("temperature", DEFAULT_TEMPERATURE if samples > 1 else 0.0))
    voters = _run_voters(run, event, settings, names, samples, temperature, spans.get("models"))
    return _elect(run, statement, var, voters)


def _run_voters(run: Run, event: BlockEvent, settings: DecoderSettings, names: list[str], samples: int,
                temperature: float, span: Any) -> list[tuple[Decoder, Stage]]:
    voters = []
    base = settings.seed if settings.seed is not None else 0
    for name in names:
        voter_decoder = decoder_named(name, span)
        for i in range(samples):
            sampler = Sampler(temperature, settings.top_k, settings.top_p, base + i)
            voters.append((voter_decoder, run_stage(voter_decoder, run, event, settings, sampler)))
    return voters


def _elect(run: Run, statement: ast.Route, var: str, voters: list[tuple[Decoder, Stage]]) -> dict[str, Any]:
    valid = [(d, s) for d, s in voters if s.error is None]
    if not valid:
        _close_all(run, voters)
        raise voters[0][1].error  # type: ignore[misc]
    if any(var not in s.values for _, s in valid):
        _close_all(run, voters)
        raise UsageError(statement.span, f"vote=\"{var}\" names no variable the block binds")
    counts: dict[Any, int] = defaultdict(int)
    best: dict[Any, tuple[float, int]] = {}
    for index, (_, stage) in enumerate(valid):
        key = _key(stage.values[var])
        counts[key] += 1
        score = _score(stage, var)
        if key not in best or score > best[key][0]:
            best[key] = (score, index)
    winner = max(counts, key=lambda key: (counts[key], best[key][0]))
    chosen = best[winner][1]
    trace = trace_of(run)
    for index, (voter_decoder, stage) in enumerate(valid):
        elected = index == chosen
        decision = f"chosen ({counts[winner]} of {len(voters)} votes)" if elected else "vote"
        trace.append(stage_entry(statement, stage, decision, kind="ensemble", answer=repr(stage.values[var]),
                                 measures={f"logprob({var})": round(_score(stage, var), 4)}))
        if elected:
            adopt(run, stage)
        count_work(run, stage, adopted=elected)
        if not elected:
            stage.close()
    for _, stage in voters:
        if stage.error is not None:
            trace.append(stage_entry(statement, stage, "failed, no vote", kind="ensemble"))
            count_work(run, stage, adopted=False)
            stage.close()
    return valid[chosen][1].values


def _key(value: Any) -> Any:
    """Answers that differ only by surrounding spaces or case are the same vote."""
    return value.strip().casefold() if isinstance(value, str) else value


def _score(stage: Stage, var: str) -> float:
    score = stage.score(var)
    if score is None or score.mean_logprob is None:
        return 0.0
    return float(score.mean_logprob)


def _close_all(run: Run, voters: list[tuple[Decoder, Stage]]) -> None:
    for _, stage in voters:
        count_work(run, stage, adopted=False)
        stage.close()
