"""The lmlang language server: diagnostics, hover, completion and outline for ``.lmq`` files, over stdio."""

from __future__ import annotations

import re

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.workspace import TextDocument

from lmlang.constraints.catalog import CONSTRAINT_FUNCTIONS
from lmlang.decoding.catalog import DECODERS
from lmlang.lsp import diagnostics, documentation, outline
from lmlang.lsp.positions import offset_at, position_at
from lmlang.syntax import KEYWORDS, ast

_WORD = re.compile(r"[A-Za-z_]\w*")

_KINDS = {
    "constraint": types.CompletionItemKind.Function,
    "decoder": types.CompletionItemKind.Keyword,
    "measure": types.CompletionItemKind.Function,
    "keyword": types.CompletionItemKind.Keyword,
}


class LmlangServer(LanguageServer):
    """Keeps each open document's program (``None`` while its text does not parse)."""

    def __init__(self) -> None:
        super().__init__("lmlang", "0.1.0")
        self.programs: dict[str, ast.Program | None] = {}

    def encoding(self) -> str:
        return self.workspace.position_encoding or types.PositionEncodingKind.Utf16

    def current_program(self, document: TextDocument) -> ast.Program | None:
        """The program of the document's current text, if that text parses (positions are only valid then)."""
        program = self.programs.get(document.uri)
        return program if program is not None and program.span.source.text == document.source else None

    def refresh(self, uri: str) -> None:
        document = self.workspace.get_text_document(uri)
        program, found = diagnostics.analyse(document.source, document.path or uri, self.encoding())
        self.programs[uri] = program
        self.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=found))


server = LmlangServer()


@server.feature(types.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: LmlangServer, params: types.DidOpenTextDocumentParams) -> None:
    ls.refresh(params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: LmlangServer, params: types.DidChangeTextDocumentParams) -> None:
    ls.refresh(params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: LmlangServer, params: types.DidCloseTextDocumentParams) -> None:
    ls.programs.pop(params.text_document.uri, None)
    ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=params.text_document.uri, diagnostics=[]))


def _word_at(document: TextDocument, position: types.Position, encoding: str) -> tuple[str, int, int] | None:
    """The identifier under the cursor and its start and end offsets."""
    text = document.source
    offset = offset_at(text, position, encoding)
    for match in _WORD.finditer(text, max(0, text.rfind("\n", 0, offset) + 1)):
        if match.start() > offset:
            break
        if match.start() <= offset <= match.end():
            return match.group(), match.start(), match.end()
    return None


def _in_prompt_text(ls: LmlangServer, document: TextDocument, offset: int) -> bool:
    program = ls.current_program(document)
    return program is not None and outline.in_prompt_text(program, offset)


@server.feature(types.TEXT_DOCUMENT_HOVER)
def hover(ls: LmlangServer, params: types.HoverParams) -> types.Hover | None:
    document = ls.workspace.get_text_document(params.text_document.uri)
    found = _word_at(document, params.position, ls.encoding())
    entry = documentation.lookup(found[0]) if found else None
    if found is None or entry is None or _in_prompt_text(ls, document, found[1]):
        return None
    _, start, end = found
    text = document.source
    return types.Hover(
        contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=entry.markdown()),
        range=types.Range(start=position_at(text, start, ls.encoding()), end=position_at(text, end, ls.encoding())),
    )


@server.feature(types.TEXT_DOCUMENT_COMPLETION)
def completion(ls: LmlangServer, params: types.CompletionParams) -> types.CompletionList:
    document = ls.workspace.get_text_document(params.text_document.uri)
    program = ls.current_program(document)
    items = [
        types.CompletionItem(
            label=name,
            kind=types.CompletionItemKind.Variable,
            detail="hole",
            documentation=f"The value the model writes into [{name}].",
            sort_text=f"0{name}",
        )
        for name in outline.hole_names(program, document.source)
    ]
    items += [_documented_item(e) for e in documentation.ENTRIES.values() if e.category != "keyword"]
    items += [_keyword_item(k) for k in sorted(KEYWORDS) if k not in DECODERS]
    return types.CompletionList(is_incomplete=False, items=items)


def _documented_item(entry: documentation.Entry) -> types.CompletionItem:
    return types.CompletionItem(
        label=entry.name,
        kind=_KINDS[entry.category],
        detail=entry.usage,
        documentation=types.MarkupContent(kind=types.MarkupKind.Markdown, value=entry.markdown()),
        sort_text=f"{1 if entry.name in CONSTRAINT_FUNCTIONS else 2}{entry.name}",
    )


def _keyword_item(keyword: str) -> types.CompletionItem:
    doc = documentation.lookup(keyword)
    return types.CompletionItem(
        label=keyword,
        kind=types.CompletionItemKind.Keyword,
        documentation=types.MarkupContent(kind=types.MarkupKind.Markdown, value=doc.markdown()) if doc else None,
        sort_text=f"3{keyword}",
    )


@server.feature(types.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
def document_symbols(ls: LmlangServer, params: types.DocumentSymbolParams) -> list[types.DocumentSymbol]:
    document = ls.workspace.get_text_document(params.text_document.uri)
    program = ls.current_program(document)
    return [] if program is None else outline.symbols(program, document.source, ls.encoding())
