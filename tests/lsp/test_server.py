"""The language server, driven over stdio by a real LSP client (pytest-lsp), as an editor would."""

from __future__ import annotations

import pathlib
import sys

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.lmq")) + sorted((ROOT / "examples").glob("*.lmql"))

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_lsp.fixture(
    scope="module",
    config=ClientServerConfig(server_command=[sys.executable, "-m", "lmlang.lsp"]),
)
async def client(lsp_client: LanguageClient):
    await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=types.ClientCapabilities(
                text_document=types.TextDocumentClientCapabilities(
                    document_symbol=types.DocumentSymbolClientCapabilities(hierarchical_document_symbol_support=True),
                    hover=types.HoverClientCapabilities(content_format=[types.MarkupKind.Markdown]),
                    completion=types.CompletionClientCapabilities(
                        completion_item=types.ClientCompletionItemOptions(
                            documentation_format=[types.MarkupKind.Markdown]
                        )
                    ),
                )
            )
        )
    )
    yield
    await lsp_client.shutdown_session()


_opened = 0


async def open_document(client: LanguageClient, text: str, name: str | None = None) -> str:
    """Open ``text`` as a new document and wait for its diagnostics; returns its URI."""
    global _opened
    _opened += 1
    uri = f"file:///tmp/lmlang-test/{name or f'doc{_opened}.lmq'}"
    client.diagnostics.pop(uri, None)
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id="lmlang", version=1, text=text)
        )
    )
    await wait_for_diagnostics(client, uri)
    return uri


async def wait_for_diagnostics(client: LanguageClient, uri: str) -> list[types.Diagnostic]:
    while uri not in client.diagnostics:
        await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    return list(client.diagnostics[uri])


def spans(diagnostics: list[types.Diagnostic]) -> list[tuple[int, int, int, int, types.DiagnosticSeverity]]:
    return [
        (d.range.start.line, d.range.start.character, d.range.end.line, d.range.end.character, d.severity)
        for d in diagnostics
    ]


ERROR = types.DiagnosticSeverity.Error
INFORMATION = types.DiagnosticSeverity.Information


@pytest.mark.parametrize(
    ("text", "expected", "words"),
    [
        pytest.param('"Q: [A]" where\n', [(0, 14, 1, 0, ERROR)], "expected an expression", id="syntax"),
        pytest.param('x = (1,\n"Q: [A]"\n', [(0, 4, 0, 5, ERROR)], "never closed", id="unclosed-paren"),
        pytest.param('"Q: [1A]"\n', [(0, 4, 0, 8, ERROR)], "variable name", id="bad-hole"),
        pytest.param('"Q: [A]" where FOO(A)\n', [(0, 15, 0, 18, ERROR)], "unknown constraint function", id="unknown-fn"),
        pytest.param('"Q: [A]" where STOPS_AT(B, ".")\n', [(0, 24, 0, 25, ERROR)], "not a hole", id="not-a-hole"),
        pytest.param('"Q: [A]" where INT(A, 2)\n', [(0, 15, 0, 24, ERROR)], "takes 1 argument", id="arity"),
        pytest.param('"D: [D]" where REGEX(D, r"[0-9")\n', [(0, 24, 0, 31, ERROR)], "invalid regex", id="regex"),
        pytest.param("\"D: [D: r'[0-9']\"\n", [(0, 8, 0, 15, ERROR)], "invalid regex", id="regex-hole-type"),
        # Columns count UTF-16 code units: each emoji before the error is two of them.
        pytest.param('"😀😀 [A]" where FOO(A)\n', [(0, 17, 0, 20, ERROR)], "unknown constraint function", id="utf16"),
        pytest.param(
            'argmax\n    "Q: [A]"\nfrom "nosuchmodel"\n', [(2, 5, 2, 18, ERROR)], "unknown model", id="unknown-model"
        ),
        pytest.param(
            'argmax\n    "Q: [A]"\nfrom "openai/text-davinci-003"\n',
            [(2, 5, 2, 30, INFORMATION)],
            "not a local model; run with --model",
            id="remote-model",
        ),
        pytest.param(
            'cascade "smollm2", "gemma3-27m" until margin(A) > 1:\n    "Q: [A]"\n',
            [(0, 19, 0, 31, ERROR)],
            "unknown model",
            id="cascade-model",
        ),
        pytest.param(
            'ensemble "smollm2", "gemma3-27m" vote A:\n    "Q: [A]"\n',
            [(0, 20, 0, 32, ERROR)],
            "unknown model",
            id="ensemble-model",
        ),
        pytest.param(
            'ensemble "smollm2" vote B, samples=0:\n    "Q: [A]"\n',
            [(0, 24, 0, 25, ERROR), (0, 35, 0, 36, ERROR)],
            "vote B names no hole",
            id="ensemble-vote",
        ),
    ],
)
async def test_diagnostics_point_at_the_error(client: LanguageClient, text: str, expected: list, words: str) -> None:
    uri = await open_document(client, text)
    diagnostics = client.diagnostics[uri]
    assert spans(diagnostics) == expected
    assert words in diagnostics[0].message
    assert diagnostics[0].source == "lmlang"


