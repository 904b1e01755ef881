"""``ensemble "m1", "m2", ... vote VAR, samples=k, temperature=t:``: the block runs ``samples`` times on each model
(sampled at ``temperature`` when more than once) and the most frequent value of the hole ``VAR`` wins; a tie goes
to the answer with the best mean token log-probability. The winning run with the best score is the one whose text
and variables the query keeps. One model with ``samples=k`` is a self-consistency vote."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from lmlang.check import ensemble_option_problem
from lmlang.decoding.run import Run
from lmlang.decoding.runner import BlockRunner
from lmlang.decoding.sampler import Sampler
from lmlang.decoding.settings import DecoderSettings
from lmlang.errors import InputError, UsageError
from lmlang.interpret.execution import BlockEvent
from lmlang.multimodel.scope import block_scope, evaluate
from lmlang.multimodel.stage import Stage, model_names, run_stage, runner_named, settle
from lmlang.multimodel.trace import stage_entry, trace_of
from lmlang.syntax import ast

DEFAULT_TEMPERATURE = 0.7  # for samples > 1: several argmax runs of one model would all say the same


def run_ensemble(blocks: BlockRunner, run: Run, event: BlockEvent, settings: DecoderSettings) -> dict[str, Any]:
    statement = event.statement
    assert isinstance(statement, ast.Ensemble)
    scope = block_scope(event, run)
    models = model_names(blocks, statement.models, scope, "the ensemble's model")
    options = _options(statement, scope)
    samples = options.get("samples", 1)
    temperature = float(options.get("temperature", DEFAULT_TEMPERATURE if samples > 1 else 0.0))
    voters = _run_voters(blocks, run, event, settings, statement, models, samples, temperature)
    return _elect(run, statement, voters)


def _options(statement: ast.Ensemble, scope: dict[str, Any]) -> dict[str, Any]:
    """The options' values (the checker has vetted their names and their literal values)."""
    options = {}
    for option in statement.options:
        value = evaluate(option.value, scope, f"the ensemble's option {option.name}")
        problem = ensemble_option_problem(str(option.name), value)
        if problem is not None:
            raise UsageError(option.value.span, problem)
        options[option.name] = value
    return options


def _run_voters(blocks: BlockRunner, run: Run, event: BlockEvent, settings: DecoderSettings, statement: ast.Ensemble,
                models: list[str], samples: int, temperature: float) -> list[Stage]:
    voters = []
    base = settings.seed if settings.seed is not None else 0
    for name, expr in zip(models, statement.models):
        voter = runner_named(blocks, name, expr.span)
        for i in range(samples):
            sampler = Sampler(temperature, settings.top_k, settings.top_p, base + i)
            voters.append(run_stage(voter, run, event, settings, sampler))
    return voters


def _elect(run: Run, statement: ast.Ensemble, voters: list[Stage]) -> dict[str, Any]:
    var = statement.var
    valid = [s for s in voters if s.error is None]
    if not valid:
        _close_all(run, voters)
        raise voters[0].error  # type: ignore[misc]
    if any(var not in s.values for s in valid):
        _close_all(run, voters)
        raise InputError(statement.var_span, f"the ensemble's block did not reach its hole {var} in this run, "
                                             f"so there is nothing to vote on")
    counts: dict[Any, int] = defaultdict(int)
    best: dict[Any, tuple[float, int]] = {}
    for index, stage in enumerate(valid):
        key = _key(stage.values[var])
        counts[key] += 1
        score = _score(stage, var)
        if key not in best or score > best[key][0]:
            best[key] = (score, index)
    winner = max(counts, key=lambda key: (counts[key], best[key][0]))
    chosen = best[winner][1]
    _record(run, statement, voters, valid, chosen, f"chosen ({counts[winner]} of {len(voters)} votes)")
    return valid[chosen].values


def _record(run: Run, statement: ast.Ensemble, voters: list[Stage], valid: list[Stage], chosen: int,
            decision: str) -> None:
    """Each voter is a stage of the trace; the chosen one joins the run, the others are closed."""
    var = statement.var
    trace = trace_of(run)
    for index, stage in enumerate(valid):
        elected = index == chosen
        trace.append(stage_entry(statement, stage, decision if elected else "vote", answer=repr(stage.values[var]),
                                 measures={f"logprob({var})": round(_score(stage, var), 4)}))
        trace.extend(trace_of(stage.run))
        settle(run, stage, elected)
    for stage in voters:
        if stage.error is not None:
            trace.append(stage_entry(statement, stage, "failed, no vote"))
            settle(run, stage, adopted=False)


def _key(value: Any) -> Any:
    """Answers that differ only by surrounding spaces or case are the same vote."""
    return value.strip().casefold() if isinstance(value, str) else value


def _score(stage: Stage, var: str) -> float:
    score = stage.score(var)
    if score is None or score.mean_logprob is None:
        return 0.0
    return float(score.mean_logprob)


def _close_all(run: Run, voters: list[Stage]) -> None:
    for stage in voters:
        settle(run, stage, adopted=False)
