"""Multi-model statements: ``cascade`` (try models in order until a condition accepts the answer), ``route``
(pick one arm per input by rules, a classifier or nearest labeled examples) and ``ensemble`` (majority vote over
several models or samples). Each stage run is recorded in the run's trace."""

from __future__ import annotations

from typing import Any

from lmlang.decoding.run import Run
from lmlang.decoding.runner import BlockRunner, ModelRunner
from lmlang.decoding.settings import DecoderSettings, TextSink
from lmlang.interpret.execution import BlockEvent
from lmlang.multimodel.cascade import run_cascade
from lmlang.multimodel.ensemble import run_ensemble
from lmlang.multimodel.route import run_route
from lmlang.syntax import ast


def run_block(blocks: BlockRunner, current: ModelRunner, run: Run, event: BlockEvent, settings: DecoderSettings,
              on_text: TextSink | None) -> dict[str, Any]:
    """Run a multi-model block (``event.body``) for ``run``, which runs on ``current``; the variables of the
    accepted run of its body. ``blocks`` gives the other models the block names.

    The accepted run's text joins ``run``'s prompt (and goes to ``on_text``), its variables and scores join
    ``run``'s, and every stage is appended to ``run.trace``.
    """
    before = len(run.prompt.text)
    if isinstance(event.statement, ast.Cascade):
        values = run_cascade(blocks, run, event, settings)
    elif isinstance(event.statement, ast.Ensemble):
        values = run_ensemble(blocks, run, event, settings)
    else:
        values = run_route(blocks, current, run, event, settings)
    if on_text is not None:
        on_text(run.prompt.text[before:], False)
    return values
