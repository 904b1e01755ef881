from __future__ import annotations

import itertools
import os
import pathlib
import subprocess
import sys

import numpy
import pytest

from lmlang.errors import ModelError, UsageError
from lmlang.models.llama import Model, load

TEXTS = [
    "Hello world",
    "  two leading spaces, and\ttabs\n\nnewlines\n",
    "naïve café — “quotes” ½ ∑",
    "日本語のテキストと中文",
    "emoji 😀👍🏽 and a family 👨‍👩‍👧",
    "code: def f(x): return x**2  # ok",
    "<|im_start|>user not special here <start_of_turn>",
    "1234567890 3.14159 -42",
]

PROMPT = "The three primary colors are"


def fresh(model: Model, *chunks: list[int]):
    seq = model.new_sequence()
    for chunk in chunks:
        seq.append(chunk)
    return seq


# -- vocabulary --------------------------------------------------------------------------------------------


def test_vocabulary_sizes(smollm2: Model, gemma: Model) -> None:
    assert smollm2.n_vocab == len(smollm2.token_bytes) == 49152
    assert gemma.n_vocab == len(gemma.token_bytes) == 262144


def test_end_of_generation_tokens(smollm2: Model, gemma: Model) -> None:
    assert smollm2.tokenize("<|im_end|>", special=True)[0] in smollm2.eog_tokens
    assert gemma.tokenize("<end_of_turn>", special=True)[0] in gemma.eog_tokens
    for model in (smollm2, gemma):
        assert model.eog_tokens <= model.special_tokens
        assert all(model.token_bytes[token] == b"" for token in model.special_tokens)


def test_bos_follows_the_gguf_metadata(smollm2: Model, gemma: Model) -> None:
    assert not smollm2.add_bos
    assert smollm2.tokenize("Hi", bos=True) == smollm2.tokenize("Hi")
    assert gemma.add_bos and gemma.bos_token == 2
    assert gemma.tokenize("Hi", bos=True) == [2, *gemma.tokenize("Hi")]


@pytest.mark.parametrize("text", TEXTS)
def test_token_bytes_spell_the_text_exactly(model: Model, text: str) -> None:
    tokens = model.tokenize(text)
    assert not set(tokens) & model.special_tokens
    assert b"".join(model.token_bytes[token] for token in tokens) == text.encode()
    assert model.detokenize(tokens) == text.encode()


def test_chunks_tokenized_apart_concatenate_without_added_spaces(model: Model) -> None:
    tokens = model.tokenize("Question:") + model.tokenize(" what") + model.tokenize("\nAnswer:")
    assert model.detokenize(tokens) == b"Question: what\nAnswer:"


def test_special_spellings_only_with_special(smollm2: Model, gemma: Model) -> None:
    assert smollm2.tokenize("<|im_start|>user", special=True) == [1, *smollm2.tokenize("user")]
    assert gemma.tokenize("<start_of_turn>user", special=True)[0] in gemma.special_tokens
    assert not set(gemma.tokenize("<start_of_turn>user")) & gemma.special_tokens


def test_role_markers_follow_each_chat_template(smollm2: Model, gemma: Model) -> None:
    assert smollm2.role_markers("user") == ("<|im_start|>user\n", "<|im_end|>\n")
    assert smollm2.role_markers("system") == ("<|im_start|>system\n", "<|im_end|>\n")
    assert smollm2.role_markers("assistant") == ("<|im_start|>assistant\n", "<|im_end|>\n")
    assert gemma.role_markers("user") == ("<start_of_turn>user\n", "<end_of_turn>\n")
    assert gemma.role_markers("assistant") == ("<start_of_turn>model\n", "<end_of_turn>\n")
    # Gemma has no system turn: a system message is spoken as a user turn.
    assert gemma.role_markers("system") == gemma.role_markers("user")
    for model in (smollm2, gemma):
        prefix, suffix = model.role_markers("user")
        assert model.tokenize(prefix, special=True)[0] in model.special_tokens
        assert model.tokenize(suffix, special=True)[0] in model.eog_tokens


# -- sequences -----------------------------------------------------------------------------------------------


# llama.cpp's CPU kernels round differently depending on how many tokens one decode holds and on how many cache
# cells attention spans, so two evaluations of the same tokens agree to the last bit only when they are split into
# batches the same way and sit in similar cells; the exact comparisons below mirror the batch shapes, and
# `test_batch_shapes_change_only_rounding` bounds the rest.


