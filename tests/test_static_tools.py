"""The static tools (the syntax, checker and constraint modules, ``lmlang check``, ``lmlang lsp``) work where
llama.cpp cannot be imported: each test runs a fresh Python in which importing ``llama_cpp`` fails."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

BLOCKER = textwrap.dedent('''
    import sys

    class _NoLlama:
        def find_spec(self, name, path=None, target=None):
            if name == "llama_cpp" or name.startswith("llama_cpp."):
                raise ImportError(f"{name} is made unimportable for this test")
            return None

    sys.meta_path.insert(0, _NoLlama())
''')


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    site = tmp_path_factory.mktemp("nollama")
    (site / "sitecustomize.py").write_text(BLOCKER)
    paths = [str(site), str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}


def python(env: dict[str, str], *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, *args], env=env, input=stdin, capture_output=True, timeout=120)


def test_the_blocker_blocks(env) -> None:
    done = python(env, "-c", "import llama_cpp")
    assert done.returncode != 0 and b"made unimportable" in done.stderr


def test_the_static_modules_import_without_llama_cpp(env) -> None:
    code = ("import sys, lmlang, lmlang.syntax, lmlang.check, lmlang.constraints, lmlang.lsp.server; "
            "lmlang.compile('\"Q: [A]\" where INT(A)'); assert 'llama_cpp' not in sys.modules")
    done = python(env, "-c", code)
    assert done.returncode == 0, done.stderr.decode()


def test_lmlang_check_runs_without_llama_cpp(env, tmp_path: Path) -> None:
    good = tmp_path / "good.lmq"
    good.write_text('"Q: What is 2+2?\\nA: [ANSWER]" where INT(ANSWER)\n')
    bad = tmp_path / "bad.lmq"
    bad.write_text('"Q: [A]" where FOO(A)\n')
    assert python(env, "-m", "lmlang", "check", str(good)).returncode == 0
    done = python(env, "-m", "lmlang", "check", str(bad))
    assert done.returncode == 2 and b"FOO" in done.stdout + done.stderr, done.stderr.decode()
    assert b"Traceback" not in done.stderr


def _message(payload: dict) -> bytes:
    body = json.dumps(payload).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def _messages(stream: bytes) -> list[dict]:
    found = []
    while stream:
        header, _, rest = stream.partition(b"\r\n\r\n")
        length = int(header.split(b"Content-Length:")[1].split(b"\r\n")[0])
        found.append(json.loads(rest[:length]))
        stream = rest[length:]
    return found


def test_lmlang_lsp_serves_without_llama_cpp(env) -> None:
    uri = "file:///tmp/nollama.lmq"
    session = b"".join(_message(m) for m in [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}},
        {"jsonrpc": "2.0", "method": "initialized", "params": {}},
        {"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {
            "uri": uri, "languageId": "lmlang", "version": 1, "text": '"Q: [A]" where FOO(A)\n'}}},
        {"jsonrpc": "2.0", "id": 2, "method": "shutdown"},
        {"jsonrpc": "2.0", "method": "exit"},
    ])
    done = python(env, "-m", "lmlang", "lsp", stdin=session)
    replies = _messages(done.stdout)
    assert any(r.get("id") == 1 and "capabilities" in r.get("result", {}) for r in replies), done.stderr.decode()
    published = [r["params"] for r in replies if r.get("method") == "textDocument/publishDiagnostics"]
    assert published and "FOO" in published[-1]["diagnostics"][0]["message"]
