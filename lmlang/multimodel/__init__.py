"""Multi-model statements: ``cascade`` (try models in order until a condition accepts the answer), ``route``
(pick one arm per input by rules, a classifier or nearest labeled examples) and ``ensemble`` (majority vote over
several models or samples). Each stage run is recorded in the run's trace."""

from __future__ import annotations

from typing import Any

from lmlang.syntax import ast


def run_block(decoder: Any, run: Any, event: Any, settings: Any, on_text: Any) -> dict[str, Any]:
    """Run a multi-model block (``event.body``) for ``run``; the variables of the accepted run of its body.

    The accepted run's text joins ``run``'s prompt (and goes to ``on_text``), its variables and scores join
    ``run``'s, and every stage is appended to ``run.trace``.
    """
    from lmlang.multimodel.cascade import run_cascade
    from lmlang.multimodel.ensemble import run_ensemble
    from lmlang.multimodel.route import run_route

    before = len(run.prompt.text)
    if isinstance(event.statement, ast.Cascade):
        values = run_cascade(decoder, run, event, settings)
    elif isinstance(event.statement, ast.Ensemble):
        values = run_ensemble(decoder, run, event, settings)
    else:
        values = run_route(decoder, run, event, settings)
    if on_text is not None:
        on_text(run.prompt.text[before:], False)
    return values
