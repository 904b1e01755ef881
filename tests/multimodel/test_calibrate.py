"""Calibration on the real models: the fitted threshold meets its target on the dev split; bad data is refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import lmlang
from lmlang.errors import InputError, UsageError
from lmlang.multimodel import calibrate

DATA = Path(__file__).parents[2] / "benchmarks" / "data"


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    shutil.copy(DATA / "word_sentiment.lmq", tmp_path / "query.lmq")
    lines = (DATA / "word_sentiment.jsonl").read_text().splitlines()[:24]
    (tmp_path / "data.jsonl").write_text("\n".join(lines) + "\n")
    return tmp_path


def run(workspace: Path, *extra: str) -> int:
    return calibrate.calibrate_main([str(workspace / "query.lmq"), "--data", str(workspace / "data.jsonl"),
                                     "--out", str(workspace / "word_sentiment.calibration.json"),
                                     "--cache", str(workspace / "cache"), *extra])


@pytest.mark.parametrize("target", ["accuracy=0.85", "escalation=0.25"])
def test_the_fitted_threshold_meets_its_target_on_the_dev_split(smollm2, gemma, workspace, target, capsys) -> None:
    assert run(workspace, "--target", target) == 0
    written = json.loads((workspace / "word_sentiment.calibration.json").read_text())
    threshold = written["thresholds"]["word_sentiment"]
    query = lmlang.compile_file(workspace / "query.lmq")
    plan = calibrate.plan_for(query.program, None)
    items = calibrate.read_data(workspace / "data.jsonl")
    obs = calibrate.observe(query, (workspace / "query.lmq").read_text(), plan, items, workspace / "cache")
    dev, _ = calibrate.split(len(items), 0.5, 0)
    metrics = calibrate.cascade_metrics(obs, plan.models, dev, threshold, plan.at_least)
    kind, goal = calibrate.parse_target(target)
    assert metrics.accuracy >= goal if kind == "accuracy" else metrics.escalation <= goal
    out = capsys.readouterr().out
    assert "held-out split" in out and "oracle" in out and "random mixing" in out
    assert (workspace / "word_sentiment.calibration.png").read_bytes().startswith(b"\x89PNG")
    # The query reads the threshold by name from the file written next to it.
    result = query.run("smollm2", word="splendid")
    assert result.trace[0]["thresholds"] == {"word_sentiment": pytest.approx(threshold)}


def test_labels_the_query_cannot_give_are_refused(workspace) -> None:
    (workspace / "data.jsonl").write_text("".join(json.dumps({"word": w, "label": "pos"}) + "\n" for w in "abcd"))
    with pytest.raises(InputError, match="data.jsonl:1: the label 'pos' is not an answer the query can give"):
        run(workspace, "--target", "accuracy=0.9")


def test_a_bad_target_is_a_usage_error(workspace) -> None:
    with pytest.raises(UsageError, match="--target is accuracy=A"):
        run(workspace, "--target", "speed=3")


def test_a_query_without_a_named_threshold_is_refused(workspace) -> None:
    source = (workspace / "query.lmq").read_text()
    (workspace / "query.lmq").write_text(source.replace('threshold("word_sentiment", file="word_sentiment.calibration.json")', "0.4"))
    with pytest.raises(UsageError, match="no cascade comparing a score with a named threshold"):
        run(workspace, "--target", "accuracy=0.9")
