"""``lmlang lsp``, the command editors run, serves the same language server."""

from __future__ import annotations

import sys

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

pytestmark = pytest.mark.asyncio(loop_scope="module")

_COMMAND = [sys.executable, "-c", "import sys; from lmlang.cli import main; sys.exit(main(['lsp']))"]


@pytest_lsp.fixture(scope="module", config=ClientServerConfig(server_command=_COMMAND))
async def client(lsp_client: LanguageClient):
    await lsp_client.initialize_session(types.InitializeParams(capabilities=types.ClientCapabilities()))
    yield
    await lsp_client.shutdown_session()


async def test_lmlang_lsp_reports_diagnostics(client: LanguageClient) -> None:
    uri = "file:///tmp/lmlang-test/cli.lmq"
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=uri, language_id="lmlang", version=1, text='"Q: [A]" where FOO(A)\n'
            )
        )
    )
    while uri not in client.diagnostics:
        await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    assert [d.message.split(":")[0] for d in client.diagnostics[uri]] == ["unknown constraint function 'FOO'"]
