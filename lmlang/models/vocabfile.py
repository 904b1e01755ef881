"""A model's token table kept on disk, so that a new process does not read it token by token from llama.cpp.

Reading the pieces of Gemma 3's 262,144 tokens through llama.cpp's C API costs about a third of a second, a visible
part of a cold start; the same table read back from a file costs a few milliseconds. A file is keyed by the model
file's path, size and modification time and by llama-cpp-python's version (how pieces are spelt), lives in
``~/.cache/lmlang/vocab`` and is rewritten whenever any of those change; at most :data:`FILES_KEPT` are kept, the
least recently used removed first. Any fault (a read-only home, a damaged file) only means reading from llama.cpp
again.
"""

from __future__ import annotations

import hashlib
import os
import pathlib

import numpy as np

FILES_KEPT = 16
_FORMAT = 1


class TokenTable:
    """Each token's text bytes (empty for special tokens), the special tokens, and those that end generation."""

    def __init__(self, pieces: list[bytes], special: list[int], eog: list[int],
                 blob: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        self.pieces = pieces
        self.special = special
        self.eog = eog
        self._blob = blob

    @property
    def blob(self) -> tuple[np.ndarray, np.ndarray]:
        """Every piece's bytes end to end (uint8) and where each piece ends in them: a vocabulary-wide question
        (which tokens start with these bytes?) answered with numpy instead of a loop over the pieces."""
        if self._blob is None:
            ends = np.cumsum([len(p) for p in self.pieces], dtype=np.int64)
            self._blob = np.frombuffer(b"".join(self.pieces), dtype=np.uint8), ends
        return self._blob


def directory() -> pathlib.Path:
    return pathlib.Path.home() / ".cache" / "lmlang" / "vocab"


def _file_for(model_path: pathlib.Path, version: str) -> pathlib.Path:
    stat = model_path.stat()
    key = f"{_FORMAT}|{model_path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{version}"
    return directory() / (hashlib.sha1(key.encode()).hexdigest() + ".npz")


def load(model_path: pathlib.Path, version: str) -> TokenTable | None:
    """The table saved for this model file, or None when there is none (or it cannot be read)."""
    try:
        path = _file_for(model_path, version)
        with np.load(path) as data:
            ends = data["ends"]
            flat = data["blob"]
            special = data["special"].tolist()
            eog = data["eog"].tolist()
        os.utime(path)  # most recently used
    except (OSError, KeyError, ValueError):
        return None
    blob = flat.tobytes()
    starts = np.concatenate([[0], ends[:-1]]).tolist()
    pieces = [blob[a:b] for a, b in zip(starts, ends.tolist())]
    return TokenTable(pieces, special, eog, (flat, ends))


def save(model_path: pathlib.Path, version: str, table: TokenTable) -> None:
    """Keep ``table`` for the next process; silently nothing where the cache cannot be written."""
    try:
        path = _file_for(model_path, version)
        path.parent.mkdir(parents=True, exist_ok=True)
        flat, ends = table.blob
        temporary = path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(temporary, ends=ends, blob=flat,
                 special=np.asarray(table.special, dtype=np.int64), eog=np.asarray(table.eog, dtype=np.int64))
        os.replace(temporary, path)  # whole or absent, for a process reading it at the same time
        _prune(path.parent)
    except OSError:
        return


def _prune(folder: pathlib.Path) -> None:
    files = sorted(folder.glob("*.npz"), key=lambda f: f.stat().st_mtime)
    for old in files[:-FILES_KEPT]:
        try:
            old.unlink()
        except OSError:
            pass
