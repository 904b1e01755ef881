"""The command line: exit codes, the stdout/stderr split, the JSON shape, errors without tracebacks."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from lmlang import LmlangWarning, __version__
from lmlang.cli import main

EXAMPLES = Path(__file__).parent.parent / "examples"


def write(tmp_path: Path, text: str, name: str = "q.lmq") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_version(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert __version__ in capsys.readouterr().out


def test_run_streams_prompt_and_values_to_stdout_and_stats_to_stderr(capsys, smollm2) -> None:
    assert main(["run", str(EXAMPLES / "hello.lmq")]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("Q: What is the capital of France?\nA: ")
    assert "ANSWER = " in out
    assert "smollm2" in err and "generated" in err


def test_run_json_shape(capsys, smollm2) -> None:
    assert main(["run", str(EXAMPLES / "hello.lmq"), "--json"]) == 0
    out, _ = capsys.readouterr()
    data = json.loads(out)
    assert set(data) >= {"prompt", "variables", "return", "model", "stats", "scores"}
    assert set(data["stats"]) == {"prefill_tokens", "generated_tokens", "seconds", "prefill_seconds"}
    assert data["model"] == "smollm2"
    assert data["return"] == data["variables"]["ANSWER"]
    assert data["prompt"].endswith(data["variables"]["ANSWER"])


def test_run_json_list_for_several_samples(capsys, smollm2) -> None:
    assert main(["run", str(EXAMPLES / "sample.lmq"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert isinstance(data, list) and len(data) == 3


def test_inputs_are_passed(tmp_path, capsys, smollm2) -> None:
    path = write(tmp_path, '"Say {word}:[X]" where len(TOKENS(X)) < 3\nreturn word\n')
    assert main(["run", path, "--input", "word=hello", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["return"] == "hello"


def test_missing_input_is_one_clear_sentence(tmp_path, capsys, smollm2) -> None:
    path = write(tmp_path, '"Q: {question}\\nA:[X]"\n')
    assert main(["run", path]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert "--input question=" in err and "Traceback" not in err


def test_syntax_error_names_file_line_column_with_caret(tmp_path, capsys) -> None:
    path = write(tmp_path, '"Q: [A]"\nfor x in :\n    "[B]"\n')
    assert main(["run", path]) == 2
    err = capsys.readouterr().err
    first = err.splitlines()[0]
    assert first.startswith(f"{path}:2:")
    assert "^" in err and "Traceback" not in err


def test_unknown_model_exit_1(capsys) -> None:
    assert main(["run", str(EXAMPLES / "hello.lmq"), "--model", "no-such-model"]) == 1
    err = capsys.readouterr().err
    assert "no-such-model" in err and "Traceback" not in err


def test_corrupt_gguf_exit_1(tmp_path, capsys) -> None:
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"not a model at all")
    assert main(["run", str(EXAMPLES / "hello.lmq"), "--model", str(bad)]) == 1
    assert "GGUF" in capsys.readouterr().err


def test_python_error_in_query_points_at_its_line(tmp_path, capsys, smollm2) -> None:
    path = write(tmp_path, '"Hello"\nx = 1 / 0\n')
    assert main(["run", path]) == 1
    err = capsys.readouterr().err
    assert f"{path}:2:" in err and "ZeroDivisionError" in err and "Traceback" not in err


def test_missing_file_is_usage_error(capsys) -> None:
    assert main(["run", "nowhere.lmq"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_bad_input_flag_is_usage_error(capsys) -> None:
    assert main(["run", str(EXAMPLES / "hello.lmq"), "--input", "oops"]) == 2


def test_check_examples_ok(capsys) -> None:
    files = [str(p) for p in EXAMPLES.iterdir()]
    assert main(["check", *files]) == 0


def test_check_reports_problems(tmp_path, capsys) -> None:
    path = write(tmp_path, '"[ANSWER]" where INT(ANSWR)\n')
    assert main(["check", path]) == 2
    assert "ANSWR" in capsys.readouterr().err


def test_ctrl_c_exits_130(monkeypatch, capsys) -> None:
    import lmlang.cli as cli

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_run", interrupted)
    assert main(["run", str(EXAMPLES / "hello.lmq")]) == 130


def test_no_command_is_usage_error(capsys) -> None:
    assert main([]) == 2


def test_an_error_after_streamed_text_ends_that_line_first(tmp_path, capsys, smollm2) -> None:
    assert main(["run", write(tmp_path, '"Q: [A]" where INT(A) and A in ["x"]\n')]) == 1
    out, err = capsys.readouterr()
    assert out == "Q: \n"
    assert "cannot all hold" in err


def test_lmql_options_without_meaning_here_are_warned_about_not_dropped(tmp_path, capsys, smollm2) -> None:
    source = 'argmax(chunksize=4, verbose=True)\n"Say hi:[X]" where len(TOKENS(X)) < 3\n'
    with pytest.warns(LmlangWarning) as said:
        assert main(["run", write(tmp_path, source)]) == 0
    lines = [warnings.formatwarning(w.message, w.category, w.filename, w.lineno) for w in said]
    assert "warning: the decoder option chunksize has no effect: lmlang makes no API requests" in lines[0]
    assert lines[1].startswith("warning: the decoder option verbose has no effect")


def test_lmql_only_decoders_get_a_clear_error(tmp_path, capsys) -> None:
    assert main(["check", write(tmp_path, 'var(n=2)\n"Say hi:[X]"\n')]) == 2
    assert "the decoder var (LMQL's experimental" in capsys.readouterr().err
