from __future__ import annotations

import pytest

from astdump import corpus_files
from lmlang.syntax import parse


@pytest.fixture(scope="session")
def corpus_programs():
    return [parse(p.read_text(), str(p)) for p in corpus_files()]
