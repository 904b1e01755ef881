"""The Python API: compile, run, the decorator, results, inputs, decoders, cache reuse."""

from __future__ import annotations

from pathlib import Path

import pytest

import lmlang
from lmlang.errors import InputError, LmlangSyntaxError, UsageError
from lmlang.models import llama


def test_run_returns_result_with_every_field(smollm2) -> None:
    result = lmlang.run('"The sky is[COLOUR]" where STOPS_AT(COLOUR, ".") and len(TOKENS(COLOUR)) < 10', model="smollm2")
    assert isinstance(result, lmlang.Result)
    assert result.prompt == "The sky is" + result.variables["COLOUR"]
    assert result.model == "smollm2"
    assert result.stats.generated_tokens > 0 and result.stats.prefill_tokens > 0
    score = result.scores["COLOUR"]
    assert score.logprob <= 0 and score.margin is not None and 0 <= score.margin <= 1
    assert result.to_json()["variables"] == result.variables


def test_compile_once_run_many(smollm2) -> None:
    query = lmlang.compile('"Say {word} twice: {word} [X]" where len(TOKENS(X)) < 4\nreturn word')
    assert query.run(word="yes").return_value == "yes"
    assert query.run(word="no").return_value == "no"


def test_missing_input_raises(smollm2) -> None:
    with pytest.raises(InputError, match="question"):
        lmlang.run('"Q: {question} [A]"')


def test_syntax_error_is_lmlang_error() -> None:
    with pytest.raises(LmlangSyntaxError):
        lmlang.compile('"unterminated')


def test_decorator_runs_docstring_query_with_parameters(smollm2) -> None:
    @lmlang.query(model="smollm2")
    def capital(country):
        '''lmql
        "The capital of {country} is[CITY]" where STOPS_BEFORE(CITY, [".", ",", "\\n"]) and len(TOKENS(CITY)) < 8
        return CITY.strip()
        '''

    assert capital("France") == "Paris"
    full = capital.run("Italy")
    assert full.return_value == full.variables["CITY"].strip()


def test_sample_n_returns_list_and_seed_reproduces(smollm2) -> None:
    source = 'sample(n=2, temperature=1.0)\n"My favourite fruit is[F]" where len(TOKENS(F)) < 6'
    first = lmlang.compile(source).run(decoder_args={"seed": 3})
    again = lmlang.compile(source).run(decoder_args={"seed": 3})
    assert isinstance(first, list) and len(first) == 2
    assert [r.variables for r in first] == [r.variables for r in again]


def test_ten_holes_prefill_each_prompt_token_once(smollm2) -> None:
    body = "\n".join(f'"Line {i}:[V{i}]" where len(TOKENS(V{i})) < 3' for i in range(10))
    before = smollm2.evaluated_tokens
    result = lmlang.run(body + "\n", model="smollm2")
    evaluated = smollm2.evaluated_tokens - before
    prompt_text_tokens = sum(len(smollm2.tokenize(f"Line {i}:")) for i in range(10))
    assert result.stats.prefill_tokens <= prompt_text_tokens + 1  # + BOS or one re-evaluated token of a reused prefix
    # Nothing is evaluated twice: every evaluation is a prompt token or a generated one.
    assert evaluated <= result.stats.prefill_tokens + result.stats.generated_tokens
    assert len(result.variables) == 10


def test_typed_int_hole_is_an_int(smollm2) -> None:
    result = lmlang.run('"Q: How many days are in a week?\\nA: [N: int]"', model="smollm2")
    assert isinstance(result.variables["N"], int)


def test_nested_query_fills_hole_with_its_return_value(smollm2) -> None:
    source = '''
@lmql.query
def inner(x):
    """lmql
    "Repeat {x}:[R]" where len(TOKENS(R)) < 3
    return "fixed-" + x
    """
"Outer: [V: inner('abc')] done"
'''
    result = lmlang.run(source, model="smollm2")
    assert result.variables["V"] == "fixed-abc"
    # As in LMQL: the nested query's instructions and holes leave the prompt, its return value takes their place.
    assert result.prompt == "Outer: fixed-abc done"
    assert result.stats.generated_tokens > 0  # R was generated, then removed


def test_text_after_a_nested_query_continues_from_its_return_value(smollm2) -> None:
    source = '''
@lmql.query
def shout(x):
    """lmql
    "Say {x} loudly:[R]" where len(TOKENS(R)) < 4
    return x.upper()
    """
"Word: [V: shout('cat')]. Again:[W]" where len(TOKENS(W)) < 4
'''
    result = lmlang.run(source, model="smollm2")
    assert result.variables["V"] == "CAT"
    assert result.prompt == "Word: CAT. Again:" + result.variables["W"]


def test_an_error_in_a_docstring_query_names_the_line_of_the_python_file() -> None:
    with pytest.raises(LmlangSyntaxError) as info:
        @lmlang.query
        def broken(country):
            '''lmql
            "The capital of {country} is[CITY]"
            "and its river is [RIVER" where STOPS_AT(RIVER, ".")
            '''

    lines = Path(__file__).read_text().splitlines()
    expected = next(i for i, line in enumerate(lines, 1) if '"and its river is [RIVER"' in line and "where" in line)
    assert info.value.span.source.name == __file__
    assert info.value.span.line == expected


