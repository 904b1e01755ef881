"""Files for the map tests: the query they map, JSON-lines rows in and results out (timings left out, which
differ run to run)."""

from __future__ import annotations

import json
from pathlib import Path


def write_rows(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def without_time(lines: list[dict]) -> list[dict]:
    return [{k: v for k, v in line.items() if k != "stats"} for line in lines]


SUM = '"Q: What is {a} plus {b}?\\nA: [N]" where INT(N) and len(TOKENS(N)) < 4\n'


def write_query(folder: Path) -> Path:
    """The query file both map paths run: an integer sum per row."""
    path = folder / "sum.lmq"
    path.write_text(SUM, encoding="utf-8")
    return path
