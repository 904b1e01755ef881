"""Thresholds by name: the calibration file that ``lmlang calibrate`` writes and ``threshold("name")`` reads.

The file is JSON: ``{"lmlang_calibration": 1, "thresholds": {"name": 0.4, "other": {"smollm2": 0.3}}, ...}``. A
threshold is a number, or one number per model (the stage's model picks). Queries name the file with
``threshold("name", file="path.json")``; without ``file``, ``$LMLANG_CALIBRATION`` or ``lmlang.calibration.json``.
A relative path is looked up next to the query file first, then in the working directory.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from lmlang.errors import InputError
from lmlang.source import Span

DEFAULT_FILE = "lmlang.calibration.json"
FORMAT = 1

_cache: dict[tuple[Path, float], dict[str, Any]] = {}


def calibration_path(file: str | None, span: Span | None) -> Path:
    """Where the calibration file named ``file`` (or the default one) is, for a query read from ``span``."""
    name = file or os.environ.get("LMLANG_CALIBRATION") or DEFAULT_FILE
    path = Path(name).expanduser()
    if not path.is_absolute() and span is not None:
        beside = Path(span.source.name).parent / path
        if beside.is_file():
            return beside
    return path


def read_calibration(path: Path, span: Span | None) -> dict[str, Any]:
    """The parsed calibration file, checked for its shape; cached until the file changes."""
    try:
        key = (path.resolve(), path.stat().st_mtime)
    except OSError:
        raise InputError(span, f"no calibration file {path}: write it with 'lmlang calibrate QUERY --data "
                               f"labeled.jsonl --target accuracy=0.9 --out {path}'") from None
    if key not in _cache:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise InputError(span, f"the calibration file {path} is not valid JSON: {err}") from None
        if not isinstance(data, dict) or not isinstance(data.get("thresholds"), dict):
            raise InputError(span, f"{path} is not a calibration file: it has no \"thresholds\" object")
        _cache[key] = data
    return _cache[key]


def lookup(name: Any, model: str, file: str | None, span: Span | None) -> float:
    """The threshold called ``name`` for a stage on ``model``."""
    if not isinstance(name, str):
        raise InputError(span, f"threshold() takes the threshold's name as a string, not {name!r}")
    path = calibration_path(file, span)
    thresholds = read_calibration(path, span)["thresholds"]
    if name not in thresholds:
        known = ", ".join(sorted(thresholds)) or "none"
        raise InputError(span, f"no threshold named '{name}' in {path} (it has: {known})")
    value = thresholds[name]
    if isinstance(value, dict):
        if model not in value:
            raise InputError(span, f"the threshold '{name}' in {path} has no value for the model {model} "
                                   f"(it has: {', '.join(sorted(value))})")
        value = value[model]
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise InputError(span, f"the threshold '{name}' in {path} is {value!r}, not a number")
    return float(value)


def write_calibration(path: Path, thresholds: dict[str, Any], details: dict[str, Any]) -> None:
    """Write (or update: other thresholds in the file are kept) a calibration file."""
    data: dict[str, Any] = {"lmlang_calibration": FORMAT, "thresholds": {}}
    if path.is_file():
        data = read_calibration(path, None)
    data["thresholds"] = {**data.get("thresholds", {}), **thresholds}
    data.update(details)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
