"""Saved prompt states (lmlang.models.kvcache.PromptCache): a run gives bit for bit the same result whether its
prompt was evaluated, restored whole, restored in part, or run after unrelated queries."""

from __future__ import annotations

import pytest

import lmlang
from lmlang.errors import UsageError
from lmlang.models.kvcache import BLOCK, PromptCache

EXAMPLES = "".join(f"Q: What is {a} plus {b}?\nA: {a + b}\n" for a, b in
                   [(2, 3), (10, 7), (41, 1), (6, 6), (13, 22), (5, 9), (30, 12), (8, 8), (17, 4), (3, 30),
                    (19, 19), (21, 2), (7, 11), (44, 5), (12, 13), (9, 1), (26, 6), (14, 15), (1, 1), (33, 3)])
# Gemma 3's sliding-window layers see 512 positions: a prompt past the window has only its first blocks saved.
LONG = EXAMPLES * 2


def query(examples: str, question: str) -> lmlang.Query:
    source = f'"""{examples}Q: {question}\nA:[ANSWER]""" where len(TOKENS(ANSWER)) < 8 and STOPS_AT(ANSWER, "\\n")'
    return lmlang.compile(source)


def outcome(result: lmlang.Result) -> tuple:
    """Everything a run computed from the model's numbers, compared exactly."""
    score = result.scores["ANSWER"]
    return result.variables["ANSWER"], score.logprob, score.margin, [p.logprob for p in score.pieces]


def run(q: lmlang.Query, model: str, session: lmlang.Session) -> tuple[tuple, int]:
    result = q.run(model, session=session)
    return outcome(result), result.stats.prefill_tokens


@pytest.mark.parametrize("name, examples", [("smollm2", EXAMPLES), pytest.param("gemma3-270m", LONG, marks=pytest.mark.slow)])
def test_a_run_is_the_same_cold_warm_in_part_and_after_other_queries(name: str, examples: str) -> None:
    first, other = query(examples, "What is 20 plus 5?"), query(examples, "What is 4 plus 40?")
    unrelated = lmlang.compile('"Name a colour:[C]" where len(TOKENS(C)) < 5')
    expected, evaluated = run(first, name, lmlang.Session(prompt_bytes=0))
    expected_other, _ = run(other, name, lmlang.Session(prompt_bytes=0))

    session = lmlang.Session()
    window = session.model(name).n_swa
    # The same prompt again: restored with its logits, or, past a sliding window, its blocks within the window.
    again = 0 if not window or evaluated < window else evaluated - (window - 1) // BLOCK * BLOCK
    assert run(first, name, session) == (expected, evaluated)  # cold: evaluated, then saved
    assert run(first, name, session) == (expected, again)
    unrelated.run(name, session=session)
    assert run(first, name, session) == (expected, again)
    # Another question after the same examples: the shared blocks are restored, the rest evaluated.
    got, prefill = run(other, name, session)
    assert got == expected_other
    assert prefill < evaluated - 2 * BLOCK
    prompts = session.decoder(session.model(name)).pool.prompts
    assert prompts.hits == 3 and prompts.nbytes <= prompts.budget


def test_saved_prompts_stay_within_their_budget(smollm2) -> None:
    session = lmlang.Session(prompt_bytes=4 << 20)  # about 170 tokens of SmolLM2
    for question in ("What is 1 plus 2?", "What is 3 plus 4?", "What is 5 plus 6?"):
        query(EXAMPLES[:200], question).run("smollm2", session=session)
    prompts = session.decoder(smollm2).pool.prompts
    assert 0 < prompts.nbytes <= 4 << 20
    session.clear()
    assert len(prompts) == 0 and prompts.nbytes == 0


def test_a_prompt_larger_than_the_budget_is_not_saved(smollm2) -> None:
    session = lmlang.Session(prompt_bytes=1 << 20)
    result = query(EXAMPLES, "What is 1 plus 2?").run("smollm2", session=session)
    assert result.stats.prefill_tokens > 100
    assert len(session.decoder(smollm2).pool.prompts) == 0


def test_restoring_needs_an_empty_cache_and_a_block_boundary(smollm2) -> None:
    assert smollm2.clear_cache()
    tokens = smollm2.tokenize(EXAMPLES, bos=True)[: 3 * BLOCK + 5]
    with smollm2.new_sequence() as seq:
        seq.append(tokens)
        saved = smollm2.save(seq)
        with pytest.raises(UsageError, match="empty cache"):
            smollm2.restore(saved, 2 * BLOCK)
    assert smollm2.clear_cache()
    with pytest.raises(UsageError, match="cannot restore 70"):
        smollm2.restore(saved, 70)
    with smollm2.restore(saved, 2 * BLOCK) as seq:
        assert seq.tokens == tokens[: 2 * BLOCK]
        seq.append(tokens[2 * BLOCK:])
        assert (seq.logits() == saved.logits).all()
    assert smollm2.clear_cache()
    with smollm2.restore(saved, len(tokens)) as seq:  # whole, with its logits: nothing to evaluate
        assert seq.logits() is saved.logits


def test_a_model_that_saves_no_states_evaluates_every_prompt() -> None:
    from fakemodel import FakeModel

    fake = FakeModel(["a"], lambda text: {"<eos>": 1.0})
    seq, evaluated = PromptCache(fake).start([1, 1, 1])
    assert seq.tokens == [1, 1, 1] and evaluated == 3