async def test_diagnostics_follow_changes(client: LanguageClient) -> None:
    uri = await open_document(client, '"Q: [A]" where FOO(A)\n')
    assert len(client.diagnostics[uri]) == 1
    del client.diagnostics[uri]
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[
                types.TextDocumentContentChangePartial(
                    range=types.Range(start=types.Position(line=0, character=15), end=types.Position(line=0, character=18)),
                    text="INT",
                )
            ],
        )
    )
    assert await wait_for_diagnostics(client, uri) == []


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
async def test_examples_have_no_diagnostics(client: LanguageClient, path: pathlib.Path) -> None:
    uri = await open_document(client, path.read_text(), name=path.name)
    assert list(client.diagnostics[uri]) == []


async def hover_at(client: LanguageClient, uri: str, line: int, character: int) -> types.Hover | None:
    return await client.text_document_hover_async(
        types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=line, character=character)
        )
    )


HOVER_TEXT = (
    'argmax "Q: [A]" where STOPS_AT(A, ".") and len(TOKENS(A)) < 5 and margin(A) > 1 '
    "and consistency(A, 3) > 0.5 and logprob(A) > -2\n"
)


@pytest.mark.parametrize(
    ("word", "words"),
    [
        ("argmax", "Greedy decoding"),
        ("STOPS_AT", "first occurrence of the phrase"),
        ("TOKENS", "model tokens"),
        ("margin", "runner-up"),
        ("consistency", "sampled re-runs"),
        ("logprob", "mean log-probability"),
        ("where", "constraints on the holes"),
    ],
)
async def test_hover_documents_decoders_constraints_and_measures(client: LanguageClient, word: str, words: str) -> None:
    uri = await open_document(client, HOVER_TEXT)
    start = HOVER_TEXT.index(word)
    hover = await hover_at(client, uri, 0, start + 1)
    assert hover is not None and isinstance(hover.contents, types.MarkupContent)
    assert word in hover.contents.value and words in hover.contents.value
    assert (hover.range.start.character, hover.range.end.character) == (start, start + len(word))


async def test_hover_on_plain_text_is_empty(client: LanguageClient) -> None:
    uri = await open_document(client, 'x = 1\n"Q: where is it? [A]" where INT(A)\n')
    assert await hover_at(client, uri, 0, 0) is None
    assert await hover_at(client, uri, 1, 5) is None  # 'where' in the prompt's prose
    assert await hover_at(client, uri, 1, 24) is not None  # the clause keyword


async def test_hover_counts_utf16_columns(client: LanguageClient) -> None:
    uri = await open_document(client, '"😀 [A]" where INT(A)\n')
    hover = await hover_at(client, uri, 0, 16)  # 'INT' starts at code point 14, UTF-16 column 15
    assert hover is not None and "whole number" in hover.contents.value
    assert (hover.range.start.character, hover.range.end.character) == (15, 18)


async def complete(client: LanguageClient, uri: str, line: int, character: int) -> dict[str, types.CompletionItem]:
    result = await client.text_document_completion_async(
        types.CompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=line, character=character)
        )
    )
    items = result.items if isinstance(result, types.CompletionList) else result
    return {item.label: item for item in items}


async def test_completion_offers_keywords_constraints_and_holes(client: LanguageClient) -> None:
    uri = await open_document(client, '"Q: [ANSWER] and [N: int]"\n"More: [EXTRA]" where \n')
    items = await complete(client, uri, 1, 21)
    for hole in ("ANSWER", "N", "EXTRA"):
        assert items[hole].kind == types.CompletionItemKind.Variable
    for constraint in ("STOPS_AT", "INT", "REGEX", "TOKENS"):
        assert items[constraint].kind == types.CompletionItemKind.Function
        assert items[constraint].documentation is not None
    for measure in ("margin", "logprob", "consistency"):
        assert items[measure].kind == types.CompletionItemKind.Function
    for word in ("where", "distribution", "cascade", "until", "route", "ensemble", "vote", "from", "argmax",
                 "beam_sample"):
        assert word in items
    assert "vote VAR" in items["ensemble"].documentation.value
    assert items["sample"].kind == types.CompletionItemKind.Keyword


async def test_completion_keeps_holes_while_the_text_is_broken(client: LanguageClient) -> None:
    uri = await open_document(client, '"Q: [ANSWER]" where STOPS_AT(\n')
    assert client.diagnostics[uri]  # it does not parse
    assert "ANSWER" in await complete(client, uri, 0, 29)


async def test_document_symbols_list_holes_and_nested_queries(client: LanguageClient) -> None:
    uri = await open_document(client, (ROOT / "examples" / "nested.lmq").read_text(), name="symbols-nested.lmq")
    symbols = await client.text_document_document_symbol_async(
        types.DocumentSymbolParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )
    by_name = {s.name: s for s in symbols}
    assert by_name["one_word"].kind == types.SymbolKind.Function
    assert [c.name for c in by_name["one_word"].children] == ["WORD"]
    assert {"MOOD", "POEM"} <= set(by_name)
    lines = (ROOT / "examples" / "nested.lmq").read_text().split("\n")
    word = by_name["one_word"].children[0].selection_range
    assert lines[word.start.line][word.start.character : word.end.character] == "WORD"
    name = by_name["one_word"].selection_range
    assert lines[name.start.line][name.start.character : name.end.character] == "one_word"
    assert by_name["MOOD"].kind == types.SymbolKind.Variable


async def test_closing_clears_diagnostics(client: LanguageClient) -> None:
    uri = await open_document(client, '"Q: [A]" where FOO(A)\n')
    del client.diagnostics[uri]
    client.text_document_did_close(types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri)))
    assert await wait_for_diagnostics(client, uri) == []
