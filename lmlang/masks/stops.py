"""Stop phrases inside a mask: the automaton of the text the model may write when the value ends at a phrase.

The decoder watches the written bytes and, at the first stop phrase, cuts the value there (after the phrase for
``STOPS_AT``, before it for ``STOPS_BEFORE``) and ends the hole. So the text the model writes is either a value
that contains no phrase (ended by end-of-sequence or the token limit), or a text whose first phrase occurrence
ends where the value, cut there, is complete; whatever follows the phrase in the same token is dropped.

:func:`until_stop` builds that automaton from the value's: a state is the value's state where the pending part
of a phrase began, plus that pending text (the longest end of the text that begins some phrase); reaching a
phrase leads to an accepting state that reads anything (the rest of the token) or to the dead state, depending
on whether the value is complete at the cut.
"""

from __future__ import annotations

import numpy as np

from lmlang.masks.automaton import DEAD, START, Automaton, cached

Stops = tuple[tuple[str, bool], ...]  # (phrase, keep): keep for STOPS_AT, drop for STOPS_BEFORE

def until_stop(value: Automaton, stops: Stops) -> Automaton:
    """The texts the model may write so that the value, cut at the first stop phrase, is in ``value``."""
    key = f"stops({value.key},{sorted(set(stops))!r})"

    found: list[frozenset[str]] = []

    def build() -> tuple[np.ndarray, np.ndarray]:
        table, accept, firing = _explore(value, stops)
        found.append(firing)
        return table, accept

    automaton = cached(key, build)
    if found:
        automaton.firing = found[0]
    return automaton


def firing_phrases(automaton: Automaton) -> frozenset[str]:
    """The phrases that end some valid value in an automaton made by :func:`until_stop`."""
    return automaton.firing


def _explore(value: Automaton, stops: Stops) -> tuple[np.ndarray, np.ndarray, frozenset[str]]:
    phrases = [(p.encode(), keep) for p, keep in dict.fromkeys(stops)]
    pending = {p[:i] for p, _ in phrases for i in range(len(p))}  # proper beginnings of phrases, b"" included
    rows_of = value.rows
    table = value.table

    def step(q: int, data: bytes) -> int:
        for byte in data:
            q = rows_of[q][byte]
            if q == DEAD:
                break
        return q

    ids: dict[tuple[bytes, int], int] = {}
    order: list[tuple[bytes, int]] = [(b"", DEAD)]
    rows = [np.zeros(256, np.int32)]
    accept = [False]
    done: list[int] = []  # the accepting state after a phrase, made when first needed
    firing: set[str] = set()

    def state_of(tail: bytes, q: int) -> int:
        if q == DEAD:
            return DEAD
        found = ids.get((tail, q))
        if found is None:
            found = ids[(tail, q)] = len(order)
            order.append((tail, q))
        return found

    def done_state() -> int:
        if not done:
            done.append(len(order))
            order.append((b"", -1))
        return done[0]

    state_of(b"", value.start)
    i = START
    while i < len(order):
        tail, q = order[i]
        if q == -1:  # after a phrase: the rest of the token is dropped
            rows.append(np.full(256, i, np.int32))
            accept.append(True)
            i += 1
            continue
        now = step(q, tail)
        accept.append(bool(value.accept[now]))
        # Bytes that neither finish nor continue a phrase leave nothing pending: the value simply reads them.
        plain = table[now]
        unique, inverse = np.unique(plain, return_inverse=True)
        targets = np.array([state_of(b"", int(t)) for t in unique.tolist()], np.int32)
        row = targets[inverse.reshape(-1)]
        for byte in _phrase_bytes(tail, phrases):
            text = tail + bytes([byte])
            ended = [(p, keep) for p, keep in phrases if text.endswith(p)]
            if ended:
                cut = min(len(text) if keep else len(text) - len(p) for p, keep in ended)
                complete = bool(value.accept[step(q, text[:cut])])
                row[byte] = done_state() if complete else DEAD
                if complete:
                    firing.update(p.decode() for p, keep in ended if (len(text) if keep else len(text) - len(p)) == cut)
                continue
            rest = next(text[j:] for j in range(len(text) + 1) if text[j:] in pending)
            row[byte] = state_of(rest, step(q, text[: len(text) - len(rest)]))
        rows.append(row)
        i += 1
    return np.stack(rows), np.array(accept), frozenset(firing)


def _phrase_bytes(tail: bytes, phrases: list[tuple[bytes, bool]]) -> set[int]:
    """The bytes that, after ``tail``, finish or continue some phrase."""
    out = set()
    for j in range(len(tail) + 1):
        end = tail[j:]
        for p, _ in phrases:
            if len(p) > len(end) and p.startswith(end):
                out.add(p[len(end)])
    return out
