"""Prices per token type: configured, parsed from $LMLANG_PRICES, and measured on this machine."""

from __future__ import annotations

import pytest

from lmlang.errors import UsageError
from lmlang.multimodel import cost
from lmlang.multimodel.cost import Price, Work


def test_a_price_is_one_number_or_prefill_and_decode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LMLANG_PRICES", "smollm2=0.135, qwen2.5-coder-1.5b=0.9/60")
    table = cost.prices()
    assert table == {"smollm2": Price(0.135, 0.135), "qwen2.5-coder-1.5b": Price(0.9, 60.0)}
    assert cost.cost("qwen2.5-coder-1.5b", 1000, 10, 99.0) == (pytest.approx(0.9 + 0.6), "price")
    assert cost.format_prices(table) == "smollm2=0.135,qwen2.5-coder-1.5b=0.9/60"
    monkeypatch.delenv("LMLANG_PRICES")
    assert cost.cost("smollm2", 1000, 10, 2.5) == (2.5, "seconds")


def test_set_prices_takes_numbers_pairs_and_prices() -> None:
    cost.set_prices({"a": 1, "b": (0.5, 4.0), "c": Price(1.0, 2.0)})
    try:
        assert cost.prices() == {"a": Price(1.0, 1.0), "b": Price(0.5, 4.0), "c": Price(1.0, 2.0)}
        with pytest.raises(UsageError, match="no price for the model d"):
            cost.cost("d", 1, 1, 1.0)
    finally:
        cost.set_prices(None)


@pytest.mark.parametrize("text", ["smollm2", "smollm2=cheap", "smollm2=1/2/3", "smollm2=-1"])
def test_bad_prices_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError):
        cost.parse_prices(text)


def test_measured_prices_split_the_seconds_by_token_type() -> None:
    runs = [Work(100, 2, 0.05, 0.25), Work(0, 2, 0.0, 0.2), Work(300, 1, 0.15, 0.25)]
    table = cost.measured_prices({"m": runs, "decode-only": [Work(0, 4, 0.0, 0.4)]})
    assert table["m"].prefill == pytest.approx(1000 * 0.2 / 400)  # 0.5 s per 1k prompt tokens
    assert table["m"].decode == pytest.approx(1000 * 0.5 / 5)  # 100 s per 1k generated tokens
    assert table["decode-only"] == Price(pytest.approx(100.0), pytest.approx(100.0))
