"""Cascades on the real models: escalation exactly when the condition fails, the trace, consistency, errors."""

from __future__ import annotations

import json

import pytest

import lmlang
from lmlang.errors import InputError, ModelError

FEW_SHOT = ('"Word: failure\\nSentiment: negative\\nWord: gift\\nSentiment: positive\\n"\n')
BLOCK = '    "Word: {word}\\nSentiment:[CLS]" where CLS in [" positive", " negative"]\n'


def cascade(condition: str, models: str = '"smollm2", "gemma3-270m"', before: str = "") -> lmlang.Query:
    return lmlang.compile(before + FEW_SHOT + f"cascade {models} until {condition}:\n" + BLOCK)


def alone(model: str, word: str):
    """The block as a plain query on one model: the reference for what the cascade measures."""
    return lmlang.compile(FEW_SHOT + BLOCK.strip() + "\n").run(model, word=word)


# llama.cpp's logits change in the second or third decimal with how the prompt was split into batches, which
# depends on what the cache already held: a margin measured in one run is compared with tolerance in another.
NOISE = 0.06


def measured(result) -> float:
    return result.trace[0]["measures"]["margin(CLS)"]


def test_the_measured_margin_is_the_small_models_first_token_margin(smollm2) -> None:
    result = cascade("margin(CLS) >= 0.0").run("smollm2", word="sunshine")
    assert measured(result) == pytest.approx(alone("smollm2", "sunshine").scores["CLS"].margin, abs=NOISE)


def test_a_threshold_no_margin_misses_accepts(smollm2) -> None:
    result = cascade("margin(CLS) >= 0.0").run("smollm2", word="sunshine")
    assert [e["model"] for e in result.trace] == ["smollm2"]
    assert result.trace[0]["decision"] == "accept"
    assert result.variables["CLS"] == alone("smollm2", "sunshine").variables["CLS"]


def test_a_threshold_no_margin_reaches_escalates(smollm2, gemma) -> None:
    result = cascade("margin(CLS) >= 1.01").run("smollm2", word="sunshine")
    assert [e["decision"] for e in result.trace] == ["escalate", "answer (last model)"]
    assert [e["model"] for e in result.trace] == ["smollm2", "gemma3-270m"]
    reference = alone("gemma3-270m", "sunshine")
    assert result.variables["CLS"] == reference.variables["CLS"]
    assert result.scores["CLS"].margin == pytest.approx(reference.scores["CLS"].margin, abs=NOISE)
    assert result.prompt.endswith("Word: sunshine\nSentiment:" + result.variables["CLS"])


@pytest.mark.parametrize("word", ["sunshine", "rain", "murder", "table", "gift"])
@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7])
def test_escalates_exactly_when_the_measured_margin_is_below_the_threshold(smollm2, gemma, word, threshold) -> None:
    result = cascade(f"margin(CLS) >= {threshold}").run("smollm2", word=word)
    escalated = measured(result) < threshold
    assert [e["model"] for e in result.trace] == (["smollm2", "gemma3-270m"] if escalated else ["smollm2"])
    assert result.trace[0]["decision"] == ("escalate" if escalated else "accept")


def test_the_trace_holds_every_stage_with_its_work() -> None:
    result = cascade("margin(CLS) > 1.0", '"smollm2", "smollm2", "gemma3-270m"').run("smollm2", word="rain")
    assert [e["model"] for e in result.trace] == ["smollm2", "smollm2", "gemma3-270m"]
    assert [e["decision"] for e in result.trace] == ["escalate", "escalate", "answer (last model)"]
    for entry in result.trace:
        assert entry["generated_tokens"] > 0 and entry["seconds"] > 0 and entry["cost_unit"] == "seconds"
        assert entry["thresholds"] == {"1.0": 1.0} and "margin(CLS)" in entry["measures"]
    assert result.stats.generated_tokens == sum(e["generated_tokens"] for e in result.trace)
    assert json.loads(json.dumps(result.to_json()))["trace"][2]["model"] == "gemma3-270m"


def test_logprob_and_python_predicates_decide_too() -> None:
    accepted = cascade("logprob(CLS) <= 0 and CLS.strip() in ('positive', 'negative')").run("smollm2", word="joy")
    assert [e["model"] for e in accepted.trace] == ["smollm2"]
    refused = cascade("CLS == ' neither'").run("smollm2", word="joy")
    assert [e["decision"] for e in refused.trace] == ["escalate", "answer (last model)"]


def test_consistency_samples_k_times() -> None:
    runs = []
    query = lmlang.compile("runs = []\n" + FEW_SHOT + 'cascade "smollm2", "gemma3-270m" until consistency(CLS, 4) >= 0.5:\n'
                           + '    runs.append(1)\n' + BLOCK + "return runs\n")
    result = query.run("smollm2", word="gift")
    first = result.trace[0]
    assert first["samples"] == 4
    share = first["measures"]["consistency(CLS, 4)"]
    assert share in (0.0, 0.25, 0.5, 0.75, 1.0)
    assert first["decision"] == ("accept" if share >= 0.5 else "escalate")
    # The first stage ran its body once plus four samples; a second stage once more.
    assert len(result.return_value) == 5 + (share < 0.5)
    del runs


