"""The README's commands are what CI runs."""

from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    command = next(line for line in ci.splitlines() if "pytest" in line)
    assert command.strip() in readme


def test_readme_example_command_names_an_existing_example() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "lmlang run examples/hello.lmq" in readme
    assert (ROOT / "examples" / "hello.lmq").exists()
