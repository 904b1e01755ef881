"""A session: the loaded models a process runs queries on, with everything kept for them.

A :class:`Session` owns, per model it has used, a :class:`~lmlang.decoding.decoder.Decoder` (the model's idle
prompts and token matchers), and the embeddings routes compute; each of these caches is bounded, and
:meth:`Session.clear` empties them all. It runs programs through the decoding strategies registered by name, and
is the block runner multi-model statements (``cascade``, ``route``, ``ensemble``) receive: they reach other
models only through it.

``lmlang.run``, ``Query.run`` and the CLI use one process-wide session (:func:`default_session`); pass
``session=`` to keep a set of models and caches apart, and ``close()`` it to let them go.
"""

from __future__ import annotations

import threading
from typing import Any, Mapping

import numpy as np

from lmlang import concurrency
from lmlang.multimodel import embedding, run_block
from lmlang.caches import BoundedCache, clear_process_caches
from lmlang.decoding import strategies
from lmlang.decoding.decoder import MATCHERS_KEPT, Decoder
from lmlang.decoding.run import Run
from lmlang.decoding.runner import ModelRunner
from lmlang.decoding.settings import DecoderSettings, TextSink
from lmlang.errors import ModelError
from lmlang.interpret.execution import BlockEvent, CompiledProgram
from lmlang.models import registry
from lmlang.models.kvcache import PROMPT_BYTES, PromptCache, SequencePool
from lmlang.result import Result

EMBEDDINGS_KEPT = 4096  # vectors of a few kilobytes each: a route's examples, and its inputs
PROMPTS_KEPT = 4  # idle prompts per model, for a later run that starts the same way


