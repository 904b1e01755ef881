"""Decoders over whole programs on SmolLM2: LMQL's decoder examples, ranking, seeds, batching, constraints.

LMQL's examples come from its documentation's decoding page and its playground ("Meta Prompting" and "Visualize
Decoding" for beam search, "Packing List" for sampling); only a token budget is added, to keep the tests short.
"""

from __future__ import annotations

import numpy as np
import pytest

import lmlang

DOCS_BEAM = '''# use beam search with beam width 2 for
# the entire program
beam(n=2)

# uses beam search to generate RESPONSE
"This is a query with a specified decoder: [RESPONSE]"
'''

META_PROMPTING = '''# metaprompting based on https://arxiv.org/pdf/2102.07350.pdf
beam(n=2)
    "Q: What are Large Language Models?\\n\\n"
    "A good person to answer this question would be[EXPERT]\\n\\n"
    expert_name = EXPERT.rstrip(".\\n")
    "For instance,{expert_name} would answer[ANSWER]"
where
    STOPS_AT(EXPERT, ".") and STOPS_AT(EXPERT, "\\n") and STOPS_AT(ANSWER, ".")
'''

TRANSLATION = '''beam(n=4)
    """English to French Translation:
    English: I am going to the store
    French: [TRANSLATION]
    """
where
    STOPS_AT(TRANSLATION, "\\n")
'''

PACKING_LIST = '''sample(temperature=0.8)
    "A list of things not to forget when going to the sea (not travelling): \\n"
    "- Sunglasses \\n"
    for i in range(4):
        "- [THING] \\n"
where
    THING in set(["Volleyball", "Sunscreen", "Bathing Suite"])
'''

SHORT = {"max_tokens": 12}


def ranked(results: list[lmlang.Result]) -> bool:
    return all(a.logprob >= b.logprob for a, b in zip(results, results[1:]))


def test_docs_beam_example_returns_two_ranked_results(smollm2) -> None:
    results = lmlang.compile(DOCS_BEAM).run("smollm2", decoder_args=SHORT)
    assert isinstance(results, list) and len(results) == 2
    assert ranked(results) and results[0].prompt != results[1].prompt
    for result in results:
        assert result.prompt.startswith("This is a query with a specified decoder: ")
        assert result.logprob == pytest.approx(result.scores["RESPONSE"].logprob)


def test_docs_example_with_argmax_returns_one_result_equal_to_beam_of_one(smollm2) -> None:
    query = lmlang.compile(DOCS_BEAM)
    greedy = query.run("smollm2", decoder="argmax", decoder_args=SHORT)
    assert isinstance(greedy, lmlang.Result)
    single = query.run("smollm2", decoder="beam", decoder_args={"n": 1, **SHORT})
    assert isinstance(single, lmlang.Result) and single.prompt == greedy.prompt


def test_docs_decorator_takes_the_decoder_at_call_time(smollm2) -> None:
    @lmlang.query(model="smollm2", decoder="sample", temperature=1.8, max_tokens=10)
    def tell_a_joke():
        '''lmql
        """A list good dad joke. A indicates the punchline:
        Q:[JOKE]
        A:[PUNCHLINE]""" where STOPS_AT(JOKE, "?") and  STOPS_AT(PUNCHLINE, "\n")
        '''

    assert isinstance(tell_a_joke.run(seed=3), lmlang.Result)  # the decorator's sample, n=1
    beams = tell_a_joke.run(decoder="beam", n=2)  # temperature belongs to sample and is dropped
    assert len(beams) == 2 and ranked(beams)


def test_playground_meta_prompting_beam(smollm2) -> None:
    results = lmlang.compile(META_PROMPTING).run("smollm2", decoder_args={"max_tokens": 24})
    assert len(results) == 2 and ranked(results)
    for result in results:
        expert = result.variables["EXPERT"]
        # Python ran on each beam with that beam's own value
        assert f"For instance,{expert.rstrip('.' + chr(10))} would answer" in result.prompt
        assert result.logprob == pytest.approx(sum(s.logprob for s in result.scores.values()))


def test_playground_translation_beam_of_four(smollm2) -> None:
    results = lmlang.compile(TRANSLATION).run("smollm2", decoder_args=SHORT)
    assert len(results) == 4 and ranked(results)
    assert len({r.variables["TRANSLATION"] for r in results}) == 4


