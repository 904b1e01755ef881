"""Routes on the real models: the arm taken is the one the rule, classifier or examples say."""

from __future__ import annotations

import pytest

import lmlang
from lmlang.errors import InputError, UsageError
from lmlang.multimodel import embedding

RULES = '''route question:
    case r"\\d+ *[+*-] *\\d+":
        cascade "gemma3-270m":
            "Q: {question}\\nA:[A]" where INT(A) and len(TOKENS(A)) < 4
    case len(question) > 40:
        "Long: {question}\\nA:[A]" where STOPS_BEFORE(A, "\\n") and len(TOKENS(A)) < 4
    case _:
        "Short: {question}\\nA:[A]" where STOPS_BEFORE(A, "\\n") and len(TOKENS(A)) < 4
'''


@pytest.mark.parametrize("question, arm, models", [
    ("What is 2 + 2?", 'r"\\d+ *[+*-] *\\d+"', ["smollm2", "gemma3-270m"]),
    ("Why is the sky blue in the afternoon and red at sunset?", "len(question) > 40", ["smollm2"]),
    ("Why?", "_", ["smollm2"]),
])
def test_rules_take_the_first_arm_that_holds(smollm2, gemma, question, arm, models) -> None:
    result = lmlang.compile(RULES).run("smollm2", question=question)
    assert result.trace[0]["decision"] == f"ran case {arm}"
    assert [e["model"] for e in result.trace] == models
    prefix = {"_": "Short", "len(question) > 40": "Long"}.get(arm, "Q")
    assert result.prompt.startswith(f"{prefix}: {question}\nA:")


def test_no_rule_and_no_fallback_is_a_clear_error() -> None:
    query = lmlang.compile('route question:\n    case "zzz":\n        "[A]" where len(TOKENS(A)) < 2\n')
    with pytest.raises(InputError, match="no rule of this route holds"):
        query.run("smollm2", question="hello")


CLASSIFIER = '''route message, by="smollm2", prompt=PROMPT:
    case "complaint":
        "Sorry:[R]" where len(TOKENS(R)) < 3
    case "question":
        "Answer:[R]" where len(TOKENS(R)) < 3
    case "praise":
        "Thanks:[R]" where len(TOKENS(R)) < 3
'''
PROMPT = ("Message: Where is your store?\nType: question\nMessage: Great service, thank you!\nType: praise\n"
          "Message: The item broke after one day.\nType: complaint\nMessage: {}\nType:")


@pytest.mark.parametrize("message", ["My package never arrived.", "When do you open on Sunday?"])
def test_a_classifier_route_takes_the_label_distribution_prefers(smollm2, message) -> None:
    prompt = PROMPT.format(message)
    result = lmlang.compile(CLASSIFIER).run("smollm2", message=message, PROMPT=prompt)
    reference = lmlang.compile('argmax\n    "{p}[L]"\ndistribution\n    L in [" complaint", " question", " praise"]\n')
    expected = reference.run("smollm2", p=prompt).variables["L"].strip()
    scores = result.trace[0]["scores"]
    assert max(scores, key=scores.get) == expected
    assert result.trace[1]["decision"] == f'ran case "{expected}"'


def test_a_classifier_route_falls_back_below_its_threshold(smollm2) -> None:
    source = CLASSIFIER.replace('prompt=PROMPT:', 'prompt=PROMPT, threshold=0.99:') + '    case _:\n        "?[R]" where len(TOKENS(R)) < 3\n'
    result = lmlang.compile(source).run("smollm2", message="Hm.", PROMPT=PROMPT.format("Hm."))
    assert result.trace[1]["decision"] == "ran case _"


EXAMPLES = {"cooking": ["How long do I boil an egg?", "What spices go with lentils?"],
            "travel": ["Which train goes from Paris to Rome?", "Do I need a visa for Japan?"]}
EMBEDDED = '''route request, examples=EXAMPLES:
    case "cooking":
        "Chef:[A]" where len(TOKENS(A)) < 3
    case "travel":
        "Agent:[A]" where len(TOKENS(A)) < 3
'''


@pytest.mark.parametrize("request_text", ["Do I need a visa for Japan?", "How long do I boil an egg?",
                                          "What spices go with chickpeas?"])
def test_an_examples_route_takes_the_nearest_examples_label(smollm2, request_text) -> None:
    result = lmlang.compile(EMBEDDED).run("smollm2", request=request_text, EXAMPLES=EXAMPLES)
    target, _ = embedding.embed(smollm2, request_text)
    nearest = max(((embedding.cosine(target, embedding.embed(smollm2, e)[0]), label)
                   for label, texts in EXAMPLES.items() for e in texts))
    assert result.trace[1]["decision"] == f'ran case "{nearest[1]}"'
    assert result.trace[0]["nearest"][0][1] == nearest[1]
    if request_text in EXAMPLES["travel"] + EXAMPLES["cooking"]:
        assert nearest[0] == pytest.approx(1.0)


@pytest.mark.parametrize("examples, message", [
    ({}, "examples= takes a dict"),
    ({"cooking": ["x"], "travel": []}, "no examples for the label 'travel'"),
    ({"cooking": ["x"], "travel": ["y"], "sports": ["z"]}, "examples are given for 'sports'"),
])
def test_bad_examples_are_clear_errors(smollm2, examples, message) -> None:
    with pytest.raises(UsageError, match=message):
        lmlang.compile(EMBEDDED).run("smollm2", request="hi", EXAMPLES=examples)


def test_an_empty_route_is_a_clear_error(smollm2) -> None:
    query = lmlang.compile('route message, by="smollm2":\n    case _:\n        "[R]" where len(TOKENS(R)) < 2\n')
    with pytest.raises(UsageError, match="no labeled arm"):
        query.run("smollm2", message="hi")


def test_an_unknown_route_option_is_a_clear_error(smollm2) -> None:
    query = lmlang.compile('route message, bye="smollm2":\n    case "a":\n        "[R]" where len(TOKENS(R)) < 2\n')
    with pytest.raises(UsageError, match="route has no option 'bye'"):
        query.run("smollm2", message="hi")


def test_blocks_nested_in_blocks_run_their_own_statement(smollm2, gemma) -> None:
    source = ('route x:\n    case "a":\n        cascade "gemma3-270m", "smollm2" until margin(B) > 2:\n'
              '            "Q:[B]" where B in [" yes", " no"]\n    case _:\n        "R:[B]" where B in [" no"]\n')
    result = lmlang.compile(source).run("smollm2", x="a")
    assert [(e["block"], e["model"]) for e in result.trace] == [("route", "smollm2"), ("cascade", "gemma3-270m"),
                                                               ("cascade", "smollm2")]
