"""``route <header>:`` with arms ``case <selector>:``: one arm of the block runs per input.

The header decides how the arm is picked:

* no ``by``/``examples``: rules. Arms are tried in order; a selector is a condition (``len(q) > 80``), or, when
  the header names an input (``route question:``), a regex searched in the input or a function called with it;
* ``by="model"``: a classifier. The arms' selectors are labels (``case "math":``); the model scores each label
  after the input (or after ``prompt=...``) like ``distribution`` does, and the most probable label's arm runs;
* ``examples={label: [texts]}``: nearest labeled examples. The input and the examples are embedded by the model
  ``by=`` (default: the enclosing one) and the arm of the most similar example (or the ``k=`` nearest) runs.

``case _:`` is the fallback: taken when no rule holds, or when the classifier's probability or the examples'
similarity is below ``threshold=``. A chosen arm runs on the enclosing model; nest ``cascade "model":`` in an
arm to run it on another.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from typing import Any

from lmlang.decoding.run import Run
from lmlang.decoding.runner import BlockRunner, ModelRunner
from lmlang.decoding.settings import DecoderSettings
from lmlang.errors import InputError, UsageError
from lmlang.interpret.execution import BlockEvent
from lmlang.multimodel import embedding
from lmlang.multimodel.scope import block_scope, evaluate
from lmlang.multimodel.stage import check_model_name, run_stage, runner_named, settle
from lmlang.multimodel.trace import stage_entry, trace_of, work_entry
from lmlang.syntax import ast

OPTIONS = ("by", "examples", "prompt", "threshold", "k")


class Header:
    """The route's header, evaluated: its inputs (positional) and options (by name)."""

    def __init__(self, statement: ast.Route, scope: dict[str, Any]) -> None:
        self.statement = statement
        self.inputs: list[Any] = []
        self.options: dict[str, Any] = {}
        self.spans: dict[str, Any] = {}
        for arg in statement.header:
            if arg.name is None:
                self.inputs.append(evaluate(arg.value, scope, "the route's input"))
            elif arg.name not in OPTIONS:
                raise UsageError(arg.span, f"route has no option '{arg.name}': it takes {', '.join(OPTIONS)}")
            else:
                self.options[arg.name] = evaluate(arg.value, scope, f"the route's option {arg.name}")
                self.spans[arg.name] = arg.span

    def text(self) -> str:
        if not self.inputs:
            raise UsageError(self.statement.span, "this route needs its input in the header, as in "
                                                  "route question, by=\"smollm2\":")
        return "\n".join(str(x) for x in self.inputs)


def run_route(blocks: BlockRunner, current: ModelRunner, run: Run, event: BlockEvent,
              settings: DecoderSettings) -> dict[str, Any]:
    statement = event.statement
    assert isinstance(statement, ast.Route)
    scope = block_scope(event, run)
    header = Header(statement, scope)
    if "examples" in header.options:
        arm, details = _by_examples(blocks, current, run, statement, header, scope)
    elif "by" in header.options:
        arm, details = _by_classifier(blocks, run, statement, header, scope)
    else:
        arm, details = _by_rules(statement, header, scope)
    stage = run_stage(current, run, event, settings, settings.sampler(), arm)
    trace = trace_of(run)
    if stage.error is not None:
        trace.append(stage_entry(statement, stage, "failed", arm=_arm_name(statement, arm)))
        settle(run, stage, adopted=False)
        raise stage.error
    trace.append(stage_entry(statement, stage, f"ran case {_arm_name(statement, arm)}", **details))
    trace.extend(trace_of(stage.run))
    settle(run, stage, adopted=True)
    return stage.values


def _arm_name(statement: ast.Route, arm: int) -> str:
    return statement.arms[arm][0].source.strip()


def _fallback(statement: ast.Route) -> int | None:
    return next((i for i, (sel, _) in enumerate(statement.arms) if sel.source.strip() == "_"), None)


def _labels(statement: ast.Route, scope: dict[str, Any]) -> dict[int, str]:
    """Arm index -> label, for the routes whose arms are labels."""
    labels = {}
    for i, (selector, _) in enumerate(statement.arms):
        if selector.source.strip() == "_":
            continue
        label = evaluate(selector, scope, "the route's label")
        if not isinstance(label, str):
            raise UsageError(selector.span, f"the arms of a classifier or examples route are labels (strings), "
                                            f"as in case \"math\": ; this one is {label!r}")
        labels[i] = label
    if not labels:
        raise UsageError(statement.span, "this route has no labeled arm to choose from: add arms such as "
                                         "case \"math\":")
    return labels


