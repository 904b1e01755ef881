"""Every cache has a bound: a long-running process that compiles and runs ever new queries keeps a flat size."""

from __future__ import annotations

import gc
import sys

import pytest

import lmlang
from lmlang.caches import BoundedCache, clear_process_caches, process_cache, process_cache_sizes
from lmlang.constraints import plan_hole
from lmlang.source import Source
from lmlang.syntax.ast import Expr


def test_a_bounded_cache_drops_the_least_recently_used() -> None:
    cache: BoundedCache[str, int] = BoundedCache("test", 2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # now the most recent
    cache.put("c", 3)
    assert "b" not in cache and cache.get("a") == 1 and cache.get("c") == 3 and len(cache) == 2
    assert cache.get_or_make("d", lambda: 4) == 4 and "a" not in cache
    cache.clear()
    assert len(cache) == 0
    with pytest.raises(ValueError):
        BoundedCache("none", 0)


def _where(text: str) -> list[Expr]:
    source = Source("bounded.lmq", text)
    return [Expr(source.span(0, len(text)), text)]


def test_automata_stay_within_their_bound(monkeypatch) -> None:
    automata = process_cache("automata", 1)
    monkeypatch.setattr(automata, "capacity", 6)
    for i in range(40):
        plan_hole("X", _where(f'REGEX(X, r"[a-c]{{{i + 1}}}x!?") and STOPS_AT(X, "!")'), None, {}, {})
        assert len(automata) <= 6
    assert process_cache_sizes()["automata"][0] <= 6
    clear_process_caches()
    assert all(entries == 0 for entries, _ in process_cache_sizes().values())


def test_a_stop_phrase_automaton_rebuilt_after_eviction_knows_its_phrases() -> None:
    where = _where('REGEX(X, r"[0-9]+[.]?") and STOPS_AT(X, ".")')
    first = plan_hole("X", where, None, {}, {})
    clear_process_caches()
    again = plan_hole("X", where, None, {}, {})
    assert again.automaton is not first.automaton and again.automaton.firing == first.automaton.firing != frozenset()


def _query_modules() -> int:
    return sum(1 for name in sys.modules if name.startswith("__lmlang_query_"))


def test_compiled_queries_leave_no_module_behind() -> None:
    gc.collect()
    before = _query_modules()
    for i in range(200):
        query = lmlang.compile(f'"Say {i}: [X]" where len(X) < {i + 2}')
        query.compiled(())
        del query
    gc.collect()
    assert _query_modules() <= before + 1


def test_a_sessions_caches_are_bounded_and_cleared() -> None:
    from fakemodel import FakeModel

    fake = FakeModel([" a", " b"], lambda text: {" a": 1.0, " b": 0.5, "<eos>": 0.0})
    session = lmlang.Session(models={"fake": fake}, matchers=3, embeddings=2)
    for i in range(8):
        lmlang.compile(f'"Q{i}:[X]" where REGEX(X, r"( a| b){{1,{i + 1}}}")').run(session=session)
    decoder = session.decoder(fake)
    assert len(decoder.matchers) == 3
    for text in ("one", "two", "three"):
        session.embed(decoder, text)
    assert len(session.embeddings) == 2
    session.clear()
    assert len(decoder.matchers) == 0 and len(session.embeddings) == 0
    assert all(entries == 0 for entries, _ in process_cache_sizes().values())
