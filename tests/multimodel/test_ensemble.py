"""Ensembles on the real models: each voter is a stage, the majority wins, a tie goes to the best mean logprob."""

from __future__ import annotations

import pytest

import lmlang
from lmlang.errors import InputError, ModelError, UsageError

BLOCK = '    "{q} Answer:[A]" where A in [" yes", " no"]\n'


def ensemble(header: str) -> lmlang.Query:
    return lmlang.compile(f"ensemble {header}:\n" + BLOCK)


def alone(model: str, q: str):
    """The block as a plain query on one model: what that voter says."""
    return lmlang.compile(BLOCK.strip() + "\n").run(model, q=q)


def expected_winner(trace: list[dict]) -> str:
    """The rule, from the trace: the most frequent answer, a tie broken by the best logprob among its voters."""
    votes: dict[str, list[float]] = {}
    for entry in trace:
        votes.setdefault(entry["answer"], []).append(entry["measures"]["logprob(A)"])
    return max(votes, key=lambda answer: (len(votes[answer]), max(votes[answer])))


def test_each_voter_is_a_stage_of_the_trace(smollm2, gemma) -> None:
    result = ensemble('"smollm2", "gemma3-270m" vote A').run("smollm2", q="Is a whale a fish?")
    assert [(e["block"], e["line"], e["model"]) for e in result.trace] == [("ensemble", 1, "smollm2"),
                                                                           ("ensemble", 1, "gemma3-270m")]
    for entry in result.trace:
        assert entry["answer"] == repr(alone(entry["model"], "Is a whale a fish?").variables["A"])
    assert sum(e["decision"].startswith("chosen") for e in result.trace) == 1


# Questions the two models answer differently, the tie going to the likelier answer (Gemma puts more of its mass on
# " yes" and " no" after "Answer:", so it wins every such tie here).
@pytest.mark.parametrize("q, winner", [("Is a tomato a fruit?", "gemma3-270m"), ("Is 4 an odd number?", "gemma3-270m")])
def test_a_tie_goes_to_the_best_mean_logprob(smollm2, gemma, q, winner) -> None:
    result = ensemble('"smollm2", "gemma3-270m" vote A').run("smollm2", q=q)
    answers = {e["model"]: e["answer"] for e in result.trace}
    assert len(set(answers.values())) == 2  # one vote each
    logprobs = {e["model"]: e["measures"]["logprob(A)"] for e in result.trace}
    assert max(logprobs, key=logprobs.get) == winner
    assert repr(result.variables["A"]) == answers[winner]
    assert result.prompt.endswith(f"{q} Answer:{result.variables['A']}")
    chosen = next(e for e in result.trace if e["decision"].startswith("chosen"))
    assert (chosen["model"], chosen["decision"]) == (winner, "chosen (1 of 2 votes)")


def test_the_majority_beats_a_better_score(smollm2, gemma) -> None:
    result = ensemble('"smollm2", "gemma3-270m", "smollm2" vote A').run("smollm2", q="Is a tomato a fruit?")
    small, large = alone("smollm2", "Is a tomato a fruit?"), alone("gemma3-270m", "Is a tomato a fruit?")
    assert small.variables["A"] != large.variables["A"]
    assert small.scores["A"].mean_logprob < large.scores["A"].mean_logprob
    assert result.variables["A"] == small.variables["A"]
    assert expected_winner(result.trace) == repr(small.variables["A"])


@pytest.mark.parametrize("header", ['"smollm2" vote A, samples=4, temperature=1.0',
                                    '"smollm2", "gemma3-270m" vote A, samples=2'])
def test_samples_run_each_model_that_many_times(smollm2, gemma, header) -> None:
    result = ensemble(header).run("smollm2", q="Is a tomato a fruit?")
    assert len(result.trace) == 4
    assert repr(result.variables["A"]) == expected_winner(result.trace)


def test_an_unknown_model_is_an_error_at_its_name(smollm2) -> None:
    with pytest.raises(ModelError) as error:
        ensemble('"smollm2", "gemma3-27m" vote A').run("smollm2", q="?")
    assert error.value.span.text == '"gemma3-27m"'


def test_a_computed_option_is_checked_when_it_runs(smollm2) -> None:
    with pytest.raises(UsageError, match=r"samples= takes a whole number >= 1, not 0") as error:
        ensemble('"smollm2" vote A, samples=N').run("smollm2", q="?", N=0)
    assert error.value.span.text == "N"


def test_a_hole_the_block_did_not_reach_is_an_error(smollm2) -> None:
    query = lmlang.compile('ensemble "smollm2" vote A:\n    if ask:\n    ' + BLOCK)
    with pytest.raises(InputError, match="did not reach its hole A") as error:
        query.run("smollm2", q="?", ask=False)
    assert error.value.span.text == "A"
