"""Examples drawn: ``lmlang run FILE --html`` writes a page with each value in its labelled box (and the trace,
the candidates), the notebook view draws the same, and Chromium renders each page. (tests/test_examples.py checks
the notebook view of every example as it runs them; here a few, one of each kind, go through the CLI and the
browser.)"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import pytest

import lmlang
from lmlang.cli import main

from browser_support import EXAMPLES, keep_screenshot

# Typed and stopped values, a multi-model trace, ranked candidates, a distribution, a nested query, an input.
SHOWN = ("typed_holes.lmq", "cascade.lmq", "beam.lmq", "distribution.lmq", "nested.lmq", "inputs.lmq")
PATHS = [EXAMPLES / name for name in SHOWN]
INPUTS = {"inputs.lmq": ["--input", "topic=volcanoes"]}
_pages: dict[str, tuple[Path, Any]] = {}  # each example is run once for both of its tests


def drawn(path: Path, folder: Path) -> tuple[Path, Any]:
    """The page ``lmlang run --html`` writes for the example, and the results ``--json`` printed beside it."""
    if path.name not in _pages:
        out = folder / (path.stem + ".html")
        stdout = io.StringIO()
        with contextlib.redirect_stdout(stdout):
            code = main(["run", str(path), "--model", "smollm2", "--json", "--html", str(out), *INPUTS.get(path.name, [])])
        assert code == 0, path.name
        _pages[path.name] = (out, json.loads(stdout.getvalue()))
    return _pages[path.name]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pages")


@pytest.mark.model
@pytest.mark.slow
@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.name)
def test_run_html_draws_every_value_of_the_example(path: Path, folder: Path, smollm2: Any) -> None:
    out, data = drawn(path, folder)
    page = out.read_text(encoding="utf-8")
    results = data if isinstance(data, list) else [data]
    assert page.startswith("<!doctype html>") and "class='lmlang-view'" in page
    for result in results:
        assert result["holes"] or result.get("distributions"), "the result says where its values are"
        for hole in result["holes"]:
            assert f"data-var='{hole['var']}'" in page
            assert result["prompt"][hole["start"]:hole["end"]] is not None
        if result.get("trace"):
            assert "class='lm-trace'" in page
    if len(results) > 1:
        assert f"{len(results)} candidates, best first" in page


@pytest.mark.model
def test_the_notebook_view_draws_the_result(smollm2: Any) -> None:
    result = lmlang.compile_file(EXAMPLES / "hello.lmq").run("smollm2")
    view = result._repr_html_()
    hole = result.holes[0]
    assert result.prompt[hole.start:hole.end] == result.variables["ANSWER"]
    assert "data-var='ANSWER'" in view and view.count("class='lm-tok'") == sum(not p.end for p in result.scores["ANSWER"].pieces)
    assert "lm-end" in view or "lm-cut" in view


@pytest.mark.model
@pytest.mark.slow
@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.name)
def test_chromium_renders_the_page_of_the_example(path: Path, folder: Path, page: Any, smollm2: Any,
                                                 tmp_path: Path) -> None:
    out, _ = drawn(path, folder)
    page.goto(out.as_uri())
    view = page.locator(".lmlang-view").first
    assert view.is_visible()
    page.evaluate("document.querySelectorAll('details').forEach(d => { d.open = true; })")  # every candidate
    holes = page.locator(".lm-prompt .lm-hole")
    for i in range(holes.count()):
        assert holes.nth(i).is_visible()
        assert holes.nth(i).locator(".lm-label").is_visible()
    shot = tmp_path / f"{path.stem}.png"
    view.screenshot(path=str(shot))
    assert shot.stat().st_size > 2000
    if path.name == "typed_holes.lmq":
        keep_screenshot(shot, f"view-{path.stem}.png")
