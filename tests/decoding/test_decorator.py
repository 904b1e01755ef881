"""Variable decorators `[@fn VAR]`, as LMQL defines them, on the real model."""

from __future__ import annotations

import pytest

import lmlang

SHORT = "len(TOKENS({})) < 4"


def run(source: str) -> lmlang.Result:
    result = lmlang.run(source, model="smollm2")
    assert isinstance(result, lmlang.Result)
    return result


def test_a_decorator_changes_the_value_and_what_the_prompt_shows() -> None:
    result = run(f'''
def shout(value):
    return value.upper()
"Q: Name a fruit.\\nA:[@shout X] Then:[Y]" where STOPS_BEFORE(X, "\\n") and {SHORT.format("X")} and {SHORT.format("Y")}
''')
    x = result.variables["X"]
    assert x == x.upper() and any(c.isalpha() for c in x)
    # The next hole was generated after the decorated text, which the prompt (and the cache) now hold.
    assert result.prompt == f"Q: Name a fruit.\nA:{x} Then:{result.variables['Y']}"


def test_chained_decorators_run_innermost_first_and_take_arguments() -> None:
    result = run(f'''
def tag(mark):
    def add(value):
        return value + mark
    return add
"Say hello:[@tag('a') @tag('b') @tag('c') X]" where {SHORT.format("X")}
''')
    assert result.variables["X"].endswith("cba")


def test_a_decorator_with_context_gives_the_program_a_value_and_the_prompt_a_text() -> None:
    result = run(f'''
from lmql.runtime.program_state import ProgramState
def words(value, prompt_value, context: ProgramState):
    assert context.prompt.endswith("Three words:")
    return value.split(), prompt_value
"Three words:[@words X]" where {SHORT.format("X")}
''')
    words = result.variables["X"]
    assert isinstance(words, list)
    assert result.prompt.split("Three words:", 1)[1].split() == words


def test_a_pre_decorator_fixes_a_value_and_a_streaming_one_sees_every_partial_value() -> None:
    result = run(f'''
seen = []
@lmql.decorators.pre
def known(variable, context):
    return "a cart" if variable.name == "A" else variable
@lmql.decorators.streaming
def watch(value, context):
    seen.append(value)
"-[@known A]\\n-[@known @watch B]" where {SHORT.format("B")}
return seen
''')
    assert result.variables["A"] == "a cart"
    assert result.prompt.startswith("-a cart\n-")
    seen = result.return_value
    assert seen and seen[-1] == result.variables["B"]
    assert all(later.startswith(earlier) for earlier, later in zip(seen, seen[1:]))
    assert result.scores["A"].tokens == 0


def test_a_failing_decorator_is_named_with_its_place() -> None:
    with pytest.raises(lmlang.QueryRuntimeError) as info:
        run('def broken(value):\n    return value.nope()\n"Hi:[@broken X]" where len(TOKENS(X)) < 3\n')
    assert "decorator broken raised AttributeError" in info.value.message
    assert info.value.span.text == "broken"


def test_a_distribution_hole_is_decorated_too() -> None:
    result = run('''
def loud(value):
    return value.strip().upper()
"Is the sky blue? Answer:[@loud A]" distribution A in [" yes", " no"]
''')
    assert result.variables["A"] in ("YES", "NO")
    assert result.prompt == "Is the sky blue? Answer:" + result.variables["A"]
