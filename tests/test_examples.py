"""Every example parses, checks, and runs on the real default model with values that meet its constraints."""

from __future__ import annotations

from pathlib import Path

import pytest

import lmlang
from lmlang.check import check
from lmlang.syntax import parse

EXAMPLES = sorted(p for p in (Path(__file__).parent.parent / "examples").iterdir() if p.suffix in (".lmq", ".lmql"))
INPUTS = {"inputs.lmq": {"topic": "volcanoes"}}


def test_there_are_at_least_ten_examples() -> None:
    assert len(EXAMPLES) >= 10


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_parses_and_checks(path: Path) -> None:
    program = parse(path.read_text(), str(path))
    assert check(program) == []


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_runs_on_smollm2(path: Path, smollm2) -> None:
    query = lmlang.compile_file(path)
    outcome = query.run("smollm2", **INPUTS.get(path.name, {}))
    results = outcome if isinstance(outcome, list) else [outcome]
    for result in results:
        assert result.model == "smollm2"
        assert result.stats.generated_tokens > 0 or result.distributions
        for name, value in result.variables.items():
            # Text values stand in the prompt as written; numbers, parsed JSON and typed holes' instances are
            # converted from it.
            assert f"{value}" in result.prompt or not isinstance(value, str), name
        # The notebook view (and --html) draws each value where it stands in the prompt.
        view = result._repr_html_()
        for hole in result.holes:
            assert 0 <= hole.start <= hole.end <= len(result.prompt), hole
            assert f"data-var='{hole.var}'" in view, hole.var
