"""What a multi-model statement is given to run its stages: interfaces, so that it needs no decoder or session.

The decoder meets a multi-model block (``cascade``, ``route``, ``ensemble``) as an event of the program and hands
it to its :data:`BlockHandler`; the session that made the decoder supplies one, which passes the statement a
:class:`BlockRunner` (models by name, and embeddings) and the enclosing run's :class:`ModelRunner`.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

import numpy as np

from lmlang.decoding.run import Run
from lmlang.decoding.sampler import Sampler
from lmlang.decoding.settings import DecoderSettings, TextSink
from lmlang.interpret.execution import BlockEvent
from lmlang.interpret.prompt import Prompt


class ModelRunner(Protocol):
    """Runs of a program on one model (``lmlang.decoding.decoder.Decoder`` is one)."""

    @property
    def model(self) -> Any:
        """The model: ``name``, ``path``, ``tokenize(text, bos=...)``, ``embed(text)``."""
        ...

    def prompt(self) -> Prompt:
        """An empty prompt on this model's cache."""
        ...

    def drive(self, run: Run, settings: DecoderSettings, sampler: Sampler, on_text: TextSink | None = None) -> Any:
        """Run ``run``'s program to its end; its return value."""
        ...

    def score_continuations(self, seq: Any, texts: list[str]) -> list[float]:
        """log P(text | what ``seq`` holds) for each text."""
        ...


class BlockRunner(Protocol):
    """The models a multi-model statement may run its stages on (a ``lmlang.session.Session`` is one)."""

    #: calibration's view of the cascades run here (``lmlang.multimodel.cascade.Probe``): only the stage of its
    #: model runs, and the score is recorded; None runs cascades whole
    probe: Any

    def resolve(self, model: str) -> None:
        """Nothing if ``model`` names a model this runner can load (without loading it), else a ModelError."""
        ...

    def runner(self, model: str) -> ModelRunner:
        """The runner of the model ``model`` names, loaded on first use; a ModelError for an unknown name."""
        ...

    def embed(self, runner: ModelRunner, text: str) -> tuple[np.ndarray, int]:
        """The embedding of ``text`` by ``runner``'s model, and the prompt tokens it cost (0 when cached)."""
        ...


# What the decoder calls on a block event: (the enclosing run's runner, the run, the event, settings, the text
# sink) -> the variables the block bound.
BlockHandler = Callable[[ModelRunner, Run, BlockEvent, DecoderSettings, "TextSink | None"], dict[str, Any]]
