"""Runs from many threads and from asyncio: no crash, no corrupted cache, no results mixed up."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import lmlang
from lmlang import concurrency
from lmlang.errors import ModelError
from lmlang.models import llama

NEAR_TIE = 0.05  # a first-token margin below this may flip where the cache's layout differs

CAPITAL = lmlang.compile('"The capital of {country} is[CITY]" where STOPS_BEFORE(CITY, ".") and len(TOKENS(CITY)) < 6')
SUM = lmlang.compile('"Q: What is {a} plus {b}?\\nA: [N]" where INT(N) and len(TOKENS(N)) < 4')
SENTIMENT = lmlang.compile('"Review: {review}\\nSentiment:[CLS]" where CLS in [" positive", " negative"]')
JOBS = ([(CAPITAL, {"country": c}) for c in ("France", "Japan", "Peru")]
        + [(SUM, {"a": a, "b": b}) for a, b in ((2, 3), (40, 2))]
        + [(SENTIMENT, {"review": r}) for r in ("Loved it, would buy again.", "Broke after a day.",
                                                "Great value for money.")])


def _same_or_near_tie(alone: lmlang.Result, together: lmlang.Result) -> bool:
    if together.variables == alone.variables:
        return True
    return any(score.margin is not None and score.margin < NEAR_TIE for score in alone.scores.values())


@pytest.mark.model
@pytest.mark.slow
def test_eight_threads_on_one_model_get_what_each_query_gets_alone(smollm2) -> None:
    alone = [query.run("smollm2", **inputs) for query, inputs in JOBS]
    order = list(range(len(JOBS)))
    random.Random(7).shuffle(order)

    def job(i: int) -> tuple[int, lmlang.Result]:
        query, inputs = JOBS[i]
        return i, query.run("smollm2", **inputs)

    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(job, order))
    assert len(together) == len(order)
    for i, result in together:
        assert _same_or_near_tie(alone[i], result), (JOBS[i][1], alone[i].variables, result.variables)
        assert result.prompt.endswith(str(list(result.variables.values())[-1]))  # its own prompt, not another's
    # and the model still works alone afterwards: no cache left corrupted
    assert JOBS[0][0].run("smollm2", **JOBS[0][1]).variables == alone[0].variables


@pytest.mark.model
def test_score_and_runs_from_threads_at_once(smollm2) -> None:
    expected = lmlang.score("The capital of France is", [" Paris", " Rome"], model="smollm2")

    def work(i: int) -> object:
        if i % 2:
            return lmlang.score("The capital of France is", [" Paris", " Rome"], model="smollm2")
        return CAPITAL.run("smollm2", country="France").variables["CITY"]

    with ThreadPoolExecutor(6) as pool:
        outcomes = list(pool.map(work, range(8)))
    for i, outcome in enumerate(outcomes):
        assert outcome == (expected if i % 2 else " Paris")


@pytest.mark.model
def test_unload_waits_for_the_run_in_progress(smollm2, tmp_path: Path) -> None:
    path = tmp_path / "own.gguf"
    try:
        path.hardlink_to(smollm2.path)
    except OSError:
        path.write_bytes(Path(smollm2.path).read_bytes())
    query = lmlang.compile('"Q: Tell me about the sea.\\nA:[X]" where len(TOKENS(X)) < 40')
    first = query.run(str(path))
    started = threading.Event()
    outcome: list[object] = []

    def run() -> None:
        started.set()
        outcome.append(query.run(str(path)))

    thread = threading.Thread(target=run)
    thread.start()
    started.wait()
    time.sleep(0.05)
    lmlang.unload(str(path))  # waits for the run, whichever of the two got the model first
    thread.join(60)
    assert isinstance(outcome[0], lmlang.Result) and outcome[0].variables == first.variables
    assert query.run(str(path)).variables == first.variables  # loaded again
    lmlang.unload(str(path))
    assert not smollm2.closed


def test_a_wait_that_would_never_end_is_an_error() -> None:
    a, b = concurrency.ModelLock("a"), concurrency.ModelLock("b")
    holding_b, errors = threading.Event(), []
    a.acquire()

    def other() -> None:
        b.acquire()
        holding_b.set()
        try:
            a.acquire()  # waits for the main thread
            a.release()
        finally:
            b.release()

    thread = threading.Thread(target=other)
    thread.start()
    holding_b.wait()
    time.sleep(0.05)  # let it wait for a
    try:
        b.acquire()
    except ModelError as err:
        errors.append(err)
    a.release()
    thread.join(10)
    assert not thread.is_alive()
    assert errors and "wait for each other" in errors[0].message


def test_locks_are_reentrant_and_taken_per_run() -> None:
    class Fake:
        name = "fake"

    model, cleared = Fake(), []
    with concurrency.run_scope(fresh=True, multi_model=False):
        concurrency.use(model, lambda: cleared.append(1))
        with concurrency.run_scope(fresh=True, multi_model=False):  # a query's Python running another query
            concurrency.use(model, lambda: cleared.append(2))
        assert concurrency.lock_of(model).held_here()
    assert not concurrency.lock_of(model).held_here() and cleared == [1]


def test_a_multi_model_program_is_recognised() -> None:
    plain = lmlang.compile('"Q: {q}\\nA:[A]"')
    cascade = lmlang.compile('cascade "smollm2", "gemma3-270m":\n    "Q: {q}\\nA:[A]" where len(TOKENS(A)) < 3\n')
    assert not plain.multi_model and cascade.multi_model


@pytest.mark.model
@pytest.mark.slow
def test_cascades_in_opposite_orders_and_single_runs_do_not_deadlock(smollm2, gemma) -> None:
    forward = lmlang.compile('cascade "smollm2", "gemma3-270m" until margin(A) > 2:\n'
                             '    "Q: {q}\\nA:[A]" where len(TOKENS(A)) < 3\n')
    backward = lmlang.compile('cascade "gemma3-270m", "smollm2" until margin(A) > 2:\n'
                              '    "Q: {q}\\nA:[A]" where len(TOKENS(A)) < 3\n')
    single = lmlang.compile('"Q: {q}\\nA:[A]" where len(TOKENS(A)) < 3')
    expected = {name: q.run("smollm2", q="Is water wet?").variables for name, q in
                (("f", forward), ("b", backward), ("s", single))}
    jobs = ["f", "b", "s", "b", "f"]

    def job(name: str) -> dict:
        query = {"f": forward, "b": backward, "s": single}[name]
        return query.run("smollm2", q="Is water wet?").variables

    with ThreadPoolExecutor(len(jobs)) as pool:
        futures = [pool.submit(job, name) for name in jobs]
        results = [f.result(timeout=300) for f in futures]
    assert results == [expected[name] for name in jobs]
    assert llama.load("smollm2") is smollm2


@pytest.mark.model
def test_asyncio_runs_go_to_threads_and_the_loop_goes_on(smollm2) -> None:
    alone = [query.run("smollm2", **inputs).variables for query, inputs in JOBS[:4]]

    async def main() -> tuple[list[dict], int]:
        ticks = 0
        done = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await asyncio.sleep(0.01)

        beat = asyncio.create_task(ticker())
        results = await asyncio.gather(*(query.arun("smollm2", **inputs) for query, inputs in JOBS[:4]))
        done.set()
        await beat
        return [r.variables for r in results], ticks

    results, ticks = asyncio.run(main())
    assert results == alone
    assert ticks > 5  # the event loop was not blocked while the models ran


@pytest.mark.model
def test_query_functions_are_awaitable(smollm2) -> None:
    @lmlang.query(model="smollm2")
    async def capital(country):
        '''lmql
        "The capital of {country} is[CITY]" where STOPS_BEFORE(CITY, ".") and len(TOKENS(CITY)) < 6
        return CITY.strip()
        '''

    @lmlang.query(model="smollm2")
    def plain(country):
        '''lmql
        "The capital of {country} is[CITY]" where STOPS_BEFORE(CITY, ".") and len(TOKENS(CITY)) < 6
        return CITY.strip()
        '''

    @lmlang.query(model="smollm2")
    async def sentence(country):
        '''lmql
        city = await capital(country)
        "{city} is in {country}.[END]" where len(TOKENS(END)) < 2
        return city
        '''

    async def main() -> list:
        return [await capital("France"), (await capital.arun("France")).return_value, await plain.acall("France"),
                await lmlang.arun('"The capital of France is[CITY]" where STOPS_BEFORE(CITY, ".") '
                                  'and len(TOKENS(CITY)) < 6', model="smollm2"),
                await sentence("France")]

    assert plain("France") == "Paris"  # a plain call still runs at once
    values = asyncio.run(main())
    assert values[:3] == ["Paris", "Paris", "Paris"]
    assert values[3].variables["CITY"] == " Paris"
    assert values[4] == "Paris"  # a query awaiting a query function on its own model: no deadlock


@pytest.mark.model
def test_runs_on_several_threads_share_decode_steps(smollm2) -> None:
    alone = [query.run("smollm2", **inputs) for query, inputs in JOBS]
    before = smollm2.shared_steps
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda job: job[0].run("smollm2", **job[1]), JOBS))
    assert smollm2.shared_steps > before  # the runs did decode together
    for i, result in enumerate(together):
        assert _same_or_near_tie(alone[i], result), (JOBS[i][1], alone[i].variables, result.variables)


@pytest.mark.model
def test_a_deterministic_run_among_shared_ones_gets_exactly_what_it_gets_alone(smollm2) -> None:
    query, inputs = JOBS[0]
    alone = query.run("smollm2", **inputs)

    def job(i: int) -> lmlang.Result:
        if i % 3 == 0:
            return query.run("smollm2", deterministic=True, **inputs)
        other, other_inputs = JOBS[i % len(JOBS)]
        return other.run("smollm2", **other_inputs)

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(job, range(9)))
    for result in results[::3]:
        assert result.variables == alone.variables
        assert [s.logprob for s in result.scores.values()] == [s.logprob for s in alone.scores.values()]
