"""Writes arithmetic.jsonl: two-step arithmetic word problems, each with the right answer and a wrong one (in
random order, the two the query lets the model write). They are generated here: the registry's one GSM8K
package, aviary-gsm8k, ships no problems (it loads them at run time).

The wrong answer is a near miss, the right one 10, 20 or 30 away, so that telling them apart takes doing both
steps; a model that cannot is at chance. (A wrong answer equal to the first step's result, tried first, fooled
the 1.5B model as often as the small ones: without writing out the steps it answers the first one.) Seeded: the
same script gives the same file.

    python benchmarks/data/make_arithmetic.py
"""

from __future__ import annotations

import json
import random
from pathlib import Path

COUNT = 240
NAMES = ["Ana", "Ben", "Chen", "Dara", "Eli", "Fatima", "Goran", "Hana", "Ivo", "Jun", "Kofi", "Lena", "Mateo",
         "Nia", "Omar", "Priya", "Quinn", "Rosa", "Sami", "Tariq", "Uma", "Viktor", "Wen", "Yara", "Zoe"]
THINGS = ["apples", "pencils", "stamps", "marbles", "books", "cookies", "shells", "stickers", "cards", "coins"]


def problem(rng: random.Random) -> tuple[str, int]:
    """A problem and its answer."""
    name, thing = rng.choice(NAMES), rng.choice(THINGS)
    kind = rng.randrange(4)
    if kind == 0:
        start, boxes, each = rng.randint(3, 20), rng.randint(2, 9), rng.randint(2, 9)
        text = (f"{name} has {start} {thing}. {name} buys {boxes} boxes with {each} {thing} in each box. "
                f"How many {thing} does {name} have now?")
        return text, start + boxes * each
    if kind == 1:
        start, given, friends = rng.randint(30, 90), rng.randint(2, 6), rng.randint(2, 5)
        text = (f"{name} has {start} {thing} and gives {given} {thing} to each of {friends} friends. "
                f"How many {thing} does {name} have left?")
        return text, start - given * friends
    if kind == 2:
        price, count, paid = rng.randint(2, 9), rng.randint(2, 8), 100
        text = (f"One of the {thing} costs {price} dollars. {name} buys {count} of them and pays with "
                f"{paid} dollars. How much change does {name} get, in dollars?")
        return text, paid - price * count
    rows, per_row, removed = rng.randint(3, 9), rng.randint(3, 9), rng.randint(1, 9)
    text = (f"{name} puts {thing} in {rows} rows of {per_row}, then takes {removed} away. "
            f"How many {thing} are left?")
    return text, rows * per_row - removed


def main() -> None:
    rng = random.Random(0)
    lines, seen = [], set()
    while len(lines) < COUNT:
        text, right = problem(rng)
        wrong = right + rng.choice([-30, -20, -10, 10, 20, 30])
        # The query scores the first token of the answer, so the two must differ in their first digit.
        if right < 0 or wrong <= 0 or str(right)[0] == str(wrong)[0] or text in seen:
            continue
        seen.add(text)
        a, b = (right, wrong) if rng.random() < 0.5 else (wrong, right)
        lines.append(json.dumps({"problem": text, "a": str(a), "b": str(b), "label": str(right)}))
    out = Path(__file__).with_name("arithmetic.jsonl")
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {len(lines)} problems to {out}")


if __name__ == "__main__":
    main()