def test_price_per_token_cost(monkeypatch) -> None:
    monkeypatch.setenv("LMLANG_PRICES", "smollm2=1.0,gemma3-270m=2.0")
    result = cascade("margin(CLS) > 1.0").run("smollm2", word="rain")
    for entry, price in zip(result.trace, (1.0, 2.0)):
        assert entry["cost_unit"] == "price"
        assert entry["cost"] == pytest.approx(price * (entry["prefill_tokens"] + entry["generated_tokens"]) / 1000)


def test_threshold_by_name_from_a_calibration_file(tmp_path) -> None:
    file = tmp_path / "calib.json"
    file.write_text(json.dumps({"lmlang_calibration": 1, "thresholds": {"t": {"smollm2": 1.01, "gemma3-270m": 0}}}))
    result = cascade(f'margin(CLS) >= threshold("t", file={str(file)!r})').run("smollm2", word="sunshine")
    assert [e["decision"] for e in result.trace] == ["escalate", "answer (last model)"]
    assert result.trace[0]["thresholds"] == {"t": 1.01}
    assert result.trace[1]["thresholds"] == {"t": 0.0}


def test_an_unknown_threshold_name_is_a_clear_error(tmp_path) -> None:
    file = tmp_path / "calib.json"
    file.write_text(json.dumps({"thresholds": {"sentiment": 0.4}}))
    with pytest.raises(InputError, match="no threshold named 'sentimnet'.*it has: sentiment"):
        cascade(f'margin(CLS) >= threshold("sentimnet", file={str(file)!r})').run("smollm2", word="rain")


def test_a_missing_model_is_a_clear_error_before_anything_runs() -> None:
    query = cascade("margin(CLS) >= 0.4", '"smollm2", "gemma-9000"')
    with pytest.raises(ModelError, match="unknown model 'gemma-9000'") as info:
        query.run("smollm2", word="rain")
    assert info.value.span is not None and info.value.span.text == '"gemma-9000"'


def test_a_measure_of_something_that_is_not_a_hole_is_a_clear_error() -> None:
    with pytest.raises(InputError, match="margin\\(\\) takes a hole of the block"):
        cascade("margin(word) >= 0.4").run("smollm2", word="rain")


def test_variables_of_the_accepted_stage_reach_the_rest_of_the_query() -> None:
    query = lmlang.compile(FEW_SHOT + 'cascade "smollm2", "gemma3-270m" until margin(CLS) > 1.0:\n' + BLOCK
                           + 'label = CLS.strip()\n"\\nLabel: {label}"\nreturn label\n')
    result = query.run("smollm2", word="rain")
    assert result.return_value == result.variables["CLS"].strip()
    assert result.prompt.endswith(f"\nLabel: {result.return_value}")


def test_the_constraints_inside_a_block_see_the_querys_variables(smollm2) -> None:
    """The block's body is a function of its own: its holes' constraints still read the query's inputs and
    variables (here the candidates come from inputs the block's Python code never mentions)."""
    query = lmlang.compile('cascade "smollm2":\n'
                           '    "Country: France\\nCapital:[CLS]" where CLS in [" " + a, " " + b]\n'
                           'return CLS')
    result = query.run(a="Paris", b="Rome")
    assert result.return_value == " Paris" and result.scores["CLS"].tokens <= 2


def test_each_model_reads_the_messages_in_its_own_chat_markup(smollm2, gemma, monkeypatch) -> None:
    """Role tags are messages, not text: the stage on Gemma gets Gemma's markup for the messages before the
    block, and the answer it gives comes back into SmolLM2's prompt in SmolLM2's markup."""
    from lmlang.multimodel import cascade as cascade_module

    prompts = {}
    run_stage = cascade_module.run_stage

    def spy(*args, **kwargs):
        stage = run_stage(*args, **kwargs)
        prompts[stage.model] = stage.run.prompt.text
        return stage

    monkeypatch.setattr(cascade_module, "run_stage", spy)
    query = lmlang.compile('"{:user}Name a primary colour. Answer with one word."\n'
                           'cascade "smollm2", "gemma3-270m" until margin(COLOUR) >= 2:\n'
                           '    "{:assistant}[COLOUR]" where len(TOKENS(COLOUR)) < 6 and STOPS_BEFORE(COLOUR, "\\n")\n')
    result = query.run("smollm2")
    assert "<start_of_turn>user\nName a primary colour" in prompts["gemma3-270m"]
    assert "<|im_start|>" not in prompts["gemma3-270m"]
    assert "<start_of_turn>" not in result.prompt
    assert result.prompt.endswith("<|im_start|>assistant\n" + result.variables["COLOUR"])
