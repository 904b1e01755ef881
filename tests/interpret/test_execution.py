"""The interpreter without a model: events in order, Python semantics, replay-based forking."""

from __future__ import annotations

from lmlang.interpret.execution import CompiledProgram, Finished, HoleEvent, TextEvent
from lmlang.syntax import parse


def events(source: str, values: list, **inputs):
    """Drive a program, answering holes with ``values`` in order; returns (texts, holes, return value)."""
    execution = CompiledProgram(parse(source), tuple(sorted(inputs))).start(inputs)
    texts, holes = [], []
    answers = iter(values)
    while True:
        event = execution.next_event()
        if isinstance(event, Finished):
            return texts, holes, event.value
        value = None
        if isinstance(event, TextEvent):
            texts.append(event.text)
        elif isinstance(event, HoleEvent):
            holes.append(event.site.hole.name)
            value = next(answers)
        execution.resume(value)


def test_text_and_holes_in_order_with_interpolation() -> None:
    texts, holes, value = events('"A {x} [B] then {B}!"\nreturn B + x', ["b"], x="1")
    assert "".join(texts) == "A 1  then b!"
    assert holes == ["B"] and value == "b1"


def test_loops_conditions_and_functions_are_python() -> None:
    source = '''
def double(v):
    return v * 2
total = 0
for i in range(3):
    "[N]"
    total += double(int(N))
if total > 10:
    return "big"
else:
    return total
'''
    assert events(source, ["1", "2", "3"])[2] == "big"
    assert events(source, ["0", "1", "1"])[2] == 4


def test_fork_replays_to_the_same_point() -> None:
    program = CompiledProgram(parse('"[A]"\n"[B]"\nreturn A + B'), ())
    first = program.start({})
    while not isinstance(first.next_event(), HoleEvent):
        first.resume(None)
    first.resume("x")
    while not isinstance(first.next_event(), HoleEvent):
        first.resume(None)
    branch = first.fork()
    assert branch.next_event().site.hole.name == "B"
    for run, value in ((first, "1"), (branch, "2")):
        run.resume(value)
        while not isinstance(run.next_event(), Finished):
            run.resume(None)
    assert first.next_event().value == "x1" and branch.next_event().value == "x2"


def test_missing_names_are_known_before_running() -> None:
    program = CompiledProgram(parse('"Q: {question} [A]"\nimport math\ny = math.pi'), ())
    assert program.missing_inputs({}, set()) == ["question"]


def test_fork_at_a_text_event_stands_at_the_same_event() -> None:
    program = CompiledProgram(parse('"a[A]b{A}c"'), ())
    run = program.start({})
    while not isinstance(run.next_event(), HoleEvent):
        run.resume(None)
    run.resume("x")
    assert run.next_event() == TextEvent("b")
    branch = run.fork()
    assert branch.next_event() == TextEvent("b") and branch.position == run.position


def test_a_query_may_await_like_the_async_function_an_lmql_query_is() -> None:
    source = '''
import asyncio
async def lookup(term):
    await asyncio.sleep(0)
    return term.upper()
"Term:[T]"
found = await lookup(T)
"Found: {await lookup(found + '!')}"
return found
'''
    texts, holes, value = events(source, ["cat"])
    assert value == "CAT" and "".join(texts) == "Term:Found: CAT!"
