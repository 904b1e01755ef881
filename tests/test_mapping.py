"""lmlang map and Query.map: a query over rows, in order, resumable, failing rows reported and skipped over."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import lmlang
from lmlang.cli import main
from lmlang.errors import InputError
from maprows import SUM, read_lines, without_time, write_query, write_rows

ROWS = [{"id": f"r{i}", "a": i, "b": 2 * i} for i in range(6)]
ROOT = Path(__file__).parent.parent


@pytest.fixture
def query_file(tmp_path: Path) -> Path:
    return write_query(tmp_path)


@pytest.mark.model
def test_map_writes_a_line_per_row_in_order_and_reports_failed_rows(smollm2, tmp_path, query_file, capsys) -> None:
    rows = ROWS[:3] + [{"id": "bad", "a": 1}] + ROWS[3:5]
    data, out = write_rows(tmp_path / "rows.jsonl", rows), tmp_path / "results.jsonl"
    assert main(["map", str(query_file), "--data", str(data), "--out", str(out), "--concurrency", "3"]) == 1
    lines = read_lines(out)
    assert [line["index"] for line in lines] == list(range(len(rows)))
    assert [line["id"] for line in lines] == [r["id"] for r in rows]
    assert "the row has no field b" in lines[3]["error"] and "variables" not in lines[3]
    query = lmlang.compile(SUM)
    for row, line in zip(rows, lines):
        if "b" in row:
            alone = query.run("smollm2", a=row["a"], b=row["b"])
            assert line["variables"] == alone.variables and line["prompt"] == alone.prompt
    err = capsys.readouterr().err
    assert "1 row failed" in err and ("row/s" in err or "s/row" in err)
    # run again: everything is there, nothing runs, and the failure is still reported
    assert main(["map", str(query_file), "--data", str(data), "--out", str(out)]) == 1
    assert read_lines(out) == lines


@pytest.mark.model
def test_a_job_cut_short_resumes_to_the_same_file(smollm2, tmp_path, query_file) -> None:
    data = write_rows(tmp_path / "rows.jsonl", ROWS)
    whole, cut = tmp_path / "whole.jsonl", tmp_path / "cut.jsonl"
    assert main(["map", str(query_file), "--data", str(data), "--out", str(whole)]) == 0
    text = whole.read_text(encoding="utf-8")
    kept = text.splitlines(keepends=True)[:2]
    cut.write_text("".join(kept) + text.splitlines()[2][:25], encoding="utf-8")  # a line half written
    # Two rows at a time, each alone on the model: exactly the numbers of the one-at-a-time job.
    assert main(["map", str(query_file), "--data", str(data), "--out", str(cut), "-c", "2", "--deterministic"]) == 0
    assert without_time(read_lines(cut)) == without_time(read_lines(whole))


@pytest.mark.model
def test_rows_at_once_share_decodes_and_give_the_same_values(smollm2, tmp_path, query_file) -> None:
    data = write_rows(tmp_path / "rows.jsonl", ROWS)
    one, four = tmp_path / "one.jsonl", tmp_path / "four.jsonl"
    assert main(["map", str(query_file), "--data", str(data), "--out", str(one)]) == 0
    before = smollm2.shared_steps
    assert main(["map", str(query_file), "--data", str(data), "--out", str(four), "-c", "4"]) == 0
    assert smollm2.shared_steps > before
    alone, together = read_lines(one), read_lines(four)
    assert [line["index"] for line in together] == [line["index"] for line in alone]
    for a, b in zip(alone, together):  # sharing a batch moves the numbers a little, not the greedy choices here
        assert a["variables"] == b["variables"] and a["prompt"] == b["prompt"]
        assert abs(a["logprob"] - b["logprob"]) < 0.05


@pytest.mark.model
@pytest.mark.slow
def test_a_killed_job_resumes_to_the_same_file(smollm2, tmp_path, query_file) -> None:
    data = write_rows(tmp_path / "rows.jsonl", ROWS)
    whole, killed = tmp_path / "whole.jsonl", tmp_path / "killed.jsonl"
    assert main(["map", str(query_file), "--data", str(data), "--out", str(whole)]) == 0
    command = [sys.executable, "-m", "lmlang", "map", str(query_file), "--data", str(data), "--out", str(killed)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    job = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and job.poll() is None:
        if killed.exists() and killed.read_text(encoding="utf-8").count("\n") >= 2:
            break
        time.sleep(0.05)
    job.send_signal(signal.SIGKILL)
    job.wait(30)
    assert len(read_lines(killed)) < len(ROWS) or job.returncode == 0
    assert main(["map", str(query_file), "--data", str(data), "--out", str(killed)]) == 0
    assert without_time(read_lines(killed)) == without_time(read_lines(whole))


@pytest.mark.model
def test_csv_in_and_out(smollm2, tmp_path, query_file) -> None:
    data, out = tmp_path / "rows.csv", tmp_path / "results.csv"
    with open(data, "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, ["id", "a", "b"])
        writer.writeheader()
        writer.writerows(ROWS[:3])
    assert main(["map", str(query_file), "--data", str(data), "--out", str(out)]) == 0
    with open(out, newline="", encoding="utf-8") as file:
        records = list(csv.DictReader(file))
    assert [r["index"] for r in records] == ["0", "1", "2"] and [r["id"] for r in records] == ["r0", "r1", "r2"]
    alone = lmlang.compile(SUM).run("smollm2", a="1", b="2")
    value = alone.variables["N"]
    assert records[1]["N"] == (value if isinstance(value, str) else json.dumps(value))
    assert records[1]["prompt"] == alone.prompt and records[1]["return"] == ""
    assert main(["map", str(query_file), "--data", str(data), "--out", str(out)]) == 0  # resumed: nothing to do
    with open(out, newline="", encoding="utf-8") as file:
        assert len(list(csv.DictReader(file))) == 3


def test_bad_data_is_a_usage_error_naming_the_line(tmp_path, query_file, capsys) -> None:
    out = tmp_path / "results.jsonl"
    assert main(["map", str(query_file), "--data", str(tmp_path / "nope.jsonl"), "--out", str(out)]) == 2
    assert "no such file" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"a": 1, "b": 2}\n{"a": 1,\n', encoding="utf-8")
    assert main(["map", str(query_file), "--data", str(bad), "--out", str(out)]) == 2
    assert f"{bad}:2: not a JSON object" in capsys.readouterr().err
    bad.write_text('[1, 2]\n', encoding="utf-8")
    assert main(["map", str(query_file), "--data", str(bad), "--out", str(out)]) == 2
    assert f"{bad}:1: a row is a JSON object" in capsys.readouterr().err
    assert not out.exists()
    assert main(["map", str(query_file), "--data", str(bad), "--out", str(out), "-c", "0"]) == 2


def test_an_output_of_other_data_is_not_resumed(tmp_path, query_file, capsys) -> None:
    data = write_rows(tmp_path / "rows.jsonl", ROWS[:2])
    out = write_rows(tmp_path / "results.jsonl", [{"index": 5, "id": "x", "error": "e"}])
    assert main(["map", str(query_file), "--data", str(data), "--out", str(out)]) == 2
    assert "written for other data" in capsys.readouterr().err


@pytest.mark.model
def test_query_map_yields_results_in_order(smollm2) -> None:
    query = lmlang.compile(SUM)
    rows = [{"a": 1, "b": 2}, {"a": 5}, {"a": 3, "b": 4, "label": "ignored"}]
    outcomes = list(query.map(rows, "smollm2", concurrency=2))
    assert outcomes[0].variables == query.run("smollm2", a=1, b=2).variables
    assert outcomes[2].variables == query.run("smollm2", a=3, b=4).variables
    assert isinstance(outcomes[1], InputError)
    with pytest.raises(InputError):
        list(query.map(rows, "smollm2", errors="raise"))
