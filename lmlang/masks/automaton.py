"""Deterministic byte automata: the one form every maskable constraint is compiled to.

An :class:`Automaton` is a complete table ``table[state, byte] -> state`` (numpy, int32) with a set of accepting
states. State 0 is the dead state (it loops on every byte and accepts nothing) and state 1 the start; every
automaton here is minimal, so a state other than 0 always has a way to reach acceptance: a token that leads to a
non-dead state never leads into a dead end. ``and``, ``or`` and ``not`` are products of tables, explored from the
start only (states nobody reaches are never built).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable

import numpy as np

from lmlang.caches import process_cache
from lmlang.masks.regex import NFA, regex_nfa

DEAD = 0
START = 1

# A byte that begins a character (not a UTF-8 continuation byte 10xxxxxx) counts one character.
_CHAR_START = np.array([0 if 0x80 <= b < 0xC0 else 1 for b in range(256)], dtype=np.int32)


class Automaton:
    """A minimal complete DFA over bytes. ``key`` names the language, for caches."""

    def __init__(self, table: np.ndarray, accept: np.ndarray, key: str) -> None:
        self.table = table
        self.accept = accept
        self.key = key
        self.firing: frozenset[str] = frozenset()  # the stop phrases that can end a value (see masks.stops)
        self._forced: dict[int, bytes | None] = {}
        self._forced_text: dict[int, bytes] = {}
        self._values: dict[int, list[bytes] | None] = {}  # enumerate_values, per limit

    @property
    def n_states(self) -> int:
        return len(self.accept)

    @property
    def empty(self) -> bool:
        """Whether no value at all satisfies it."""
        return self.n_states <= START

    @property
    def start(self) -> int:
        return DEAD if self.empty else START

    def step(self, state: int, data: bytes) -> int:
        table = self.rows
        for byte in data:
            state = table[state][byte]
            if state == DEAD:
                return DEAD
        return state

    def matches(self, data: bytes) -> bool:
        """Whether the whole of ``data`` is in the language."""
        return bool(self.accept[self.step(self.start, data)])

    @functools.cached_property
    def rows(self) -> list[list[int]]:
        """The table as Python lists, for stepping byte by byte without numpy's per-item cost."""
        return self.table.tolist()

    @functools.cached_property
    def out_degree(self) -> np.ndarray:
        """Per state, how many bytes may follow (0: a complete value that nothing may extend)."""
        return np.count_nonzero(self.table, axis=1)

    @functools.cached_property
    def min_chars(self) -> np.ndarray:
        """Per state, the fewest characters still needed to reach acceptance (huge for the dead state)."""
        far = np.int32(1 << 20)
        dist = np.where(self.accept, 0, far).astype(np.int32)
        dist[DEAD] = far
        while True:
            through = (dist[self.table] + _CHAR_START[None, :]).min(axis=1)
            new = np.minimum(dist, through)
            new[DEAD] = far
            if np.array_equal(new, dist):
                return dist
            dist = new

    def forced(self, state: int) -> bytes | None:
        """The only continuation from ``state``, if there is exactly one and the value must then end."""
        if state not in self._forced:
            self._forced[state] = self._only_continuation(state)
        return self._forced[state]

    def forced_text(self, state: int) -> bytes:
        """The bytes every value from ``state`` goes on with before it may end or branch (b"": none)."""
        found = self._forced_text.get(state)
        if found is None:
            out, at, seen = bytearray(), state, set()
            degree, rows, accept = self.out_degree, self.rows, self.accept
            while not accept[at] and degree[at] == 1 and at not in seen:
                seen.add(at)
                byte = next(b for b, to in enumerate(rows[at]) if to != DEAD)
                out.append(byte)
                at = rows[at][byte]
            found = self._forced_text[state] = bytes(out)
        return found

    def _only_continuation(self, state: int) -> bytes | None:
        out = self.forced_text(state)
        end = self.step(state, out)
        if not out or not self.accept[end]:  # nothing forced, or a branch (or a loop) before the value may end
            return None
        # Going on only into "anything goes" (a stop phrase was written: the value ends here anyway).
        live = np.flatnonzero(self.table[end])
        ends = len(live) == 0 or all(self._universal(int(t)) for t in set(self.table[end, live].tolist()))
        return out if ends else None

    def _universal(self, state: int) -> bool:
        return bool(self.accept[state]) and bool((self.table[state] == state).all())


