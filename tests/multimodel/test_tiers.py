"""Cascades of three and more stages on made-up observations: per-stage thresholds, the joint fit, random
mixing and the oracle bound (no model needed)."""

from __future__ import annotations

import pytest

from lmlang.errors import UsageError
from lmlang.multimodel import tiers
from lmlang.multimodel.tiers import Observed

INF = float("inf")

# Three stages over six inputs: the cheap model is sure and right on 0-1, the middle one on 2-3, only the last
# knows 4-5. Scores are margins (accepted when >= the stage's threshold).
OBSERVED = Observed(
    scores=[[0.9, 0.8, 0.3, 0.2, 0.1, 0.4], [0.5, 0.5, 0.9, 0.7, 0.2, 0.3], [0.5] * 6],
    correct=[[True, True, False, False, False, False], [True, True, True, True, False, False], [True] * 6],
    costs=[[1.0] * 6, [2.0] * 6, [10.0] * 6],
)
ROWS = list(range(6))


def test_each_stage_reads_its_own_threshold() -> None:
    o = tiers.outcome(OBSERVED, ROWS, (0.8, 0.7), True)
    assert o.accuracy == 1.0 and o.answered == (2 / 6, 2 / 6, 2 / 6)
    assert o.cost == pytest.approx((6 * 1 + 4 * 2 + 2 * 10) / 6)
    assert o.escalation == pytest.approx(4 / 6)
    # Accept everything at the first stage: the cheap model alone.
    assert tiers.outcome(OBSERVED, ROWS, (-INF, 0.0), True).accuracy == pytest.approx(2 / 6)


def test_the_joint_fit_finds_the_cheapest_thresholds_reaching_the_target() -> None:
    found, met = tiers.choose(tiers.search(OBSERVED, ROWS, True), ("accuracy", 1.0))
    assert met
    o = tiers.outcome(OBSERVED, ROWS, found, True)
    assert o.accuracy == 1.0 and o.cost == pytest.approx(34 / 6)  # no cheaper way to be always right
    assert 0.4 < found[0] <= 0.8 and 0.3 < found[1] <= 0.7
    # A budget no cascade meets gives the cheapest one, not met.
    found, met = tiers.choose(tiers.search(OBSERVED, ROWS, True), ("budget", 0.5))
    assert not met and tiers.outcome(OBSERVED, ROWS, found, True).cost == 1.0


def test_the_grid_is_thinned_to_quantiles() -> None:
    many = Observed([[i / 100 for i in range(100)]] * 2 + [[0.0] * 100], [[True] * 100] * 3, [[1.0] * 100] * 3)
    grid = tiers.candidates(many, list(range(100)), size=10)
    assert [len(g) for g in grid] == [12, 12] and grid[0][1] == 0.0 and grid[0][-2] == 0.99


def test_the_frontier_keeps_only_options_nothing_beats() -> None:
    points = tiers.frontier(tiers.search(OBSERVED, ROWS, True))
    costs = [o.cost for _, o in points]
    accuracies = [o.accuracy for _, o in points]
    assert costs == sorted(costs) and accuracies == sorted(set(accuracies))
    assert accuracies[-1] == 1.0


def test_random_mixing_follows_the_upper_hull_of_the_single_models() -> None:
    singles = [(1.0, 0.5), (2.0, 0.55), (3.0, 0.9), (4.0, 0.8)]
    # (2.0, 0.55) lies under the segment from (1, 0.5) to (3, 0.9); (4, 0.8) is costlier and worse.
    assert tiers.mixing_accuracy(singles, 2.0) == pytest.approx(0.7)
    assert tiers.mixing_accuracy(singles, 0.5) == 0.5
    assert tiers.mixing_accuracy(singles, 5.0) == 0.9


def test_the_oracle_escalates_exactly_the_wrong_answers() -> None:
    o = tiers.oracle(OBSERVED, ROWS)
    assert o.accuracy == 1.0 and o.answered == (2 / 6, 2 / 6, 2 / 6)
    assert o.cost == pytest.approx(34 / 6)


def test_thresholds_are_kept_per_model() -> None:
    named = tiers.per_model(["smollm2", "gemma3-270m", "qwen2.5-coder-1.5b"], (0.5, INF), True)
    assert named == {"smollm2": 0.5, "gemma3-270m": 1e9, "qwen2.5-coder-1.5b": -1e9}
    # The last model may repeat an earlier one: it always answers, so the earlier stage's threshold stands.
    assert tiers.per_model(["smollm2", "gemma3-270m", "smollm2"], (0.5, 0.7), False) == {"smollm2": 0.5,
                                                                                       "gemma3-270m": 0.7}
    with pytest.raises(UsageError, match="names smollm2 at two stages before the last"):
        tiers.per_model(["smollm2", "smollm2", "gemma3-270m"], (0.5, 0.7), True)
