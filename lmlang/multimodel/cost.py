"""What a stage costs: measured seconds by default, or a price per 1,000 tokens per model when one is set.

Prices come from ``set_prices({...})`` or ``$LMLANG_PRICES``. A model's price is one number for every token
(``smollm2=0.135``) or two, prompt tokens evaluated (prefill) then tokens generated (decode):
``qwen2.5-coder-1.5b=0.9/60``. On a CPU the two differ by far more than 2x per token, because a prompt is
evaluated in batches and generated tokens one at a time, so a cascade whose stages read long prompts and write
short answers is priced wrongly by one number per model.

Prices that match this machine are measured, not guessed: ``measured_prices`` turns runs' token counts and seconds
(prefill seconds are timed apart from the rest) into seconds per 1,000 tokens of each kind, in the same format.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from lmlang.errors import UsageError


@dataclass(frozen=True)
class Price:
    """Cost per 1,000 tokens on one model: prompt tokens evaluated, and tokens generated."""

    prefill: float
    decode: float

    def of(self, prefill_tokens: int, generated_tokens: int) -> float:
        return (self.prefill * prefill_tokens + self.decode * generated_tokens) / 1000.0

    def __str__(self) -> str:
        if self.prefill == self.decode:
            return f"{self.prefill:.4g}"
        return f"{self.prefill:.4g}/{self.decode:.4g}"


# Proportional to the parameter count (millions per 1,000), the same for both token types: a rough guess that
# the prices measured on a machine replace (see benchmarks/cascade.py).
PARAMETER_PRICES = {"smollm2": 0.135, "gemma3-270m": 0.268, "qwen2.5-coder-1.5b": 1.777}

PriceSpec = float | int | tuple[float, float] | Price

_prices: dict[str, Price] | None = None


def as_price(spec: PriceSpec, model: str = "") -> Price:
    """A price from a number (both token types), a (prefill, decode) pair, or a Price."""
    if isinstance(spec, Price):
        return spec
    if isinstance(spec, tuple) and len(spec) == 2:
        return Price(float(spec[0]), float(spec[1]))
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        return Price(float(spec), float(spec))
    raise UsageError(None, f"the price of {model or 'a model'} is a number or a (prefill, decode) pair, not {spec!r}")


def set_prices(prices: Mapping[str, PriceSpec] | None) -> None:
    """Price per 1,000 tokens for each model; ``None`` goes back to ``$LMLANG_PRICES`` or seconds."""
    global _prices
    _prices = None if prices is None else {k: as_price(v, k) for k, v in prices.items()}


def prices() -> dict[str, Price] | None:
    """The configured prices, or ``None`` when costs are measured seconds."""
    if _prices is not None:
        return _prices
    text = os.environ.get("LMLANG_PRICES")
    if not text:
        return None
    return parse_prices(text, "LMLANG_PRICES")


def parse_prices(text: str, where: str = "prices") -> dict[str, Price]:
    """``model=price`` or ``model=prefill/decode`` pairs separated by commas."""
    table = {}
    for item in text.split(","):
        name, sep, value = item.partition("=")
        if not sep:
            raise UsageError(None, f"{where} item {item!r} has no '='")
        parts = value.split("/")
        try:
            numbers = [float(part) for part in parts]
        except ValueError:
            numbers = []
        if len(numbers) not in (1, 2) or any(n < 0 for n in numbers):
            raise UsageError(None, f"{where} takes model=price or model=prefill/decode pairs per 1,000 tokens, as "
                                   f"in smollm2=0.135,qwen2.5-coder-1.5b=0.9/60 (got {item!r})")
        table[name.strip()] = Price(numbers[0], numbers[-1])
    return table


def format_prices(table: Mapping[str, Price]) -> str:
    """The table in the format ``$LMLANG_PRICES`` reads."""
    return ",".join(f"{model}={price}" for model, price in table.items())


def priced(model: str, prefill_tokens: int, generated_tokens: int, table: Mapping[str, Price]) -> float:
    if model not in table:
        raise UsageError(None, f"no price for the model {model}: add it to the prices ({', '.join(table)})")
    return table[model].of(prefill_tokens, generated_tokens)


def cost(model: str, prefill_tokens: int, generated_tokens: int, seconds: float) -> tuple[float, str]:
    """The cost of some work on ``model`` and its unit ("seconds" or "price")."""
    table = prices()
    if table is None:
        return seconds, "seconds"
    return priced(model, prefill_tokens, generated_tokens, table), "price"


@dataclass(frozen=True)
class Work:
    """What one run of a stage did: tokens of each kind and the seconds spent on each."""

    prefill_tokens: int
    generated_tokens: int
    prefill_seconds: float
    seconds: float  # all of it; what is not prefill is decoding (and the interpreter around it)

    @property
    def decode_seconds(self) -> float:
        return max(self.seconds - self.prefill_seconds, 0.0)


def measured_prices(work: Mapping[str, Iterable[Work]]) -> dict[str, Price]:
    """Seconds per 1,000 tokens of each kind on each model, from the runs in ``work``.

    Totals over the runs, not a mean of per-run ratios, so runs that evaluated no prompt (a warm cache) count
    for what they did. A model that never evaluated a prompt token gets its decode price for both.
    """
    table = {}
    for model, runs in work.items():
        runs = list(runs)
        prefill_tokens = sum(w.prefill_tokens for w in runs)
        generated = sum(w.generated_tokens for w in runs)
        decode = 1000.0 * sum(w.decode_seconds for w in runs) / generated if generated else 0.0
        prefill = 1000.0 * sum(w.prefill_seconds for w in runs) / prefill_tokens if prefill_tokens else decode
        table[model] = Price(prefill, decode if generated else prefill)
    return table