def enumerate_values(a: Automaton, limit: int) -> list[bytes] | None:
    """Every text of ``a``, in byte order, when it has at most ``limit`` of them; else None (also when endless).
    Kept on the automaton: a hole asks it every time it opens."""
    if limit not in a._values:
        a._values[limit] = _values(a, limit)
    return a._values[limit]


def _values(a: Automaton, limit: int) -> list[bytes] | None:
    if a.empty:
        return []
    rows, accept = a.rows, a.accept
    order: list[int] = []  # the live states, each after every state it leads to
    marks: dict[int, int] = {}  # 1: on the path being explored (a cycle: endless), 2: done
    stack = [(a.start, 0)]
    while stack:
        state, byte = stack.pop()
        if byte == 0:
            if marks.get(state) == 2:
                continue
            marks[state] = 1
        for b in range(byte, 256):
            to = rows[state][b]
            if to == DEAD:
                continue
            if marks.get(to) == 1:
                return None
            if to not in marks:
                stack.append((state, b + 1))
                stack.append((to, 0))
                break
        else:
            marks[state] = 2
            order.append(state)
    counts: dict[int, int] = {}
    for state in order:
        counts[state] = int(accept[state]) + sum(counts[t] for t in rows[state] if t != DEAD)
        if counts[state] > limit:
            return None
    values: list[bytes] = []

    def walk(state: int, prefix: bytes) -> None:
        if accept[state]:
            values.append(prefix)
        for b, to in enumerate(rows[state]):
            if to != DEAD:
                walk(to, prefix + bytes([b]))

    walk(a.start, b"")
    return values


# ------------------------------------------------------------------------------------------ building


def from_regex(pattern: str, key: str | None = None) -> Automaton:
    """The automaton of a Python regular expression, full match (raises :class:`PatternError`)."""
    return cached(key or f"re:{pattern!r}", lambda: determinize(regex_nfa(pattern)))


def literals(values: Iterable[bytes], key: str) -> Automaton:
    """The automaton of exactly the given byte strings (a trie, then minimized)."""

    def build() -> tuple[np.ndarray, np.ndarray]:
        rows: list[dict[int, int]] = [{}, {}]
        accept = [False, False]
        for value in values:
            state = START
            for byte in value:
                nxt = rows[state].get(byte)
                if nxt is None:
                    nxt = len(rows)
                    rows.append({})
                    accept.append(False)
                    rows[state][byte] = nxt
                state = nxt
            accept[state] = True
        table = np.zeros((len(rows), 256), dtype=np.int32)
        for s, row in enumerate(rows):
            if row:
                table[s, list(row)] = list(row.values())
        return table, np.array(accept)

    return cached(key, build)


def any_text() -> Automaton:
    """Every valid UTF-8 text."""
    return from_regex("(?s:.*)")


def preceded(prefix: bytes, a: Automaton) -> Automaton:
    """The texts ``prefix`` followed by a text of ``a``: what a healed hole writes (its value after bytes taken back
    from the prompt, see :mod:`lmlang.masks.healing`)."""
    if not prefix:
        return a

    def build() -> tuple[np.ndarray, np.ndarray]:
        chain = len(prefix)  # states START .. START + chain - 1 read the prefix; a's states follow, shifted
        shift = START + chain - 1  # a's START lands right after the chain's last state
        table = np.zeros((a.n_states + shift, 256), np.int32)
        for i, byte in enumerate(prefix):
            table[START + i, byte] = START + i + 1 if i + 1 < chain else a.start + shift
        moved = a.table + shift
        moved[a.table == DEAD] = DEAD
        table[START + chain:] = moved[START:]
        accept = np.concatenate([np.zeros(START + chain, bool), a.accept[START:]])
        if a.empty:  # nothing may follow the prefix: no text at all
            return np.zeros((1, 256), np.int32), np.zeros(1, bool)
        return table, accept

    return cached(f"then({prefix!r},{a.key})", build)