def _by_rules(statement: ast.Route, header: Header, scope: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    for i, (selector, _) in enumerate(statement.arms):
        if selector.source.strip() == "_":
            continue
        value = evaluate(selector, scope, "the route's rule")
        if _holds(value, header, selector):
            return i, {"kind": "rules", "rule": selector.source.strip()}
    fallback = _fallback(statement)
    if fallback is None:
        raise InputError(statement.span, f"no rule of this route holds for the input and it has no fallback "
                                         f"arm: add case _: (input: {header.inputs!r})")
    return fallback, {"kind": "rules", "rule": "_"}


def _holds(value: Any, header: Header, selector: ast.Expr) -> bool:
    if isinstance(value, str):
        if not header.inputs:
            raise UsageError(selector.span, "a text rule is a regex searched in the route's input: name the "
                                            "input in the header, as in route question:")
        try:
            return any(re.search(value, str(x)) for x in header.inputs)
        except re.error as err:
            raise UsageError(selector.span, f"this rule is not a valid regex: {err}") from None
    if callable(value):
        return bool(value(*header.inputs))
    return bool(value)


def _by_classifier(blocks: BlockRunner, run: Run, statement: ast.Route, header: Header, scope: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    labels = _labels(statement, scope)
    name = check_model_name(blocks, header.options["by"], header.spans["by"])
    classifier = runner_named(blocks, name, header.spans["by"])
    prompt = header.options.get("prompt") or _default_prompt(header.text(), list(labels.values()))
    started = time.perf_counter()
    probabilities, prefill = embedding.label_probabilities(classifier, str(prompt), list(labels.values()))
    seconds = time.perf_counter() - started
    best = max(range(len(probabilities)), key=lambda j: probabilities[j])
    arm = list(labels)[best]
    threshold = header.options.get("threshold")
    fallback = _fallback(statement)
    if threshold is not None and fallback is not None and probabilities[best] < threshold:
        arm = fallback
    scores = {label: round(p, 4) for label, p in zip(labels.values(), probabilities)}
    trace_of(run).append(work_entry(statement, name, prefill, 0, seconds, f"chose case {_arm_name(statement, arm)}",
                                    kind="classifier", scores=scores))
    return arm, {"kind": "classifier"}


def _default_prompt(text: str, labels: list[str]) -> str:
    return f"{text}\nCategory ({', '.join(labels)}):"


def _by_examples(blocks: BlockRunner, current: ModelRunner, run: Run, statement: ast.Route, header: Header,
                 scope: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    labels = _labels(statement, scope)
    examples = header.options["examples"]
    span = header.spans["examples"]
    if not isinstance(examples, dict) or not examples:
        raise UsageError(span, "examples= takes a dict from each label to a list of example inputs")
    unknown = sorted(set(examples) - set(labels.values()))
    if unknown:
        raise UsageError(span, f"examples are given for {', '.join(map(repr, unknown))}, which no arm of the route "
                               f"is (the arms: {', '.join(map(repr, labels.values()))})")
    if any(not examples.get(label) for label in labels.values()):
        empty = [label for label in labels.values() if not examples.get(label)]
        raise UsageError(span, f"no examples for the label{'s' if len(empty) > 1 else ''} {', '.join(map(repr, empty))}")
    model = current if "by" not in header.options else runner_named(
        blocks, check_model_name(blocks, header.options["by"], header.spans["by"]), header.spans["by"])
    k = header.options.get("k", 1)
    started = time.perf_counter()
    query, prefill = blocks.embed(model, header.text())
    ranked = []
    for label in labels.values():
        for example in examples[label]:
            vector, spent = blocks.embed(model, str(example))
            prefill += spent
            ranked.append((embedding.cosine(query, vector), label))
    ranked.sort(key=lambda pair: pair[0], reverse=True)
    votes = Counter(label for _, label in ranked[:k])
    best_label = max(votes, key=lambda label: (votes[label], max(s for s, l in ranked if l == label)))
    arm = next(i for i, label in labels.items() if label == best_label)
    similarity = ranked[0][0]
    threshold = header.options.get("threshold")
    fallback = _fallback(statement)
    if threshold is not None and fallback is not None and similarity < threshold:
        arm = fallback
    seconds = time.perf_counter() - started
    trace_of(run).append(work_entry(statement, model.model.name, prefill, 0, seconds,
                                    f"chose case {_arm_name(statement, arm)}", kind="examples",
                                    nearest=[[round(s, 4), l] for s, l in ranked[:max(k, 3)]]))
    return arm, {"kind": "examples"}