def test_appending_in_parts_equals_the_same_parts_elsewhere(model: Model) -> None:
    tokens = model.tokenize(PROMPT, bos=True)
    other = model.tokenize("Unrelated text in another sequence.")
    with (
        fresh(model, other),
        fresh(model, tokens[:3], tokens[3:]) as here,
        fresh(model, tokens[:3], tokens[3:]) as there,
    ):
        assert here.tokens == there.tokens == tokens
        numpy.testing.assert_allclose(here.logits(), there.logits(), atol=1e-3)


def test_batch_shapes_change_only_rounding(model: Model) -> None:
    tokens = model.tokenize(PROMPT, bos=True)
    one_by_one = [[token] for token in tokens]
    with (
        fresh(model, tokens[:3], tokens[3:]) as parts,
        fresh(model, tokens) as whole,
        fresh(model, *one_by_one) as single,
    ):
        for seq in (parts, single):
            assert numpy.argmax(seq.logits()) == numpy.argmax(whole.logits())
            numpy.testing.assert_allclose(seq.logits(), whole.logits(), atol=1.5)


def test_logits_are_a_read_only_float32_vector(model: Model) -> None:
    with fresh(model, model.tokenize(PROMPT, bos=True)) as seq:
        logits = seq.logits()
        assert logits.dtype == numpy.float32 and logits.shape == (model.n_vocab,)
        with pytest.raises(ValueError):
            logits[0] = 0.0


def test_logits_survive_other_sequences_decoding(model: Model) -> None:
    tokens = model.tokenize(PROMPT, bos=True)
    with fresh(model, tokens) as first:
        before = first.logits().copy()
        with fresh(model, model.tokenize("Something else entirely", bos=True)):
            numpy.testing.assert_array_equal(first.logits(), before)


def test_truncate_then_append_equals_fresh_evaluation(model: Model) -> None:
    tokens = model.tokenize(PROMPT, bos=True)
    other = model.tokenize(" not")
    with fresh(model, tokens[:3], tokens[3:]) as seq:
        seq.truncate(4)
        assert seq.tokens == tokens[:4]
        # truncating re-evaluates the last kept token alone
        with fresh(model, tokens[:3], tokens[3:4]) as reference:
            numpy.testing.assert_allclose(seq.logits(), reference.logits(), atol=1e-3)
        seq.truncate(4)  # nothing to drop
        seq.truncate(3)
        seq.append(other)
        assert seq.tokens == tokens[:3] + other
        # the kept last token goes again with the appended ones
        with fresh(model, tokens[:2], tokens[2:3] + other) as reference:
            numpy.testing.assert_allclose(seq.logits(), reference.logits(), atol=1e-3)


def test_truncate_costs_no_evaluation_until_needed(model: Model) -> None:
    tokens = model.tokenize(PROMPT, bos=True)
    with fresh(model, tokens) as seq:
        before = model.evaluated_tokens
        seq.truncate(3)
        assert model.evaluated_tokens == before
        seq.append(tokens[3:5])
        # the kept last token is evaluated again together with the new ones
        assert model.evaluated_tokens == before + 3


def test_truncate_to_nothing(model: Model) -> None:
    with fresh(model, model.tokenize(PROMPT, bos=True)) as seq:
        seq.truncate(0)
        assert seq.tokens == []
        with pytest.raises(UsageError):
            seq.logits()


def test_fork_shares_the_prefix_then_diverges(model: Model) -> None:
    prefix = model.tokenize(PROMPT, bos=True)
    red, blue = model.tokenize(" red")[0], model.tokenize(" blue")[0]
    with fresh(model, prefix) as parent:
        before = model.evaluated_tokens
        with parent.fork() as child:
            assert model.evaluated_tokens == before
            assert child.tokens == parent.tokens and child.seq_id != parent.seq_id
            numpy.testing.assert_array_equal(child.logits(), parent.logits())
            parent.append([red])
            child.append([blue])
            assert model.evaluated_tokens == before + 2
            assert parent.tokens[-1] == red and child.tokens[-1] == blue
            with fresh(model, prefix, [red]) as want_red, fresh(model, prefix, [blue]) as want_blue:
                numpy.testing.assert_allclose(parent.logits(), want_red.logits(), atol=1e-3)
                numpy.testing.assert_allclose(child.logits(), want_blue.logits(), atol=1e-3)


