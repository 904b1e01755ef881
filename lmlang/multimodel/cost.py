"""What a stage costs: measured seconds by default, or a price per 1,000 tokens per model when one is set.

Prices come from ``set_prices({...})`` or ``$LMLANG_PRICES`` (``smollm2=0.135,gemma3-270m=0.268``). Tokens are
the prompt tokens the model evaluated plus the ones it generated.
"""

from __future__ import annotations

import os

from lmlang.errors import UsageError

# Proportional to the parameter count (millions), the price the benchmark uses when none is configured.
PARAMETER_PRICES = {"smollm2": 0.135, "gemma3-270m": 0.268}

_prices: dict[str, float] | None = None


def set_prices(prices: dict[str, float] | None) -> None:
    """Price per 1,000 tokens for each model; ``None`` goes back to ``$LMLANG_PRICES`` or seconds."""
    global _prices
    _prices = None if prices is None else {k: float(v) for k, v in prices.items()}


def prices() -> dict[str, float] | None:
    if _prices is not None:
        return _prices
    text = os.environ.get("LMLANG_PRICES")
    if not text:
        return None
    table = {}
    for item in text.split(","):
        name, sep, value = item.partition("=")
        try:
            table[name.strip()] = float(value)
        except ValueError:
            raise UsageError(None, f"LMLANG_PRICES takes model=price pairs, as in smollm2=0.135,gemma3-270m=0.268 "
                                   f"(got {item!r})") from None
        if not sep:
            raise UsageError(None, f"LMLANG_PRICES item {item!r} has no '='")
    return table


def priced(model: str, tokens: int, table: dict[str, float]) -> float:
    if model not in table:
        raise UsageError(None, f"no price for the model {model}: add it to the prices ({', '.join(table)})")
    return table[model] * tokens / 1000.0


def cost(model: str, prefill_tokens: int, generated_tokens: int, seconds: float) -> tuple[float, str]:
    """The cost of some work on ``model`` and its unit ("seconds" or "price")."""
    table = prices()
    if table is None:
        return seconds, "seconds"
    return priced(model, prefill_tokens + generated_tokens, table), "price"
