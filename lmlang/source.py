"""Source text and positions in it.

Every AST node and every error points back into the text the user wrote, so that a message can show the line
and put a caret under the column.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Source:
    """A named piece of query text: a file, a Python docstring, or a string passed to ``compile``."""

    name: str
    text: str = field(repr=False)
    # Where this text sits inside a larger file (a docstring inside a .py file): added to lines for messages.
    line_offset: int = 0

    def position(self, offset: int) -> tuple[int, int]:
        """1-based (line, column) of a character offset."""
        offset = max(0, min(offset, len(self.text)))
        line = self.text.count("\n", 0, offset) + 1
        col = offset - (self.text.rfind("\n", 0, offset) + 1) + 1
        return line + self.line_offset, col

    def line_text(self, line: int) -> str:
        lines = self.text.split("\n")
        index = line - self.line_offset - 1
        return lines[index] if 0 <= index < len(lines) else ""

    def span(self, start: int, end: int) -> Span:
        return Span(self, start, end)


@dataclass(frozen=True)
class Span:
    """A half-open range of character offsets ``[start, end)`` in a :class:`Source`."""

    source: Source = field(compare=False)
    start: int
    end: int

    @property
    def line(self) -> int:
        return self.source.position(self.start)[0]

    @property
    def column(self) -> int:
        return self.source.position(self.start)[1]

    @property
    def end_line(self) -> int:
        return self.source.position(self.end)[0]

    @property
    def end_column(self) -> int:
        return self.source.position(self.end)[1]

    @property
    def text(self) -> str:
        return self.source.text[self.start : self.end]

    def to(self, other: Span) -> Span:
        """The span from the start of this one to the end of ``other``."""
        return Span(self.source, min(self.start, other.start), max(self.end, other.end))

    def shifted(self, delta: int, length: int | None = None) -> Span:
        """A span ``delta`` characters further on, ``length`` long (the same length by default)."""
        start = self.start + delta
        return Span(self.source, start, start + (self.end - self.start if length is None else length))

    def __str__(self) -> str:
        return f"{self.source.name}:{self.line}:{self.column}"
