"""The accuracy-cost curve as a PNG, drawn and encoded in pure Python (no plotting library is a dependency).

Cost runs left to right and accuracy bottom to top, each scaled to the data: the cascade's points joined in blue,
the single models in red, joined in grey by the line random mixing of the two would follow.
"""

from __future__ import annotations

import itertools
import struct
import zlib
from pathlib import Path

WIDTH, HEIGHT, MARGIN = 480, 320, 30
WHITE, BLACK, GREY, BLUE, RED = (255, 255, 255), (0, 0, 0), (170, 170, 170), (30, 90, 220), (220, 40, 40)


class Canvas:
    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.pixels = [[WHITE] * width for _ in range(height)]

    def dot(self, x: int, y: int, color: tuple[int, int, int], radius: int = 0) -> None:
        for dy in range(-radius, radius + 1):
            for dx in range(-radius, radius + 1):
                if 0 <= x + dx < self.width and 0 <= y + dy < self.height:
                    self.pixels[y + dy][x + dx] = color

    def line(self, a: tuple[int, int], b: tuple[int, int], color: tuple[int, int, int]) -> None:
        steps = max(abs(b[0] - a[0]), abs(b[1] - a[1]), 1)
        for i in range(steps + 1):
            self.dot(round(a[0] + (b[0] - a[0]) * i / steps), round(a[1] + (b[1] - a[1]) * i / steps), color)

    def png(self) -> bytes:
        raw = b"".join(b"\x00" + bytes(c for pixel in row for c in pixel) for row in self.pixels)

        def chunk(kind: bytes, data: bytes) -> bytes:
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def accuracy_cost(path: Path, cascade: list[tuple[float, float]], singles: list[tuple[float, float]]) -> None:
    """Write the plot of (cost, accuracy) points to ``path``."""
    points = cascade + singles
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y0, y1 = min(ys), max(ys) if max(ys) > min(ys) else min(ys) + 1

    def at(point: tuple[float, float]) -> tuple[int, int]:
        x = MARGIN + (point[0] - x0) / (x1 - x0) * (WIDTH - 2 * MARGIN)
        y = HEIGHT - MARGIN - (point[1] - y0) / (y1 - y0) * (HEIGHT - 2 * MARGIN)
        return round(x), round(y)

    canvas = Canvas(WIDTH, HEIGHT)
    canvas.line((MARGIN - 5, HEIGHT - MARGIN + 5), (WIDTH - MARGIN, HEIGHT - MARGIN + 5), BLACK)
    canvas.line((MARGIN - 5, MARGIN), (MARGIN - 5, HEIGHT - MARGIN + 5), BLACK)
    if len(singles) >= 2:
        canvas.line(at(singles[0]), at(singles[-1]), GREY)
    ordered = sorted(cascade)
    for a, b in itertools.pairwise(ordered):
        canvas.line(at(a), at(b), BLUE)
    for point in ordered:
        canvas.dot(*at(point), BLUE, 2)
    for point in singles:
        canvas.dot(*at(point), RED, 3)
    path.write_bytes(canvas.png())
