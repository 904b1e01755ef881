"""The arithmetic of calibration and the PNG writer, on made-up observations (no model needed)."""

from __future__ import annotations

import struct
import zlib

import pytest

from lmlang.multimodel import calibrate, plot
from lmlang.multimodel.calibrate import Observation, Plan

SMALL = [Observation("a", 0.9, True, 1.0), Observation("a", 0.2, False, 1.0), Observation("b", 0.8, True, 1.0),
         Observation("b", 0.1, False, 1.0)]
LARGE = [Observation("a", 0.5, True, 3.0), Observation("b", 0.5, True, 3.0), Observation("b", 0.5, True, 3.0),
         Observation("a", 0.5, False, 3.0)]
OBS = {"s": SMALL, "l": LARGE}
ROWS = [0, 1, 2, 3]


def test_cascade_metrics_follow_the_threshold() -> None:
    m = calibrate.cascade_metrics(OBS, ["s", "l"], ROWS, 0.5, True)
    assert (m.accuracy, m.escalation, m.cost) == (0.75, 0.5, 2.5)
    assert calibrate.cascade_metrics(OBS, ["s", "l"], ROWS, float("-inf"), True).accuracy == 0.5
    assert calibrate.cascade_metrics(OBS, ["s", "l"], ROWS, float("inf"), True).escalation == 1.0


def test_oracle_mixing_and_auroc() -> None:
    assert calibrate.oracle_metrics(OBS, ["s", "l"], ROWS).accuracy == 0.75
    small, large = calibrate.single_metrics(SMALL, ROWS), calibrate.single_metrics(LARGE, ROWS)
    mixed = calibrate.mix_at_cost(small, large, 2.0)
    assert (mixed.escalation, mixed.accuracy) == (0.5, 0.625)
    assert calibrate.auroc([o.score for o in SMALL], [o.correct for o in SMALL]) == 1.0


def test_fit_picks_the_cheapest_threshold_reaching_the_accuracy() -> None:
    plan = Plan(None, ["s", "l"], "t", None, True, "A", None)  # type: ignore[arg-type]
    (threshold,), met = calibrate.fit(OBS, plan, ROWS, ("accuracy", 0.75))
    assert met and 0.2 < threshold <= 0.8
    assert calibrate.fit(OBS, plan, ROWS, ("accuracy", 0.99)) == ((pytest.approx(0.8),), False)


def test_the_png_is_a_valid_image(tmp_path) -> None:
    path = tmp_path / "curve.png"
    plot.accuracy_cost(path, [(1.0, 0.5), (2.0, 0.7), (3.0, 0.75)], [(1.0, 0.5), (3.0, 0.8)])
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    length = struct.unpack(">I", data[33:37])[0]
    raw = zlib.decompress(data[41:41 + length])
    assert len(raw) == height * (1 + 3 * width)
