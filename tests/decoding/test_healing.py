"""Token healing: a hole's first tokens re-write the prompt's last token (lmlang.masks.healing).

Exact outcomes on a fake model whose script rewards the natural boundary (" yes" after "A:") and punishes the
unnatural one (anything after "A: "), then the same on SmolLM2.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import lmlang
from lmlang.masks import any_text, from_regex, preceded
from lmlang.masks.healing import HealingMatcher
from fakemodel import FakeModel

WORDS = [" yes", " no", " maybe", "A:", "yes", "no", " y"]


def script(text: str) -> dict[str, float]:
    if text.endswith("A:"):  # the natural boundary: the space goes with the word
        return {" yes": 3.0, " no": 1.0, " maybe": 0.5, " ": -1.0}
    if text.endswith("A: "):  # after a lone space, this model is lost
        return {"no": 2.0, "yes": 1.0}
    return {"<eos>": 5.0}


@pytest.fixture
def fake() -> FakeModel:
    return FakeModel(WORDS, script)


def run(fake: FakeModel, source: str, **options):
    return lmlang.compile(source).run(session=lmlang.Session(models={"fake": fake}), **options)


def log_softmax(row: dict[str, float], token: str, among: list[str]) -> float:
    return row[token] - math.log(sum(math.exp(row[t]) for t in among))


def test_a_hole_after_a_space_rewrites_it_with_the_word(fake) -> None:
    result = run(fake, '"Q? A: [X]"')
    assert result.variables["X"] == "yes"
    assert result.prompt == "Q? A: yes"
    # The first token is weighed among those that write the space the prompt already holds.
    allowed = [" yes", " no", " maybe", " ", " y"]
    row = {**{t: fake.floor for t in allowed}, **script("A:")}
    assert result.scores["X"].tokens == 1  # " yes"
    assert result.scores["X"].logprob == pytest.approx(log_softmax(row, " yes", allowed) + 0.0, abs=1e-5)


def test_healing_can_be_turned_off(fake) -> None:
    result = run(fake, '"Q? A: [X]"', decoder_args={"token_healing": False})
    assert result.variables["X"] == "no"
    result = run(fake, 'argmax(token_healing=False) "Q? A: [X]"')
    assert result.variables["X"] == "no"


def test_constraints_apply_to_the_value_after_the_healed_bytes(fake) -> None:
    result = run(fake, '"Q? A: [X]" where X in ["no", "maybe"]')
    assert result.variables["X"] == "no"
    result = run(fake, '"Q? A: [X]" where REGEX(X, r"m.*")')
    assert result.variables["X"] == "maybe"
    result = run(fake, '"Q? A: [X]" where len(X) < 3')
    assert result.variables["X"] == "no"


def test_the_cache_holds_the_prompt_and_the_value_as_the_model_wrote_them(fake) -> None:
    session = lmlang.Session(models={"fake": fake})
    query = lmlang.compile('"Q? A: [X] then [Y]" where STOPS_BEFORE(Y, "x")')
    result = query.run(session=session)
    assert result.variables["X"] == "yes"
    # The second hole's prompt ends in " then " (one more healed space) and is evaluated after " yes".
    assert result.prompt.startswith("Q? A: yes then ")


def test_a_decorator_rewriting_the_value_keeps_the_healed_bytes_in_the_cache() -> None:
    def seen(text: str) -> dict[str, float]:
        if text.endswith("B:"):  # what the cache holds when the second hole starts, as the model reads it
            return {" ok": 5.0} if text == "Q? A: YES. B:" else {" lost": 5.0}
        return script(text)

    source = '''
def shout(value):
    return value.upper()
"Q? A: [@shout X]. B:[Y]" where len(TOKENS(Y)) < 2
'''
    result = run(FakeModel(WORDS + [" ok", " lost"], seen), source)
    assert result.variables["X"] == "YES"
    assert result.variables["Y"] == " ok"
    assert result.prompt == "Q? A: YES. B: ok"


def test_streamed_text_never_repeats_the_healed_bytes(fake) -> None:
    pieces: list[tuple[str, bool]] = []
    result = lmlang.compile('"Q? A: [X]"').run(session=lmlang.Session(models={"fake": fake}),
                                               on_text=lambda text, generated: pieces.append((text, generated)))
    assert "".join(text for text, _ in pieces) == result.prompt == "Q? A: yes"
    assert "".join(text for text, generated in pieces if generated) == "yes"


def test_no_healing_after_chat_markup_or_another_hole(fake) -> None:
    # The hole right after [X] has no text of its own before it: nothing to take back.
    result = run(fake, '"Q? A:[X][Y]" where len(TOKENS(X)) < 2 and len(TOKENS(Y)) < 2')
    assert result.variables["X"] == " yes"


def test_sample_and_beam_heal_too(fake) -> None:
    results = run(fake, '"Q? A: [X]"', decoder="beam", decoder_args={"n": 2})
    assert [r.variables["X"] for r in results] == ["yes", "no"]
    results = run(fake, '"Q? A: [X]"', decoder="sample", decoder_args={"n": 3, "seed": 1, "temperature": 0.01})
    assert [r.variables["X"] for r in results] == ["yes", "yes", "yes"]


def test_a_distribution_scores_each_candidate_as_spelt_after_the_colon(fake) -> None:
    result = run(fake, '"Q? A: [X]" distribution X in ["yes", "no"]')
    assert result.variables["X"] == "yes" and result.prompt == "Q? A: yes"
    probabilities = dict(result.distributions["X"])
    assert probabilities["yes"] == pytest.approx(math.exp(3.0) / (math.exp(3.0) + math.exp(1.0)), abs=1e-6)
    plain = run(fake, '"Q? A: [X]" distribution X in ["yes", "no"]', decoder_args={"token_healing": False})
    assert plain.variables["X"] == "no"


def test_a_bad_token_healing_argument_is_a_usage_error(fake) -> None:
    with pytest.raises(lmlang.UsageError, match="token_healing must be True, False or"):
        run(fake, '"Q? A: [X]"', decoder_args={"token_healing": "yes"})


# -------------------------------------------------------------------------------- the masks, on toy vocabularies


def test_preceded_reads_the_prefix_then_the_language() -> None:
    automaton = preceded(b" :", from_regex("[0-9]+|x"))
    for text, ok in [(b" :1", True), (b" :x", True), (b" :12", True), (b" :", False), (b":1", False),
                     (b" : 1", False), (b"1", False)]:
        assert automaton.matches(text) is ok
    assert automaton.forced_text(automaton.start) == b" :"
    assert preceded(b"", any_text()) is any_text()


def test_the_healing_matcher_allows_what_rewrites_the_bytes_and_then_anything() -> None:
    pieces = [b"", b" ", b" y", b" yes", b"y", b"  ", b"a", b" \n"]
    blob = np.frombuffer(b"".join(pieces), np.uint8), np.cumsum([len(p) for p in pieces])
    matcher = HealingMatcher(b" y", pieces, {0}, blob)
    start = matcher.start()
    assert matcher.ids(start).tolist() == [1, 2, 3]  # a piece of the bytes, or the bytes and more
    after_space = matcher.advance(start, 1)
    assert matcher.ids(after_space).tolist() == [4]
    assert matcher.sole(after_space) == 4
    assert matcher.forced_text(after_space) == b"y"
    assert matcher.advance(start, 3) == matcher.free and matcher.accepts(matcher.free)
    assert matcher.advance(start, 0) == -1 and matcher.advance(start, 6) == -1
    assert not matcher.accepts(start) and not matcher.only_end(start)
    logits = np.arange(len(pieces), dtype=np.float32)
    ids, chosen = matcher.choices(start, logits, np.empty_like(logits))
    assert ids.tolist() == [1, 2, 3] and chosen.tolist() == [1.0, 2.0, 3.0]
    assert matcher.choices(matcher.free, logits, np.empty_like(logits))[1] is logits


@pytest.mark.model
def test_smollm2_answers_after_a_space_as_it_would_after_the_colon() -> None:
    query = lmlang.compile('"The capital of France is [X]" where X in ["Paris", "London", "Rome"]')
    healed, plain = query.run("smollm2"), query.run("smollm2", decoder_args={"token_healing": False})
    assert healed.variables["X"] == plain.variables["X"] == "Paris"
    # Without healing the model is forced into " " + "Paris", a tokenization it finds unlikely.
    assert healed.scores["X"].logprob > plain.scores["X"].logprob + 3


@pytest.mark.model
def test_smollm2_free_text_after_a_space_is_what_follows_the_colon() -> None:
    query = lmlang.compile('"Q: What is the capital of France?\\nA: [X]" where STOPS_BEFORE(X, "\\n") '
                           'and len(TOKENS(X)) < 12')
    healed = query.run("smollm2")
    unhealed = lmlang.compile('"Q: What is the capital of France?\\nA:[X]" where STOPS_BEFORE(X, "\\n") '
                              'and len(TOKENS(X)) < 12').run("smollm2")
    assert " " + healed.variables["X"] == unhealed.variables["X"]
    assert "Paris" in healed.variables["X"]


@pytest.mark.model
def test_smollm2_schema_value_after_a_space_is_valid() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
              "required": ["name", "age"], "additionalProperties": False}
    query = lmlang.compile(f'"A person as JSON: [P]" where JSON(P, {schema!r})')
    value = query.run("smollm2").variables["P"]
    jsonschema.validate(value, schema)