def test_unload_frees_a_model_and_the_next_query_loads_it_again(smollm2, tmp_path: Path) -> None:
    # A model of its own (same file, another path), so that the session's shared SmolLM2 stays loaded.
    path = tmp_path / "own.gguf"
    try:
        path.hardlink_to(smollm2.path)
    except OSError:
        path.write_bytes(Path(smollm2.path).read_bytes())
    query = lmlang.compile('"The sky is[COLOUR]" where len(TOKENS(COLOUR)) < 3')
    first = query.run(model=str(path)).variables["COLOUR"]
    loaded = llama.load(str(path))
    seq = loaded.new_sequence()
    seq.append(loaded.tokenize("Hello"))
    lmlang.unload(str(path))
    assert loaded.closed and all(d.model is not loaded for d in lmlang.default_session().decoders())
    with pytest.raises(UsageError, match="was unloaded"):
        seq.append([1])
    with pytest.raises(UsageError, match="was unloaded"):
        loaded.tokenize("x")
    seq.release()  # nothing left to give back, and no error
    lmlang.unload(str(path))  # not loaded: nothing to do
    assert query.run(model=str(path)).variables["COLOUR"] == first
    assert llama.load(str(path)) is not loaded
    lmlang.unload(str(path))
    assert not smollm2.closed


def test_a_run_does_not_depend_on_what_ran_before_it(smollm2) -> None:
    # llama.cpp's logits move with the KV cache's layout (other sequences' cells, a re-used prompt's last token
    # evaluated alone), enough to turn a near tie; so each run starts from an empty cache by default.
    story = lmlang.compile('"Q: Explain why the sky is blue.\\nA:[X]" where len(TOKENS(X)) < 24')
    other = lmlang.compile('"Q: Write a haiku about the sea.\\nA:[X]" where len(TOKENS(X)) < 24')
    session = lmlang.Session()
    first = story.run("smollm2", session=session)
    other.run("smollm2", session=session)
    again = story.run("smollm2", session=session)
    assert again.variables == first.variables and again.scores["X"].logprob == first.scores["X"].logprob
    # Evaluated once: the second run restored the saved state of its prompt (bit for bit the same numbers).
    assert first.stats.prefill_tokens > 0 and again.stats.prefill_tokens == 0
    reused = story.run("smollm2", reuse_prompts=True, session=session)
    assert reused.stats.prefill_tokens < first.stats.prefill_tokens  # started from the cached prompt


def test_a_docstring_query_reads_escapes_as_written_like_lmql(smollm2) -> None:
    # `"\n"` in the docstring is the query's own escape: in __doc__ it would be a line break inside a string.
    @lmlang.query(model="smollm2")
    def answer():
        '''lmql
        "Q: Name a colour.\nA:[X]" where STOPS_BEFORE(X, "\n") and len(TOKENS(X)) < 6
        return X
        '''

    result = answer.run()
    assert result.prompt.startswith("Q: Name a colour.\nA:")
    assert "\n" not in result.variables["X"]


GREETING = "Bonjour"


def shouted(text: str) -> str:
    return text.upper()


def test_a_query_function_sees_its_module_and_enclosing_scope_like_lmql(smollm2) -> None:
    subject = "the sea"  # a local of the function the query is defined in

    @lmlang.query(model="smollm2")
    def greet():
        '''lmql
        "{GREETING}! {shouted(subject)}:[X]" where len(TOKENS(X)) < 3
        return X
        '''

    assert greet.run().prompt.startswith("Bonjour! THE SEA:")


def test_a_query_function_nests_another_like_a_query_of_its_own_file(smollm2) -> None:
    @lmlang.query
    def one_word(topic):
        '''lmql
        "(one word about {topic})[W]" where len(TOKENS(W)) < 3
        return "FIXED-" + topic
        '''

    @lmlang.query(model="smollm2")
    def outer():
        '''lmql
        "A: [A: one_word('cats')] B: [B: one_word]" where len(TOKENS(A)) < 3
        return A
        '''

    with pytest.raises(lmlang.QueryRuntimeError, match="topic"):  # [B: one_word] passes no topic
        outer()

    @lmlang.query(model="smollm2")
    def outer_ok():
        '''lmql
        "A: [A: one_word('cats')] then[T]" where len(TOKENS(T)) < 3
        return A
        '''

    result = outer_ok.run()
    assert result.return_value == "FIXED-cats"
    assert result.prompt == "A: FIXED-cats then" + result.variables["T"]


def test_a_query_function_from_a_string_takes_its_inputs_by_name(smollm2) -> None:
    ask = lmlang.query("""
        "Q: {question}\\nA:[X]" where len(TOKENS(X)) < 3
    """, model="smollm2")
    result = ask.run(question="What is 2+2?")
    assert result.prompt.startswith("Q: What is 2+2?\nA:")
    with pytest.raises(UsageError, match="by name"):
        ask("What is 2+2?")


def test_lmql_cache_option_re_uses_prompts_like_reuse_prompts(smollm2) -> None:
    query = lmlang.compile('argmax(cache=True)\n"Q: Say a colour.\\nA:[X]" where len(TOKENS(X)) < 3\n')
    first = query.run("smollm2")
    again = query.run("smollm2")
    assert again.stats.prefill_tokens < first.stats.prefill_tokens


def test_argmax_takes_n_1_as_lmql_does_and_refuses_more(smollm2) -> None:
    assert lmlang.run('argmax(n=1)\n"Hi[X]" where len(TOKENS(X)) < 2\n', model="smollm2").variables["X"] is not None
    with pytest.raises(lmlang.UsageError, match="argmax gives one result"):
        lmlang.compile('"Hi[X]"\n').run("smollm2", decoder_args={"n": 2})
