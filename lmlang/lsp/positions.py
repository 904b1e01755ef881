"""Between lmlang's spans (character offsets) and LSP positions (0-based lines, columns in code units).

LSP counts columns in the code units of the negotiated encoding, UTF-16 unless the client asked otherwise, so a
character outside the Basic Multilingual Plane (an emoji) is two columns; lines end at ``\\n``, ``\\r\\n`` or ``\\r``
only, unlike ``str.splitlines``.
"""

from __future__ import annotations

import re

from lsprotocol import types

from lmlang.source import Span

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _line_starts(text: str) -> list[int]:
    return [0] + [m.end() for m in _LINE_BREAK.finditer(text)]


def _units(char: str, encoding: str) -> int:
    if encoding == types.PositionEncodingKind.Utf8:
        return len(char.encode("utf-8"))
    if encoding == types.PositionEncodingKind.Utf32:
        return 1
    return 2 if ord(char) > 0xFFFF else 1


def position_at(text: str, offset: int, encoding: str = types.PositionEncodingKind.Utf16) -> types.Position:
    """The LSP position of a character offset into ``text``."""
    offset = max(0, min(offset, len(text)))
    starts = _line_starts(text)
    line = max(i for i, start in enumerate(starts) if start <= offset)
    column = sum(_units(ch, encoding) for ch in text[starts[line] : offset])
    return types.Position(line=line, character=column)


def offset_at(text: str, position: types.Position, encoding: str = types.PositionEncodingKind.Utf16) -> int:
    """The character offset into ``text`` of an LSP position (clamped to the end of its line)."""
    starts = _line_starts(text)
    if position.line >= len(starts):
        return len(text)
    start = starts[position.line]
    end = starts[position.line + 1] if position.line + 1 < len(starts) else len(text)
    offset, units = start, 0
    while offset < end and text[offset] not in "\r\n" and units < position.character:
        units += _units(text[offset], encoding)
        offset += 1
    return offset


def span_range(span: Span, text: str, encoding: str = types.PositionEncodingKind.Utf16) -> types.Range:
    """The range of ``span`` in the document ``text``.

    A span normally points into the document itself; one that points into a text taken from it (a nested
    query's docstring parsed on its own) is moved to where that text sits in the document.
    """
    base = 0
    if span.source.text != text:
        found = text.find(span.source.text)
        base = found if found >= 0 else 0
    return types.Range(
        start=position_at(text, base + span.start, encoding), end=position_at(text, base + span.end, encoding)
    )
