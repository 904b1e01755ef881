"""Cascade, route and ensemble logic on fake models with scripted logits: exact decisions, no llama.cpp."""

from __future__ import annotations

import math

import pytest

import lmlang
from fakemodel import FakeModel

WORDS = [" yes", " no", " math", " chat", " ok"]


def answering(yes: float, no: float):
    """A model that, asked for an answer, gives " yes" and " no" these logits, and then ends."""
    def script(text: str) -> dict[str, float]:
        if text.endswith("Answer:"):
            return {" yes": yes, " no": no}
        if text.endswith("Type:"):
            return {" math": yes, " chat": no}
        if text.endswith("Reply:"):
            return {" ok": 5.0}
        return {"<eos>": 30.0}
    return script


def session(**scripts) -> lmlang.Session:
    return lmlang.Session(models={name: FakeModel(WORDS, script, name=name) for name, script in scripts.items()})


BLOCK = '    "Q: {q}\\nAnswer:[A]" where A in [" yes", " no"]\n'


def cascade(condition: str) -> lmlang.Query:
    return lmlang.compile(f'cascade "small", "large" until {condition}:\n' + BLOCK)


def test_a_cascade_accepts_the_small_model_when_its_margin_is_enough() -> None:
    models = session(small=answering(3.0, 0.0), large=answering(0.0, 3.0))
    result = cascade("margin(A) >= 0.5").run("small", q="sky?", session=models)
    assert [(e["model"], e["decision"]) for e in result.trace] == [("small", "accept")]
    assert result.variables["A"] == " yes"
    p_yes = 1 / (1 + math.exp(-3.0))
    assert result.trace[0]["measures"]["margin(A)"] == pytest.approx(2 * p_yes - 1, abs=1e-3)


def test_a_cascade_escalates_when_the_small_model_is_unsure() -> None:
    models = session(small=answering(0.1, 0.0), large=answering(0.0, 3.0))
    result = cascade("margin(A) >= 0.5").run("small", q="sky?", session=models)
    assert [(e["model"], e["decision"]) for e in result.trace] == [("small", "escalate"),
                                                                   ("large", "answer (last model)")]
    assert result.variables["A"] == " no"
    assert result.prompt == "Q: sky?\nAnswer: no"


def test_an_unknown_model_in_a_cascade_is_the_querys_error() -> None:
    models = session(small=answering(1.0, 0.0))
    with pytest.raises(lmlang.ModelError, match="unknown model 'large'"):
        cascade("margin(A) >= 0.5").run("small", q="sky?", session=models)


def test_an_ensemble_takes_the_majority() -> None:
    models = session(one=answering(2.0, 0.0), two=answering(0.0, 1.0), three=answering(0.0, 2.0))
    query = lmlang.compile('ensemble "one", "two", "three" vote A:\n' + BLOCK)
    result = query.run("one", q="sky?", session=models)
    assert result.variables["A"] == " no"
    decisions = [(e["model"], e["decision"]) for e in result.trace]
    assert decisions == [("one", "vote"), ("two", "vote"), ("three", "chosen (2 of 3 votes)")]  # the surer "no"


ROUTE = '''route message, by="judge", prompt=PROMPT:
    case "math":
        "Math. Reply:[R]"
    case "chat":
        "Chat. Reply:[R]"
'''


@pytest.mark.parametrize("math_logit, chat_logit, arm", [(2.0, 0.0, "math"), (0.0, 2.0, "chat")])
def test_a_classifier_route_runs_the_arm_of_the_likelier_label(math_logit, chat_logit, arm) -> None:
    models = session(main=answering(0.0, 0.0), judge=answering(math_logit, chat_logit))
    result = lmlang.compile(ROUTE).run("main", message="2+2?", PROMPT="2+2?\nType:", session=models)
    assert result.trace[-1]["decision"] == f'ran case "{arm}"'
    p = 1 / (1 + math.exp(-2.0))
    assert result.trace[0]["scores"][arm] == pytest.approx(p, abs=1e-4)
    assert result.prompt == f"{arm.capitalize()}. Reply: ok"


def test_an_examples_route_takes_the_nearest_example() -> None:
    models = session(main=answering(0.0, 0.0))
    query = lmlang.compile('route message, examples=EXAMPLES:\n    case "math":\n        "Math. Reply:[R]"\n'
                           '    case "chat":\n        "Chat. Reply:[R]"\n')
    examples = {"math": ["add the numbers", "multiply them"], "chat": ["hello there", "how are you"]}
    result = query.run("main", message="hello you", EXAMPLES=examples, session=models)
    assert result.trace[-1]["decision"] == 'ran case "chat"'
    assert models.embeddings and len(models.embeddings) == 5  # the input and the four examples, kept
