"""``cascade "m1", "m2", ... until <condition>:``: the block runs on each model in turn until the condition
accepts its answer; the last model always answers. Without ``until``, the first run that completes answers (a
run fails when a constraint cannot be met or the query's own code raises)."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from lmlang.decoding.run import Run
from lmlang.decoding.runner import BlockRunner, ModelRunner
from lmlang.decoding.sampler import Sampler
from lmlang.decoding.settings import DecoderSettings
from lmlang.errors import UsageError
from lmlang.interpret.execution import BlockEvent
from lmlang.multimodel.condition import Verdict, judge, measure
from lmlang.multimodel.scope import block_scope
from lmlang.multimodel.stage import Stage, model_names, run_stage, runner_named, settle
from lmlang.multimodel.trace import stage_entry, trace_of
from lmlang.syntax import ast

CONSISTENCY_TEMPERATURE = 1.0  # for consistency(V, k) under argmax: samples from the model's own distribution


@dataclass
class Probe:
    """Calibration's view of a cascade: run only ``model``'s stage, and record ``score`` measured on it."""

    model: str
    score: ast.Expr
    records: list[dict[str, Any]] = field(default_factory=list)


def run_cascade(blocks: BlockRunner, run: Run, event: BlockEvent, settings: DecoderSettings) -> dict[str, Any]:
    statement = event.statement
    assert isinstance(statement, ast.Cascade)
    scope = block_scope(event, run)
    models = model_names(blocks, statement.models, scope, "the cascade's model")
    probe = blocks.probe
    if probe is not None:
        return _probed(blocks, probe, models, run, event, settings, scope)
    trace = trace_of(run)
    for i, (name, expr) in enumerate(zip(models, statement.models)):
        last = i == len(models) - 1
        stage_runner = runner_named(blocks, name, expr.span)
        stage = run_stage(stage_runner, run, event, settings, settings.sampler())
        verdict = _decide(statement, scope, stage, last,
                          functools.partial(_resample, stage_runner, run, event, settings, stage))
        accepted = last or verdict.accepted
        if stage.error is not None and last:
            trace.append(stage_entry(statement, stage, "failed"))
            settle(run, stage, adopted=False)
            raise stage.error
        decision = _decision(stage, verdict, last)
        trace.append(stage_entry(statement, stage, decision, position=i + 1, condition=_source(statement),
                                 measures=verdict.measures, thresholds=verdict.thresholds))
        trace.extend(trace_of(stage.run))
        settle(run, stage, accepted)
        if accepted:
            return stage.values
    raise AssertionError("the last model of a cascade always answers")


def _decide(statement: ast.Cascade, scope: dict[str, Any], stage: Stage, last: bool, resample: Any) -> Verdict:
    """The condition on the stage. The last model answers whatever it says, but its confidence is still measured
    for the trace, unless that means sampling again (consistency)."""
    if stage.error is not None:
        return Verdict(False)
    if statement.condition is None:
        return Verdict(True)
    if last and "consistency" in statement.condition.source:
        return Verdict(True)
    return judge(statement.condition, scope, stage, resample)


def _decision(stage: Stage, verdict: Verdict, last: bool) -> str:
    if stage.error is not None:
        return "failed, escalate"
    if last:
        return "answer (last model)"
    return "accept" if verdict.accepted else "escalate"


def _source(statement: ast.Cascade) -> str | None:
    return statement.condition.source.strip() if statement.condition is not None else None


def _resample(runner: ModelRunner, run: Run, event: BlockEvent, settings: DecoderSettings, stage: Stage,
              k: int) -> list[dict[str, Any]]:
    """``k`` sampled runs of the block on the stage's model, for ``consistency``; their work counts to the stage."""
    temperature = settings.temperature if settings.name != "argmax" else CONSISTENCY_TEMPERATURE
    base = settings.seed if settings.seed is not None else 0
    values = []
    for i in range(k):
        sampler = Sampler(temperature, settings.top_k, settings.top_p, base + 1000 + i)
        sample = run_stage(runner, run, event, settings, sampler)
        stage.extra_prefill += sample.prefill_tokens
        stage.extra_generated += sample.generated_tokens
        stage.extra_seconds += sample.seconds
        sample.close()
        values.append(sample.values)
    stage.notes["samples"] = k
    return values


def _probed(blocks: BlockRunner, probe: Probe, models: list[str], run: Run, event: BlockEvent,
            settings: DecoderSettings, scope: dict[str, Any]) -> dict[str, Any]:
    statement = event.statement
    if probe.model not in models:
        raise UsageError(statement.span, f"the cascade has no model {probe.model} (it has {', '.join(models)})")
    stage_runner = runner_named(blocks, probe.model, statement.span)
    stage = run_stage(stage_runner, run, event, settings, settings.sampler())
    if stage.error is not None:
        stage.close()
        raise stage.error
    verdict = Verdict(False)
    score = measure(probe.score, scope, stage, lambda k: _resample(stage_runner, run, event, settings, stage, k),
                    verdict)
    probe.records.append({"score": float(score), "prefill_tokens": stage.prefill_tokens,
                          "generated_tokens": stage.generated_tokens, "seconds": stage.total_seconds,
                          "prefill_seconds": stage.run.prompt.prefill_seconds})
    settle(run, stage, adopted=True)
    return stage.values
