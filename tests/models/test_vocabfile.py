"""The token table kept on disk (lmlang.models.vocabfile) reads back exactly what llama.cpp gives."""

from __future__ import annotations

import pathlib

import pytest

from lmlang.models import vocabfile


@pytest.fixture
def cache(tmp_path, monkeypatch) -> pathlib.Path:
    monkeypatch.setattr(vocabfile, "directory", lambda: tmp_path / "vocab")
    return tmp_path / "vocab"


def test_a_table_reads_back_as_written(tmp_path, cache) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"weights")
    table = vocabfile.TokenTable([b"", b"a", b"\xe2\x82", b"", b"hello"], [0, 3], [3])
    vocabfile.save(model, "1.0", table)
    back = vocabfile.load(model, "1.0")
    assert back is not None
    assert (back.pieces, back.special, back.eog) == (table.pieces, table.special, table.eog)
    assert vocabfile.load(model, "2.0") is None  # another llama-cpp-python: read again
    model.write_bytes(b"other weights")
    assert vocabfile.load(model, "1.0") is None  # another file under the same name


def test_a_damaged_file_is_read_from_the_model_again(tmp_path, cache) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"weights")
    vocabfile.save(model, "1.0", vocabfile.TokenTable([b"a"], [], []))
    for file in cache.glob("*.npz"):
        file.write_bytes(b"not a table")
    assert vocabfile.load(model, "1.0") is None


def test_at_most_files_kept_remain(tmp_path, cache) -> None:
    for i in range(vocabfile.FILES_KEPT + 3):
        model = tmp_path / f"m{i}.gguf"
        model.write_bytes(b"w")
        vocabfile.save(model, "1.0", vocabfile.TokenTable([b"a"], [], []))
    assert len(list(cache.glob("*.npz"))) == vocabfile.FILES_KEPT


def test_the_saved_table_is_the_one_llama_cpp_gives(gemma) -> None:
    table = gemma.read_token_table()
    assert gemma.token_bytes == table.pieces
    assert gemma.special_tokens == frozenset(table.special) and gemma.eog_tokens == frozenset(table.eog)
