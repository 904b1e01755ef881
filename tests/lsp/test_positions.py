"""Offsets ↔ LSP positions: 0-based lines, columns in the negotiated code units, LSP's three line endings."""

from __future__ import annotations

import pytest
from lsprotocol.types import Position, PositionEncodingKind

from lmlang.lsp.positions import offset_at, position_at

TEXT = "a😀b\r\nc\rd\né\x0cf"  # \x0c (form feed) is not a line break for LSP, unlike str.splitlines


@pytest.mark.parametrize(
    ("offset", "encoding", "line", "character"),
    [
        (2, PositionEncodingKind.Utf16, 0, 3),
        (2, PositionEncodingKind.Utf8, 0, 5),
        (2, PositionEncodingKind.Utf32, 0, 2),
        (5, PositionEncodingKind.Utf16, 1, 0),
        (7, PositionEncodingKind.Utf16, 2, 0),
        (11, PositionEncodingKind.Utf16, 3, 2),
        (11, PositionEncodingKind.Utf8, 3, 3),
    ],
)
def test_round_trip(offset: int, encoding: str, line: int, character: int) -> None:
    assert position_at(TEXT, offset, encoding) == Position(line=line, character=character)
    assert offset_at(TEXT, Position(line=line, character=character), encoding) == offset


def test_positions_past_the_end_of_a_line_stay_on_it() -> None:
    assert offset_at(TEXT, Position(line=1, character=40)) == 6
    assert offset_at(TEXT, Position(line=9, character=0)) == len(TEXT)