def test_decode_step_matches_separate_appends(smollm2: Model) -> None:
    # SmolLM2 only: Gemma's quantized kernels round differently for a batch of 3 rows than for 1 row.
    model = smollm2
    prompts = [model.tokenize(text) for text in ("One, two,", "Red, green,", "Monday, Tuesday,")]
    nexts = [model.tokenize(text)[0] for text in (" three", " blue", " Wednesday")]
    batched = [fresh(model, prompt) for prompt in prompts]
    before = model.evaluated_tokens
    model.decode_step(batched, nexts)
    assert model.evaluated_tokens == before + 3
    for seq, prompt, token in zip(batched, prompts, nexts):
        with fresh(model, prompt, [token]) as alone:
            assert seq.tokens == prompt + [token]
            numpy.testing.assert_allclose(seq.logits(), alone.logits(), atol=1e-3)
        seq.release()


def test_decode_step_on_gemma_picks_the_same_tokens(gemma: Model) -> None:
    prompts = [gemma.tokenize(text, bos=True) for text in ("One, two,", "Red, green,", "Monday, Tuesday,")]
    batched = [fresh(gemma, prompt) for prompt in prompts]
    gemma.decode_step(batched, [int(numpy.argmax(seq.logits())) for seq in batched])
    for seq, prompt in zip(batched, prompts):
        with fresh(gemma, prompt, seq.tokens[-1:]) as alone:
            assert numpy.argmax(seq.logits()) == numpy.argmax(alone.logits())
            numpy.testing.assert_allclose(seq.logits(), alone.logits(), atol=0.5)
        seq.release()


def test_decode_step_after_truncate_evaluates_the_kept_token_too(smollm2: Model) -> None:
    model = smollm2
    tokens = model.tokenize(PROMPT)
    with fresh(model, tokens[:2], tokens[2:]) as cut, fresh(model, tokens[:2], tokens[2:]) as whole:
        cut.truncate(3)
        before = model.evaluated_tokens
        model.decode_step([cut, whole], [tokens[3], 13])
        assert model.evaluated_tokens == before + 3
        assert cut.tokens == tokens[:4] and whole.tokens == tokens + [13]
        with fresh(model, tokens[:2], tokens[2:4]) as reference:
            assert numpy.argmax(cut.logits()) == numpy.argmax(reference.logits())


def test_pushed_tokens_of_several_sequences_are_evaluated_in_one_batch(smollm2: Model) -> None:
    model = smollm2
    prompts = [model.tokenize(text) for text in ("One, two,", "Red, green,")]
    chains = [model.tokenize(" three, four"), model.tokenize(" blue")]
    batched = [fresh(model, prompt) for prompt in prompts]
    for seq, chain in zip(batched, chains):
        seq.push(chain)
    before = model.evaluated_tokens
    rows = model.evaluate_pushed(batched, [len(chains[0]), 1])
    assert model.evaluated_tokens == before + len(chains[0]) + 1
    assert [len(r) for r in rows] == [len(chains[0]) - 1, 0]
    for seq, prompt, chain, along in zip(batched, prompts, chains, rows):
        assert seq.tokens == prompt + chain
        for i, row in enumerate(along):  # the logits after each token of the chain but the last
            with fresh(model, prompt, chain[:i + 1]) as alone:
                assert numpy.argmax(row) == numpy.argmax(alone.logits())
                numpy.testing.assert_allclose(row, alone.logits(), atol=0.5)
        with fresh(model, prompt, chain) as alone:
            numpy.testing.assert_allclose(seq.logits(), alone.logits(), atol=0.5)
        seq.release()
    with fresh(model, [1]) as seq:
        with pytest.raises(UsageError, match="1 are pushed|0 are pushed"):
            model.evaluate_pushed([seq], [1])


def test_long_prompts_are_evaluated_in_batches() -> None:
    model = load("smollm2", n_ctx=300)  # llama.cpp caps its batch at the n_ctx asked for: 300 tokens
    batch = model._n_batch
    tokens = model.tokenize(" alpha beta gamma delta" * 80)
    assert batch < len(tokens) <= model.n_ctx
    with fresh(model, tokens) as seq:
        assert seq.tokens == tokens
        logits = seq.logits().copy()
    # one after the other, so both use the same cache cells: attention over more cells rounds differently
    with fresh(model, tokens[:batch], tokens[batch:]) as reference:
        numpy.testing.assert_allclose(logits, reference.logits(), atol=1e-3)


