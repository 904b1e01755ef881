"""The TextMate grammar of the VS Code extension agrees with the Lark grammar and the catalogs.

The editor colours a word as a keyword, constraint or measure only if the language has it, and every keyword,
constraint and measure the language has is coloured: both directions are checked, so they cannot drift apart.
"""

from __future__ import annotations

import json
import keyword
import pathlib
import re
import shutil
import subprocess

import pytest

from lmlang.constraints.catalog import CONSTRAINT_FUNCTIONS
from lmlang.decoding.catalog import DECODERS
from lmlang.lsp.documentation import MEASURES
from lmlang.multimodel.condition import MEASURES as RUNTIME_MEASURES

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXTENSION = ROOT / "vscode-extension"
REPOSITORY = json.loads((EXTENSION / "syntaxes" / "lmlang.tmLanguage.json").read_text())["repository"]


def _words(pattern: str) -> set[str]:
    """The words of every ``(a|b|c)`` alternation in a regex, ``(?i:...)`` groups included."""
    return {w for group in re.findall(r"\((?:\?i:)?((?:\w+\|)*\w+)\)", pattern) for w in group.split("|")}


def _rule_patterns(rule: dict) -> list[str]:
    own = [rule[k] for k in ("match", "begin") if k in rule]
    return own + [p for sub in rule.get("patterns", []) for p in _rule_patterns(sub)]


def _grammar_words(name: str) -> set[str]:
    return {w for p in _rule_patterns(REPOSITORY[name]) for w in _words(p) if not w.isdigit()}


def grammar_keywords() -> set[str]:
    """The lmlang words the TextMate grammar colours as keywords (decoders and clause keywords)."""
    found = _grammar_words("decoder-clause")
    for name in ("from-clause", "where-clause", "distribution-clause", "cascade", "route", "route-arm", "ensemble"):
        found |= {w for w in _grammar_words(name) if w.islower()}
    until = REPOSITORY["cascade"]["patterns"][0]["match"]
    return found | _words(until)


def lark_keywords() -> set[str]:
    """The words the Lark grammar adds to Python: quoted literals and the word each keyword terminal (``*_KW``,
    a regex such as ``/(?i:where)\\b/``) starts with."""
    text = re.sub(r"//.*", "", (ROOT / "grammar" / "lmlang.lark").read_text())
    terminals = re.findall(r"^\w+_KW(?:\.\d+)?:\s*/(?:\(\?i:)?([a-z]+)", text, re.MULTILINE)
    literals = set(re.findall(r'"([a-z_]+)"', text)) | set(terminals)
    return literals - set(keyword.kwlist) - set(keyword.softkwlist)


def test_decoders_match_the_catalog() -> None:
    assert _grammar_words("decoder-clause") == set(DECODERS)


def test_constraint_functions_match_the_catalog() -> None:
    coloured = _words(REPOSITORY["constraint-function"]["match"])
    # Python's own builtins in the catalog (len, set, list) keep Python's colour, as support.function.builtin.
    builtins = _words(REPOSITORY["call-name"]["patterns"][0]["match"])
    assert coloured == {n for n in CONSTRAINT_FUNCTIONS if n.isupper()}
    assert {n for n in CONSTRAINT_FUNCTIONS if not n.isupper()} <= builtins


def test_measures_match_the_runtime_and_the_language_server() -> None:
    assert _words(REPOSITORY["measure-function"]["match"]) == set(MEASURES) == set(RUNTIME_MEASURES)


def test_every_keyword_of_the_lark_grammar_is_coloured() -> None:
    assert lark_keywords() <= grammar_keywords()


def test_keywords_match_the_parser() -> None:
    from lmlang.syntax import KEYWORDS

    python = set(keyword.kwlist) | set(keyword.softkwlist)
    # Decoders are names to the parser (the checker knows them from the decoder catalog), keywords to the eye.
    coloured = grammar_keywords() - set(DECODERS)
    assert coloured <= KEYWORDS
    assert KEYWORDS - python <= coloured


@pytest.mark.skipif(
    not (EXTENSION / "node_modules" / ".bin" / "vscode-tmgrammar-test").exists() or shutil.which("node") is None,
    reason="run `npm ci` in vscode-extension/ first (vscode-extension/ci.sh does)",
)
def test_grammar_syntax_tests_pass() -> None:
    run = subprocess.run(
        ["npm", "run", "--silent", "test:grammar"], cwd=EXTENSION, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stdout + run.stderr