class Session:
    """Loaded models, their decoders and caches, and the runs of programs on them."""

    def __init__(self, *, models: Mapping[str, Any] | None = None, prompts: int = PROMPTS_KEPT,
                 matchers: int = MATCHERS_KEPT, embeddings: int = EMBEDDINGS_KEPT,
                 prompt_bytes: int = PROMPT_BYTES) -> None:
        """``models``: the only models this session runs on, by name, already loaded (the first is the default);
        without it, the models the registry knows, loaded from their files on first use. ``prompt_bytes``: the
        memory per model for saved prompt states (0: every run evaluates its whole prompt; see
        lmlang.models.kvcache)."""
        self._given = dict(models) if models is not None else None
        self._prompts = prompts
        self._prompt_bytes = prompt_bytes
        self._matchers = matchers
        self._decoders: dict[int, Decoder] = {}  # by id of the model; dropped when the model closes
        self._decoders_lock = threading.Lock()  # runs on several threads find their decoders here
        self.embeddings: BoundedCache[tuple[str, str], np.ndarray] = BoundedCache("embeddings", embeddings)
        #: set by calibration on a session of its own: the cascades its runs reach run one observed stage
        self.probe: Any = None

    # ------------------------------------------------------------------ models and decoders
    def model(self, name: str | None = None) -> Any:
        """The model ``name`` names (an alias or a .gguf path; None: the default), loaded on first use. The
        weights of a file are loaded once per process, whichever session asks."""
        if self._given is not None:
            self.resolve(name)
            return self._given[name] if name is not None else next(iter(self._given.values()))
        from lmlang.models import llama  # here, so that the static tools (check, lsp) run without llama.cpp

        return llama.load(name)

    def load(self, model: str | None = None, *, extra_buffer_types: bool | None = None, n_ctx: int | None = None,
             n_seq_max: int | None = None) -> Any:
        """Load ``model`` now instead of on its first run (the options: see ``lmlang.load``)."""
        if self._given is not None:
            return self.model(model)
        from lmlang.models import llama

        sizes = {"n_seq_max": n_seq_max} if n_seq_max is not None else {}
        return llama.load(model, extra_buffer_types=extra_buffer_types, n_ctx=n_ctx, **sizes)

    def resolve(self, model: str | None) -> None:
        """Nothing if ``model`` names a model of this session (without loading it), else a ModelError."""
        if self._given is None:
            registry.resolve(model)
        elif model is not None and model not in self._given:
            raise ModelError(None, f"unknown model '{model}': this session has {', '.join(self._given)}")
        elif not self._given:
            raise ModelError(None, "this session has no model")

    def decoder(self, model: Any) -> Decoder:
        """This session's decoder of a loaded ``model``: one per model, so its prompts are shared across runs.

        Inside a run, the run takes the model's lock here (shared with the runs on other threads, whose decodes
        it joins, or alone for a deterministic run: see lmlang.concurrency) and, when it is a fresh run alone on
        the model, empties the model's cache, so that the result does not depend on what ran before it
        (llama.cpp's logits depend slightly on the cache's layout, enough to turn a near tie)."""
        with self._decoders_lock:
            self._forget_closed()
            found = self._decoders.get(id(model))
            if found is None or found.model is not model:
                pool = SequencePool(model, self._prompts, PromptCache(model, self._prompt_bytes))
                found = Decoder(model, pool, self._run_block, self._matchers)
                self._decoders[id(model)] = found

        def clear() -> None:
            found.pool.clear()
            model.clear_cache()  # skipped while a run that called this one holds sequences

        # A fresh run lets its idle sequences go when it ends: left in the cache, they would keep the next fresh
        # run (of any session) from finding it empty.
        concurrency.use(model, clear, found.pool.clear, getattr(model, "join_runs", None))
        return found

    def decoders(self) -> list[Decoder]:
        """The decoders of the models this session has used (and that are still loaded)."""
        with self._decoders_lock:
            self._forget_closed()
            return list(self._decoders.values())

    def start(self, model: str | None) -> Decoder:
        """The decoder a top-level run uses, inside the run's :func:`concurrency.run_scope`."""
        while True:
            loaded = self.model(model)
            decoder = self.decoder(loaded)
            if not loaded.closed:  # else it was unloaded while this run waited for it: load it again
                return decoder

    # ------------------------------------------------------------------ runs
    def run(self, program: CompiledProgram, inputs: Mapping[str, Any], settings: DecoderSettings,
            model: str | None = None, *, on_text: TextSink | None = None, reuse_prompts: bool = False,
            multi_model: bool = True, deterministic: bool = False) -> list[Result]:
        """The results of ``program`` on ``model`` under ``settings``, by the strategy registered for its decoder.
        ``multi_model``: whether the program may use several models (False lets runs on other models go on
        beside it; see lmlang.concurrency). ``deterministic``: run alone on the model, outside the decodes it
        would share with runs on other threads, so the result is exactly that of a run alone."""
        with concurrency.run_scope(fresh=not reuse_prompts, multi_model=multi_model, deterministic=deterministic):
            return strategies.run(self.start(model), program, inputs, settings, on_text)

    def score_program(self, program: CompiledProgram, inputs: Mapping[str, Any], settings: DecoderSettings,
                      candidates: list[str], model: str | None = None, *, reuse_prompts: bool = False,
                      multi_model: bool = True) -> list[float]:
        with concurrency.run_scope(fresh=not reuse_prompts, multi_model=multi_model):
            return self.start(model).score_program(program, inputs, settings, candidates)

    def score_text(self, prompt: str, continuations: list[str], model: str | None = None, *,
                   reuse_prompts: bool = False) -> list[float]:
        with concurrency.run_scope(fresh=not reuse_prompts, multi_model=False):
            return self.start(model).score_text(prompt, continuations)

    # ------------------------------------------------------------------ the block runner
    def runner(self, model: str) -> ModelRunner:
        return self.decoder(self.model(model))

    def embed(self, runner: ModelRunner, text: str) -> tuple[np.ndarray, int]:
        key = (str(runner.model.path), text)
        found = self.embeddings.get(key)
        if found is not None:
            return found, 0
        vector, spent = embedding.embed(runner.model, text)
        self.embeddings.put(key, vector)
        return vector, spent

    def _run_block(self, current: ModelRunner, run: Run, event: BlockEvent, settings: DecoderSettings,
                   on_text: TextSink | None) -> dict[str, Any]:
        return run_block(self, current, run, event, settings, on_text)

    # ------------------------------------------------------------------ letting go
    def clear(self) -> None:
        """Empty every cache: idle prompts, token matchers, embeddings, and the process-wide automata and masks
        (pure results, rebuilt when needed). The models stay loaded."""
        for decoder in self.decoders():
            decoder.clear()
        self.embeddings.clear()
        clear_process_caches()

    def unload(self, model: str | None = None) -> list[Any]:
        """Free the memory of a loaded model (an alias or a .gguf path; None: every loaded model) and what this
        session kept for it; the models closed. A later run loads it again."""
        if self._given is not None:
            closed = [m for name, m in self._given.items() if model is None or name == model]
            for gone in closed:
                gone.close()
        else:
            from lmlang.models import llama

            path = registry.resolve(model)[1].resolve() if model is not None else None
            using = [m for m in concurrency.locked_models() if path is None or m.path.resolve() == path]
            with concurrency.exclusive(using):  # waits for the runs in progress on them to end
                closed = llama.unload(model)
        with self._decoders_lock:
            for gone in closed:
                self._decoders.pop(id(gone), None)
        return closed

    def close(self) -> None:
        """Let go of everything this session keeps (the models stay loaded for other sessions: see unload)."""
        for decoder in self.decoders():
            decoder.clear()
        self._decoders.clear()
        self.embeddings.clear()

    def _forget_closed(self) -> None:
        for key in [key for key, decoder in self._decoders.items() if decoder.model.closed]:
            del self._decoders[key]


_default: Session | None = None
_default_lock = threading.Lock()


def default_session() -> Session:
    """The process-wide session behind ``lmlang.run``, ``Query.run`` and the CLI."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Session()
        return _default