def intersect(a: Automaton, b: Automaton) -> Automaton:
    return _product(a, b, "and")


def union(a: Automaton, b: Automaton) -> Automaton:
    return _product(a, b, "or")


def negate(a: Automaton) -> Automaton:
    """Every valid UTF-8 text not in ``a``."""
    return _product(any_text(), a, "andnot")


def _product(a: Automaton, b: Automaton, mode: str) -> Automaton:
    if mode == "and" and a.key == b.key:
        return a
    key = f"{mode}({a.key},{b.key})"
    return cached(key, lambda: _explore_product(a, b, mode))


def _explore_product(a: Automaton, b: Automaton, mode: str) -> tuple[np.ndarray, np.ndarray]:
    width = b.n_states
    ids = {DEAD * width + DEAD: DEAD}
    order = [DEAD]
    if mode == "and":
        def dead(pa: np.ndarray, pb: np.ndarray) -> np.ndarray:
            return (pa == DEAD) | (pb == DEAD)
    elif mode == "or":
        def dead(pa: np.ndarray, pb: np.ndarray) -> np.ndarray:
            return (pa == DEAD) & (pb == DEAD)
    else:
        def dead(pa: np.ndarray, pb: np.ndarray) -> np.ndarray:
            return pa == DEAD
    start = a.start * width + b.start
    if bool(dead(np.array([a.start]), np.array([b.start]))[0]):
        return np.zeros((1, 256), np.int32), np.zeros(1, bool)
    ids[start] = START
    order.append(start)
    rows = [np.zeros(256, np.int32)]
    i = 1
    while i < len(order):
        code = order[i]
        pa, pb = a.table[code // width], b.table[code % width]
        codes = pa.astype(np.int64) * width + pb
        codes[dead(pa, pb)] = DEAD * width + DEAD
        unique, inverse = np.unique(codes, return_inverse=True)
        targets = np.empty(len(unique), np.int32)
        for j, c in enumerate(unique.tolist()):
            t = ids.get(c)
            if t is None:
                t = ids[c] = len(order)
                order.append(c)
            targets[j] = t
        rows.append(targets[inverse.reshape(-1)])
        i += 1
    codes = np.array(order, dtype=np.int64)
    acc_a, acc_b = a.accept[codes // width], b.accept[codes % width]
    accept = {"and": acc_a & acc_b, "or": acc_a | acc_b, "andnot": acc_a & ~acc_b}[mode]
    accept[DEAD] = False
    return np.stack(rows), accept


def determinize(nfa: NFA) -> tuple[np.ndarray, np.ndarray]:
    """Subset construction over byte ranges: each deterministic state is a set of NFA states."""
    closure = _closure_of(nfa)
    start = closure(frozenset([nfa.start]))
    ids: dict[frozenset[int], int] = {frozenset(): DEAD, start: START}
    order = [frozenset(), start]
    rows = [np.zeros(256, np.int32)]
    i = 1
    while i < len(order):
        row = np.zeros(256, np.int32)
        edges = [e for s in order[i] for e in nfa.edges[s]]
        cuts = sorted({lo for lo, _, _ in edges} | {hi + 1 for _, hi, _ in edges})
        index = {c: k for k, c in enumerate(cuts)}
        buckets: list[set[int]] = [set() for _ in cuts]
        for lo, hi, t in edges:
            for k in range(index[lo], index[hi + 1]):
                buckets[k].add(t)
        for k, targets in enumerate(buckets):
            if not targets:
                continue
            lo, nxt = cuts[k], cuts[k + 1]
            target = closure(frozenset(targets))
            t = ids.get(target)
            if t is None:
                t = ids[target] = len(order)
                order.append(target)
            row[lo:nxt] = t
        rows.append(row)
        i += 1
    accept = np.array([nfa.final in s for s in order])
    return np.stack(rows), accept


def _closure_of(nfa: NFA) -> Callable[[frozenset[int]], frozenset[int]]:
    memo: dict[frozenset[int], frozenset[int]] = {}

    def closure(states: frozenset[int]) -> frozenset[int]:
        found = memo.get(states)
        if found is None:
            seen = set(states)
            stack = list(states)
            while stack:
                for t in nfa.empty[stack.pop()]:
                    if t not in seen:
                        seen.add(t)
                        stack.append(t)
            # Keep only states that read bytes or finish: equal sets then mean equal futures.
            found = memo[states] = frozenset(s for s in seen if nfa.edges[s] or s == nfa.final)
        return found

    return closure


def minimize(table: np.ndarray, accept: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Moore's partition refinement; states with no way to acceptance all join the dead state 0."""
    # Bytes every state treats alike are one column; rows are compared by a 64-bit hash, and the result is
    # verified exactly (a hash collision falls back to exact row comparison).
    columns = np.unique(table, axis=1)
    classes = accept.astype(np.int64)
    count = len(np.unique(classes))
    weights = np.random.default_rng(0x1A7A).integers(1, 1 << 62, size=columns.shape[1] + 1, dtype=np.int64) | 1
    while True:
        with np.errstate(over="ignore"):
            signature = classes * weights[-1] + classes[columns] @ weights[:-1]
        _, classes = np.unique(signature, return_inverse=True)
        classes = classes.reshape(-1)
        new_count = int(classes.max()) + 1
        if new_count == count:
            break
        count = new_count
    representative = np.zeros(count, np.int64)
    representative[classes[::-1]] = np.arange(len(classes))[::-1]
    if not np.array_equal(classes[columns], classes[columns[representative[classes]]]):
        return _minimize_exactly(table, accept)
    return _renumber(table, accept, classes)


def _minimize_exactly(table: np.ndarray, accept: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    classes = accept.astype(np.int64)
    count = len(np.unique(classes))
    while True:
        signature = np.concatenate([classes[:, None], classes[table]], axis=1)
        _, classes = np.unique(signature, axis=0, return_inverse=True)
        classes = classes.reshape(-1)
        new_count = int(classes.max()) + 1
        if new_count == count:
            return _renumber(table, accept, classes)
        count = new_count


def _renumber(table: np.ndarray, accept: np.ndarray, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # Breadth-first from the start, so numbering is canonical: equal languages give equal tables.
    dead_class, start_class = int(classes[DEAD]), int(classes[START])
    if start_class == dead_class:
        return np.zeros((1, 256), np.int32), np.zeros(1, bool)
    representative = {}
    for s, c in enumerate(classes.tolist()):
        representative.setdefault(c, s)
    new_id = {dead_class: DEAD, start_class: START}
    order = [dead_class, start_class]
    i = 1
    while i < len(order):
        for c in dict.fromkeys(classes[table[representative[order[i]]]].tolist()):
            if c not in new_id:
                new_id[c] = len(order)
                order.append(c)
        i += 1
    mapping = np.zeros(int(classes.max()) + 1, np.int32)
    for c, n in new_id.items():
        mapping[c] = n
    reps = np.array([representative[c] for c in order])
    new_table = mapping[classes[table[reps]]]
    new_accept = accept[reps].copy()
    new_table[DEAD] = DEAD
    new_accept[DEAD] = False
    return new_table.astype(np.int32), new_accept


AUTOMATA_KEPT = 512  # a large automaton's table is a few hundred kilobytes

# Automata are built once per language while they are in use: a query run again reuses them (and their masks).
_AUTOMATA = process_cache("automata", AUTOMATA_KEPT)


def cached(key: str, build: Callable[[], tuple[np.ndarray, np.ndarray]]) -> Automaton:
    """The automaton of the language ``key``, minimized from ``build()``'s table when not kept."""
    return _AUTOMATA.get_or_make(key, lambda: Automaton(*minimize(*build()), key))
