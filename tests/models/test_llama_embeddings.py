from __future__ import annotations

import numpy
import pytest

from lmlang.errors import ModelError, UsageError
from lmlang.models.llama import Model, embedding, load

COOKING = ["How long should I boil an egg?", "How much salt do I put in pasta water?",
           "What spices go well with lentil soup?", "How do I make bread dough rise?"]
TRAVEL = ["Which train goes from Paris to Rome?", "Do I need a visa to visit Japan?",
          "What is the best time of year to visit Peru?", "How early should I arrive at the airport?"]

PROMPT = "The three primary colors are"


def test_an_embedding_is_a_unit_vector_of_n_embd(model: Model) -> None:
    vector = model.embed(COOKING[0])
    assert vector.shape == ({"smollm2": 576, "gemma3-270m": 640}[model.name],)
    assert vector.dtype == numpy.float64
    assert numpy.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)


def test_the_same_text_embeds_the_same_after_other_texts(model: Model) -> None:
    first = model.embed(COOKING[0])
    model.embed(TRAVEL[0] * 5)  # a longer text first: nothing of it may stay in the embedding cache
    numpy.testing.assert_array_equal(model.embed(COOKING[0]), first)


def test_two_cooking_questions_are_nearer_than_cooking_and_travel(model: Model) -> None:
    egg, salt = model.embed(COOKING[0]), model.embed(COOKING[1])
    for trip in TRAVEL[:3]:
        away = model.embed(trip)
        assert egg @ salt > max(egg @ away, salt @ away)


def test_each_questions_nearest_other_question_is_on_its_topic(model: Model) -> None:
    # How `route ..., examples=` decides: every text finds its topic among the other seven.
    texts = COOKING + TRAVEL
    vectors = numpy.array([model.embed(text) for text in texts])
    similarity = vectors @ vectors.T
    numpy.fill_diagonal(similarity, -1.0)
    topics = [text in COOKING for text in texts]
    assert [topics[int(i)] for i in similarity.argmax(axis=1)] == topics


def test_an_empty_text_is_a_usage_error(model: Model) -> None:
    with pytest.raises(UsageError, match="empty text"):
        model.embed("")


def test_a_text_longer_than_the_embedding_context_is_a_model_error(smollm2: Model) -> None:
    with pytest.raises(ModelError, match="too long to embed"):
        smollm2.embed(" word" * 600)
    assert smollm2.embed(" word" * 500).shape == (576,)


def test_a_long_text_embeds_the_same_in_slices_as_in_one_batch(monkeypatch: pytest.MonkeyPatch, smollm2: Model) -> None:
    text = " ".join(COOKING * 6)
    assert len(smollm2.tokenize(text, bos=True)) > 3 * embedding.N_EMBED_BATCH
    monkeypatch.setattr(embedding, "N_EMBED_BATCH", embedding.N_EMBED_CTX)
    whole = load("smollm2", n_ctx=768)  # another Model, so its embedding context is made with one batch
    assert whole is not smollm2
    assert float(whole.embed(text) @ smollm2.embed(text)) == pytest.approx(1.0, abs=1e-5)


def test_embedding_leaves_the_sequences_and_their_logits_alone(model: Model) -> None:
    prompt = model.tokenize(PROMPT, bos=True)
    with model.new_sequence() as before:
        before.append(prompt)
        kept = before.logits().copy()
        model.embed(COOKING[0])
        # the view into the generation context's output buffer is still the same logits
        numpy.testing.assert_array_equal(before.logits(), kept)
        greedy_before = greedy(model, prompt, 8)
    model.embed(TRAVEL[0])
    with model.new_sequence() as after:
        after.append(prompt)
        numpy.testing.assert_array_equal(after.logits(), kept)
    assert greedy(model, prompt, 8) == greedy_before


def greedy(model: Model, prompt: list[int], count: int) -> list[int]:
    out: list[int] = []
    with model.new_sequence() as seq:
        seq.append(prompt)
        for _ in range(count):
            out.append(int(numpy.argmax(seq.logits())))
            seq.append(out[-1:])
    return out
