"""The HTML view of results, drawn from hand-made results (no model): holes, token colours, forced and
constrained-away tokens, stop phrases, candidates and the multi-model trace; and the per-token record in JSON."""

from __future__ import annotations

import json
import re

from lmlang.result import HoleScore, HoleSpan, Result, Stats, TokenPiece, token_pieces
from lmlang.view import document_html, placed_holes, probability_colour, result_html, results_html


def _result(**changes: object) -> Result:
    prompt = "Q: What is 2+2?\nA: 4.\nName: Bob"
    pieces = (TokenPiece(" ", -0.1), TokenPiece("4", -0.05, wanted="four"), TokenPiece(".", -2.0),
              TokenPiece("", -0.3, end=True))
    answer = HoleScore(-2.45, -0.6, 0.8, 3, pieces)
    name = HoleScore(0.0, None, 1.0, 1, (TokenPiece(" Bob", 0.0, forced=True),))
    start = prompt.index(" 4.")
    holes = [HoleSpan("ANSWER", start, start + 3, answer, cut="\n"),
             HoleSpan("NAME", len(prompt) - 4, len(prompt), name)]
    fields = dict(prompt=prompt, variables={"ANSWER": " 4.", "NAME": " Bob"}, return_value=4, model="smollm2",
                  stats=Stats(12, 4, 0.5), scores={"ANSWER": answer, "NAME": name}, logprob=-2.45, holes=holes)
    fields.update(changes)
    return Result(**fields)  # type: ignore[arg-type]


def test_each_value_is_a_labelled_box_of_coloured_tokens_in_the_prompt() -> None:
    page = result_html(_result())
    assert page.count("class='lm-hole'") == 2
    assert "data-var='ANSWER'" in page and "data-var='NAME'" in page
    assert "<span class='lm-label'" in page and ">ANSWER</span>" in page
    # the prompt around the values is there, escaped
    assert "Q: What is 2+2?\nA:" in page
    tokens = re.findall(r"data-p='([0-9.]+)'", page)
    assert len(tokens) == 5  # three tokens and the end of ANSWER, the forced text of NAME
    assert f"background:{probability_colour(-2.0)}" in page
    assert "lm-forced" in page and "forced by the constraints" in page
    assert "lm-masked" in page and "the model wanted &#x27;four&#x27;" in page
    assert "class='lm-cut'" in page and "lm-stop" in page
    assert result_html(_result()) == _result()._repr_html_()


def test_the_colour_scale_runs_from_red_to_green() -> None:
    assert probability_colour(0.0).startswith("hsl(120,")
    assert probability_colour(-50.0).startswith("hsl(0,")


def test_a_value_a_decorator_rewrote_is_drawn_whole() -> None:
    result = _result(prompt="A: FOUR", holes=[HoleSpan("ANSWER", 2, 7, HoleScore(-1, -1, 0.5, 1, (TokenPiece(" 4", -1),)))])
    page = result_html(result)
    assert "FOUR</span>" in page and "data-p=" not in page


def test_holes_whose_place_is_unknown_are_not_drawn_in_the_prompt() -> None:
    result = _result(holes=[HoleSpan("A", 5, 9), HoleSpan("B", 7, 12), HoleSpan("C", 40, 99)])
    assert [h.var for h in placed_holes(result)] == ["A"]
    assert "data-var='A'" in result_html(result)


def test_several_results_are_ranked_with_each_drawn() -> None:
    page = results_html([_result(), _result(logprob=-5.0)])
    assert "2 candidates, best first" in page
    assert page.count("class='lm-candidate'") == 2 and "-5.000" in page
    assert results_html([_result()]) == result_html(_result())


def test_the_trace_is_a_table_and_a_timeline() -> None:
    trace = [{"block": "cascade", "line": 3, "model": "smollm2", "measures": {"margin(CLS)": 0.2},
              "decision": "escalate", "prefill_tokens": 40, "generated_tokens": 2, "seconds": 0.5, "cost": 0.5,
              "cost_unit": "seconds", "position": 1},
             {"block": "cascade", "line": 3, "model": "gemma3-270m", "measures": {}, "decision": "answer (last model)",
              "prefill_tokens": 45, "generated_tokens": 2, "seconds": 1.5, "cost": 1.5, "cost_unit": "seconds"}]
    page = result_html(_result(trace=trace))
    assert "class='lm-trace'" in page and page.count("<tr class='lm-") == 2
    assert "margin(CLS) = 0.2" in page and "escalate" in page and "position: 1" in page
    assert page.count("class='lm-stage lm-") == 2
    assert "2 seconds" in page  # the total cost


def test_distributions_are_drawn_as_bars() -> None:
    page = result_html(_result(distributions={"CLS": [("positive", 0.7), ("negative", 0.3)]}))
    assert "Distribution of CLS" in page and page.count("class='lm-bar'") == 2


def test_the_page_is_self_contained_and_escapes_what_the_model_wrote() -> None:
    result = _result(prompt="<script>alert(1)</script>", holes=[], variables={"X": "<b>"}, scores={})
    page = document_html(result, "t")
    assert page.startswith("<!doctype html>") and "<script>" not in page and "&lt;b&gt;" in page
    assert not re.search(r"(src|href)\s*=|@import|url\(", page)


def test_token_pieces_attribute_a_split_character_to_the_token_completing_it_and_clip_the_cut() -> None:
    e_acute = "é".encode()
    steps = [(b"caf", -0.1, False, None), (e_acute[:1], -0.2, False, None), (e_acute[1:] + b"!x", -0.3, False, b"?"),
             (None, -0.4, False, None)]
    pieces = token_pieces(steps, len("café!".encode()))
    assert [p.text for p in pieces] == ["caf", "", "é!", ""]
    assert pieces[2].wanted == "?" and pieces[3].end


def test_json_holds_each_value_place_and_pieces() -> None:
    data = json.loads(json.dumps(_result().to_json()))
    assert data["holes"][0]["var"] == "ANSWER" and data["holes"][0]["cut"] == "\n"
    assert data["holes"][0]["pieces"][1] == {"text": "4", "logprob": -0.05, "wanted": "four"}
    assert data["holes"][1]["pieces"] == [{"text": " Bob", "logprob": 0.0, "forced": True}]
    assert "pieces" not in data["scores"]["ANSWER"]
