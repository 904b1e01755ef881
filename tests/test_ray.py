"""lmlang map --ray and Query.map(rows, ray=...): the same job on a local Ray cluster gives the same file, resumes
the same way and reports failed rows the same way; without Ray, a clear usage error."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Iterator

import pytest

import lmlang
from lmlang.cli import main
from lmlang.errors import InputError
from maprows import SUM, read_lines, without_time, write_query, write_rows

ROWS = [{"id": "r0", "a": 1, "b": 2}, {"id": "r1", "a": 3, "b": 4}, {"id": "bad", "a": 5}, {"id": "r3", "a": 6, "b": 1}]
# A class the query defines is sent back from a worker by value: its results are written as on one machine.
TYPED = """from dataclasses import dataclass

@dataclass
class Sum:
    n: int

"{a} plus {b} as JSON, as in {{\\"n\\": 5}}:[S: Sum]"
return S
"""
ROOT = Path(__file__).parent.parent


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    """One small cluster for the module: two nodes on this machine, one CPU each, so that a job has two workers
    whose rows must come back in order. The workers import lmlang from this tree, and the models from the
    installed packages."""
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    small = {"num_cpus": 1, "object_store_memory": 100 * 2**20}
    nodes = Cluster(initialize_head=True, head_node_args={**small, "include_dashboard": False})
    try:
        nodes.add_node(**small)
        path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
        ray.init(address=nodes.address, log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": path}})
        nodes.wait_for_nodes()
        yield
    finally:
        ray.shutdown()
        nodes.shutdown()


@pytest.fixture
def query_file(tmp_path: Path) -> Path:
    return write_query(tmp_path)


@pytest.mark.model
def test_a_job_on_ray_writes_the_local_file_and_resumes(cluster, smollm2, tmp_path, query_file, capsys) -> None:
    data = write_rows(tmp_path / "rows.jsonl", ROWS)
    local, remote = tmp_path / "local.jsonl", tmp_path / "ray.jsonl"
    assert main(["map", str(query_file), "--data", str(data), "--out", str(local)]) == 1
    capsys.readouterr()
    # Two rows at once on a worker share decode steps, whose numbers differ in the last digits from a lone run's
    # (llama.cpp picks its kernels by batch size): --deterministic makes every score comparable to the loop's.
    assert main(["map", str(query_file), "--data", str(data), "--out", str(remote), "--ray", "-c", "2",
                 "--deterministic"]) == 1
    err = capsys.readouterr().err
    assert "1 row failed" in err and ("row/s" in err or "s/row" in err) and "4/4" in err
    assert without_time(read_lines(remote)) == without_time(read_lines(local))
    assert "the row has no field b" in read_lines(remote)[2]["error"]
    # cut short after two rows, the last line half written: the re-run keeps those two and runs the other two
    text = remote.read_text(encoding="utf-8")
    kept = "".join(text.splitlines(keepends=True)[:2])
    remote.write_text(kept + text.splitlines()[2][:20], encoding="utf-8")
    assert main(["map", str(query_file), "--data", str(data), "--out", str(remote), "--ray"]) == 1
    assert " 2/4" in capsys.readouterr().err  # the bar starts at the rows already there
    assert remote.read_text(encoding="utf-8").startswith(kept)
    assert without_time(read_lines(remote)) == without_time(read_lines(local))


@pytest.mark.model
def test_query_map_on_ray_yields_what_it_yields_locally(cluster, smollm2) -> None:
    query = lmlang.compile(SUM)
    rows = [{k: v for k, v in row.items() if k != "id"} for row in ROWS[1:3]]
    here = list(query.map(rows, "smollm2"))
    there = list(query.map(rows, "smollm2", ray=True))
    assert there[0].variables == here[0].variables and there[0].prompt == here[0].prompt
    assert isinstance(there[1], InputError) and there[1].render() == here[1].render()


@pytest.mark.model
def test_a_class_the_query_defines_is_written_as_on_one_machine(cluster, smollm2, tmp_path) -> None:
    query = tmp_path / "typed.lmq"
    query.write_text(TYPED, encoding="utf-8")
    data, local, remote = write_rows(tmp_path / "rows.jsonl", ROWS[:1]), tmp_path / "local.jsonl", tmp_path / "ray.jsonl"
    assert main(["map", str(query), "--data", str(data), "--out", str(local)]) == 0
    assert main(["map", str(query), "--data", str(data), "--out", str(remote), "--ray"]) == 0
    assert without_time(read_lines(remote)) == without_time(read_lines(local))
    assert "Sum(n=" in read_lines(remote)[0]["return"]


def test_without_ray_the_error_says_how_to_install_it(tmp_path, query_file, monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # as if it were not installed
    data, out = write_rows(tmp_path / "rows.jsonl", ROWS), tmp_path / "results.jsonl"
    assert main(["map", str(query_file), "--data", str(data), "--out", str(out), "--ray"]) == 2
    err = capsys.readouterr().err
    assert "pip install 'lmlang[ray]'" in err and "Traceback" not in err
    assert not out.exists()
    with pytest.raises(lmlang.UsageError, match=r"lmlang\[ray\]"):
        list(lmlang.compile(SUM).map(ROWS[:1], "smollm2", ray="head:6379"))