def test_invalid_token_is_a_model_error_and_changes_nothing(smollm2: Model) -> None:
    with fresh(smollm2, [1, 2]) as seq:
        before = seq.logits().copy()
        with pytest.raises(ModelError, match="outside the vocabulary"):
            seq.append([smollm2.n_vocab + 5])
        assert seq.tokens == [1, 2]
        numpy.testing.assert_allclose(seq.logits(), before, atol=1e-3)


def test_decode_step_rejects_mismatched_arguments(smollm2: Model) -> None:
    with fresh(smollm2, [1]) as seq:
        with pytest.raises(UsageError):
            smollm2.decode_step([seq], [1, 2])
        with pytest.raises(UsageError):
            smollm2.decode_step([seq, seq], [1, 2])


def greedy(model: Model, prompt: list[int], count: int) -> list[int]:
    out: list[int] = []
    with fresh(model, prompt) as seq:
        for _ in range(count):
            out.append(int(numpy.argmax(seq.logits())))
            seq.append(out[-1:])
    return out


def test_greedy_generation_matches_llama_cpp_python(model: Model) -> None:
    from lmlang.models.llama import plain_llama

    prompt = model.tokenize(PROMPT, bos=True)
    reference = plain_llama(model, n_ctx=512)
    try:
        expected = list(itertools.islice(reference.generate(prompt, top_k=1, temp=0.0), 20))
    finally:
        reference.close()
    assert greedy(model, prompt, 20) == expected


def test_no_token_is_evaluated_twice(model: Model) -> None:
    prompt = model.tokenize(PROMPT, bos=True)
    before = model.evaluated_tokens
    greedy(model, prompt, 10)
    assert model.evaluated_tokens - before == len(prompt) + 10


def test_sequences_are_reused_after_release(smollm2: Model) -> None:
    seq = smollm2.new_sequence()
    seq_id = seq.seq_id
    seq.release()
    with smollm2.new_sequence() as again:
        assert again.seq_id == seq_id
        assert again.tokens == []
    with pytest.raises(UsageError):
        seq.append([1])


def test_running_out_of_sequences_says_how_to_get_more() -> None:
    model = load("smollm2", n_ctx=512, n_seq_max=2)
    first, second = model.new_sequence(), model.new_sequence()
    with pytest.raises(ModelError, match="n_seq_max"):
        model.new_sequence()
    first.release()
    second.release()


def test_full_context_says_how_to_enlarge_it() -> None:
    model = load("smollm2", n_ctx=256)
    assert model.n_ctx == 256
    words = model.tokenize(" word" * 200)
    with model.new_sequence() as seq:
        with pytest.raises(ModelError, match="n_ctx"):
            seq.append(words + words)
        assert seq.tokens == []
        seq.append(words[:10])
        assert seq.tokens == words[:10]


def test_shared_context_full_rolls_back_and_stays_usable() -> None:
    model = load("smollm2", n_ctx=256)
    words = model.tokenize(" word" * 150)
    with model.new_sequence() as first, model.new_sequence() as second:
        first.append(words)
        with pytest.raises(ModelError, match="n_ctx"):
            second.append(words)
        assert second.tokens == []
        first.truncate(50)
        second.append(words)
        assert second.tokens == words


def test_corrupt_gguf_is_reported_not_crashed_on(tmp_path: pathlib.Path, smollm2: Model) -> None:
    truncated = tmp_path / "truncated.gguf"
    with smollm2.path.open("rb") as whole:
        truncated.write_bytes(whole.read(3_000_000))
    with pytest.raises(ModelError, match="is not a valid GGUF model file"):
        load(str(truncated))


LOAD_AND_DECODE = "from lmlang.models.llama import load; load().new_sequence().append([1, 2, 3])"


def run_python(code: str, debug: bool) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "LMLANG_DEBUG"}
    if debug:
        env["LMLANG_DEBUG"] = "1"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)


def test_llama_cpp_logging_is_silenced() -> None:
    done = run_python(LOAD_AND_DECODE, debug=False)
    assert done.stderr == "" and done.stdout == ""


def test_llama_cpp_logging_shows_with_lmlang_debug() -> None:
    assert "llama" in run_python(LOAD_AND_DECODE, debug=True).stderr
