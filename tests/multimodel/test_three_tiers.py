"""Three-stage cascades on the real models: one threshold per stage (read per model from a calibration file),
each stage escalating only when its own threshold says so, and `lmlang calibrate` fitting them jointly.

The small models stand in for the three tiers (gemma3-270m, smollm2, then gemma3-270m again); the test marked
``qwen`` runs the real three tiers and is skipped unless ``lmlang[qwen]`` is installed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import lmlang
from lmlang.models import registry
from lmlang.multimodel import calibrate

DATA = Path(__file__).parents[2] / "benchmarks" / "data"
FEW_SHOT = '"Word: failure\\nSentiment: negative\\nWord: gift\\nSentiment: positive\\n"\n'
BLOCK = '    "Word: {word}\\nSentiment:[CLS]" where CLS in [" positive", " negative"]\n'
QWEN = "qwen2.5-coder-1.5b"


def three_tiers(file: Path, models: tuple[str, str, str]) -> lmlang.Query:
    names = ", ".join(f'"{m}"' for m in models)
    return lmlang.compile(FEW_SHOT + f'cascade {names} until margin(CLS) >= threshold("t", file={str(file)!r}):\n'
                          + BLOCK)


def thresholds(tmp_path: Path, named: dict[str, float]) -> Path:
    file = tmp_path / "calibration.json"
    file.write_text(json.dumps({"lmlang_calibration": 1, "thresholds": {"t": named}}))
    return file


@pytest.mark.parametrize(("first", "second", "decisions"), [
    (1.01, 1.01, ["escalate", "escalate", "answer (last model)"]),
    (1.01, 0.0, ["escalate", "accept"]),
    (0.0, 1.01, ["accept"]),
])
def test_each_stage_escalates_by_its_own_threshold(gemma, smollm2, tmp_path, first, second, decisions) -> None:
    file = thresholds(tmp_path, {"gemma3-270m": first, "smollm2": second})
    result = three_tiers(file, ("gemma3-270m", "smollm2", "gemma3-270m")).run("smollm2", word="sunshine")
    assert [e["decision"] for e in result.trace] == decisions
    assert [e["model"] for e in result.trace] == ["gemma3-270m", "smollm2", "gemma3-270m"][:len(decisions)]
    assert [e["thresholds"]["t"] for e in result.trace[:2]] == [first, second][:len(decisions)]
    for entry in result.trace:
        assert 0 <= entry["prefill_seconds"] <= entry["seconds"]
    assert result.variables["CLS"] in (" positive", " negative")


def test_calibrate_fits_one_threshold_per_stage(gemma, smollm2, tmp_path, capsys) -> None:
    shutil.copy(DATA / "word_sentiment.lmq", tmp_path / "query.lmq")
    source = (tmp_path / "query.lmq").read_text()
    (tmp_path / "query.lmq").write_text(source.replace('cascade "smollm2", "gemma3-270m"',
                                                       'cascade "gemma3-270m", "smollm2", "gemma3-270m"'))
    lines = (DATA / "word_sentiment.jsonl").read_text().splitlines()[:16]
    (tmp_path / "data.jsonl").write_text("\n".join(lines) + "\n")
    out = tmp_path / "word_sentiment.calibration.json"
    code = calibrate.calibrate_main([str(tmp_path / "query.lmq"), "--data", str(tmp_path / "data.jsonl"),
                                     "--out", str(out), "--cache", str(tmp_path / "cache"),
                                     "--target", "accuracy=0.8", "--prices", "gemma3-270m=0.2/8,smollm2=0.1/4"])
    written = json.loads(out.read_text())
    fitted = written["thresholds"]["word_sentiment"]
    assert set(fitted) == {"gemma3-270m", "smollm2"}
    report = capsys.readouterr().out
    assert "measured on this machine, seconds per 1,000 tokens (prefill/decode)" in report
    assert "oracle bound:" in report and "random mixing at the cascade's price" in report
    # What the query does with the fitted thresholds is what calibration computed on the dev split.
    query = lmlang.compile_file(tmp_path / "query.lmq")
    plan = calibrate.plan_for(query.program, None)
    items = calibrate.read_data(tmp_path / "data.jsonl")
    obs = calibrate.observe(query, (tmp_path / "query.lmq").read_text(), plan, items, tmp_path / "cache")
    dev, _ = calibrate.split(len(items), 0.5, 0)
    per_stage = [fitted["gemma3-270m"], fitted["smollm2"]]
    on_dev = calibrate.cascade_metrics(obs, plan.models, dev, per_stage, plan.at_least)
    assert (code == 0) == (on_dev.accuracy >= 0.8)
    assert written["fitted"]["word_sentiment"]["dev"]["accuracy"] == pytest.approx(on_dev.accuracy)


@pytest.mark.qwen
@pytest.mark.skipif(not registry.installed(registry.QWEN), reason="the optional model is not installed")
def test_smollm2_gemma_qwen(smollm2, gemma, tmp_path) -> None:
    file = thresholds(tmp_path, {"smollm2": 1.01, "gemma3-270m": 1.01, QWEN: -1e9})
    result = three_tiers(file, ("smollm2", "gemma3-270m", QWEN)).run("smollm2", word="splendid")
    assert [e["model"] for e in result.trace] == ["smollm2", "gemma3-270m", QWEN]
    assert result.trace[-1]["decision"] == "answer (last model)"
    assert result.variables["CLS"] == " positive"
