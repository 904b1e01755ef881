"""What the browser tests share: where Chromium is, how it is launched, where the examples and screenshots go."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
# Chromium as root needs --no-sandbox; the rest keep it from reaching the network on its own.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
EXAMPLES = Path(__file__).parent.parent.parent / "examples"
# Set to a folder (docs/) to keep the screenshots the tests take, for the README.
SHOTS = os.environ.get("LMLANG_SCREENSHOTS")


def keep_screenshot(path: Path, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, Path(SHOTS) / name)
