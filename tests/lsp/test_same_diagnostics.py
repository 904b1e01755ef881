"""``lmlang check FILE`` and the language server report the same diagnostics: checks, places, messages, codes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lmlang.cli import main
from lmlang.lsp.diagnostics import analyse

BROKEN = {
    "unknown_function.lmq": '"Q: [A]" where FOO(A)\n',
    "arity.lmq": '"Q: [A]" where INT(A, 3)\n',
    "not_a_hole.lmq": '"Q: [A]" where INT(B)\n',
    "bad_regex.lmq": '"Q: [A]" where REGEX(A, r"[a-")\n',
    "unknown_decoder.lmq": 'bogus\n    "Q: [A]"\n',
    "decoder_argument.lmq": 'argmax(n=3)\n    "Q: [A]"\n',
    "decoder_value.lmq": 'beam(n=0, token_healing="x")\n    "Q: [A]"\n',
    "unknown_model.lmq": 'argmax\n    "Q: [A]"\nfrom\n    "no-such-model"\n',
    "remote_model.lmq": 'argmax\n    "Q: [A]"\nfrom\n    "openai/gpt-4"\n',
    "cascade_model.lmq": 'cascade "smollm2", "nonexistent-model" until margin(A) > 0.5:\n    "Q: [A]"\n',
    "syntax.lmq": '"Q: [A]" where (\n',
    "several.lmq": '"Q: [A] [B]" where FOO(A) and INT(C) and REGEX(B, r"(")\n',
}
LINE = re.compile(r"^(.*):(\d+):(\d+): error\[([a-z-]+)\]: (.*)$")


def cli_diagnostics(path: Path, capsys: pytest.CaptureFixture[str]) -> list[tuple[int, int, str, str]]:
    main(["check", str(path)])
    found = []
    for line in capsys.readouterr().err.splitlines():
        matched = LINE.match(line)
        if matched:
            found.append((int(matched[2]), int(matched[3]), matched[4], matched[5]))
    return found


def lsp_diagnostics(path: Path) -> list[tuple[int, int, str, str]]:
    _, diagnostics = analyse(path.read_text(), str(path))
    return [(d.range.start.line + 1, d.range.start.character + 1, str(d.code), d.message) for d in diagnostics]


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_the_cli_and_the_language_server_agree(name: str, tmp_path: Path, capsys) -> None:
    path = tmp_path / name
    path.write_text(BROKEN[name])
    from_cli = cli_diagnostics(path, capsys)
    assert from_cli, f"lmlang check found nothing wrong in {name}"
    assert from_cli == lsp_diagnostics(path)


def test_each_kind_of_problem_has_its_own_code(tmp_path: Path, capsys) -> None:
    codes = {}
    for name, text in BROKEN.items():
        path = tmp_path / name
        path.write_text(text)
        codes[name] = [code for _, _, code, _ in lsp_diagnostics(path)]
    assert codes["unknown_function.lmq"] == ["unknown-function"]
    assert codes["arity.lmq"] == ["wrong-arguments"]
    assert codes["not_a_hole.lmq"] == ["not-a-hole"]
    assert codes["bad_regex.lmq"] == ["invalid-regex"]
    assert codes["unknown_decoder.lmq"] == ["unknown-decoder"]
    assert codes["decoder_argument.lmq"] == ["decoder-argument"]
    assert codes["unknown_model.lmq"] == ["unknown-model"]
    assert codes["remote_model.lmq"] == ["remote-model"]
    assert codes["cascade_model.lmq"] == ["unknown-model"]
    assert codes["syntax.lmq"] == ["lmlang-syntax-error"]
    assert codes["several.lmq"] == ["unknown-function", "not-a-hole", "invalid-regex"]


def test_a_remote_model_name_does_not_fail_the_check(tmp_path: Path, capsys) -> None:
    path = tmp_path / "remote.lmq"
    path.write_text(BROKEN["remote_model.lmq"])
    assert main(["check", str(path)]) == 0