def test_playground_packing_list_sample_of_three(smollm2) -> None:
    results = lmlang.compile(PACKING_LIST).run("smollm2", decoder_args={"n": 3, "seed": 1})
    assert len(results) == 3 and ranked(results)
    for result in results:  # the constraint holds on every branch
        things = [line[2:].strip() for line in result.prompt.splitlines()[2:] if line.startswith("- ")]
        assert len(things) == 4 and set(things) <= {"Volleyball", "Sunscreen", "Bathing Suite"}


def test_beam_scores_are_sums_of_token_logprobs_recomputed_independently(smollm2) -> None:
    """Each beam's score is recomputed by evaluating its text with a fresh sequence per token position.

    llama.cpp's logits are not bit-identical across batch shapes and KV-cell layouts (on SmolLM2 Q4_1 a row can
    move by up to ~0.9 in logit between a token evaluated alone, in a batch with another sequence, or in a
    prompt batch; llama-cpp-python shows the same), so the recomputation agrees to 0.1 per token, not to 1e-6.
    """
    prompt = "The three most common pets are"
    results = lmlang.run(f'beam(n=2, max_tokens=6)\n    "{prompt}[X]"\n', model="smollm2")
    assert ranked(results)
    base = smollm2.tokenize(prompt)
    for result in results:
        value = smollm2.tokenize(result.variables["X"])
        assert len(value) == result.scores["X"].tokens == 6
        expected = 0.0
        for j, token in enumerate(value):
            seq = smollm2.new_sequence()
            try:
                seq.append(base + value[:j])
                logits = np.asarray(seq.logits(), np.float64)
            finally:
                seq.release()
            expected += logits[token] - (logits.max() + np.log(np.exp(logits - logits.max()).sum()))
        assert result.logprob == pytest.approx(expected, abs=0.1 * len(value))


def test_sample_with_seed_is_reproducible(smollm2) -> None:
    query = lmlang.compile('sample(n=3, temperature=0.8, max_tokens=8)\n    "My favourite animal is[X]"\n')
    first = [r.variables["X"] for r in query.run("smollm2", decoder_args={"seed": 11})]
    again = [r.variables["X"] for r in query.run("smollm2", decoder_args={"seed": 11})]
    other = [r.variables["X"] for r in query.run("smollm2", decoder_args={"seed": 12})]
    assert first == again and first != other


def test_samples_advance_together_one_decode_per_step(smollm2, decode_calls) -> None:
    results = lmlang.run('sample(n=4, temperature=1.0, seed=2, max_tokens=8)\n    "Once upon a time[X]"\n',
                         model="smollm2")
    assert len(results) == 4
    steps = [size for size in decode_calls if size > 1]
    # one prompt evaluation, then at most 8 steps of up to four tokens: never 4 x 8 single-token calls
    assert len(decode_calls) <= 1 + 8
    assert max(steps) == 4


def test_constraints_apply_on_every_beam(smollm2) -> None:
    source = 'beam(n=3)\n    "Q: How many legs has a spider?\\nA: [N] legs, colour [C]"\n' \
             'where INT(N) and C in [" black", " brown", " red"]\n'
    results = lmlang.run(source, model="smollm2")
    assert len(results) == 3 and ranked(results)
    for result in results:
        assert isinstance(result.variables["N"], int) and result.variables["C"] in (" black", " brown", " red")


def test_scores_of_a_hole_margin_and_mean(smollm2) -> None:
    prompt = "The capital of France is"
    result = lmlang.run(f'argmax(max_tokens=3)\n    "{prompt}[X]"\n', model="smollm2")
    score = result.scores["X"]
    assert score.mean_logprob == pytest.approx(score.logprob / 3)
    seq = smollm2.new_sequence()
    try:
        seq.append(smollm2.tokenize(prompt))
        logits = np.asarray(seq.logits(), np.float64)
    finally:
        seq.release()
    probs = np.sort(np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum())
    assert score.margin == pytest.approx(probs[-1] - probs[-2], abs=1e-4)
    data = result.to_json()
    assert set(data["scores"]["X"]) == {"logprob", "mean_logprob", "margin", "tokens"}
    assert data["logprob"] == pytest.approx(score.logprob)


def test_beam_sample_is_seeded_and_best_k_returns_k(smollm2) -> None:
    query = lmlang.compile('beam_sample(n=2, temperature=0.8, seed=4, max_tokens=6)\n    "My favourite food is[X]"\n')
    first = query.run("smollm2")
    assert len(first) == 2 and ranked(first)
    assert [r.prompt for r in query.run("smollm2")] == [r.prompt for r in first]
    best = query.run("smollm2", decoder="best_k", decoder_args={"k": 3})
    assert len(best) == 3 and ranked(best)
