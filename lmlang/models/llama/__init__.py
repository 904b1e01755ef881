"""lmlang's llama.cpp backend, the only package of lmlang that imports ``llama_cpp``.

``load`` keeps one :class:`Model` per file (and context size) in the process. Inside: ``model`` (the model, its
context and its sequences), ``ffi`` (the backend's start and log, handles, the reusable batch), ``chat`` (chat
templates) and ``embedding`` (the pooled second context of ``Model.embed``).
"""

from __future__ import annotations

import os
import pathlib
import threading

import llama_cpp as llama

from lmlang.errors import UsageError
from lmlang.models import hardware
from lmlang.models.llama import ffi
from lmlang.models.llama.model import Model, SavedState, Sequence
from lmlang.models.registry import resolve

__all__ = ["DEFAULT_N_CTX", "THREADS_VARIABLE", "Model", "SavedState", "Sequence", "load", "plain_llama",
           "system_info", "threads_from_environment", "unload"]

_models: dict[tuple[pathlib.Path, int], Model] = {}
# Loads and unloads run one at a time: runs on several threads load and unload models, and a load reads its own
# lines from llama.cpp's log, which goes to one process-wide callback (which buffers the weights went into).
_table_lock = threading.RLock()


def load(name: str | None = None, *, n_ctx: int | None = None, n_threads: int | None = None,
         n_seq_max: int = 16, extra_buffer_types: bool | None = None) -> Model:
    """The model called ``name`` (an alias or a .gguf path; ``None``: the default), loaded once per process.

    ``n_ctx``: the context's tokens, shared by all the sequences in use (the runs in flight); None: the size of
    the copy already loaded, else 4096. ``n_seq_max``: how many sequences may be in use at once.
    ``extra_buffer_types`` lets llama.cpp repack the weights for faster kernels (``None``: as
    :mod:`lmlang.models.hardware` decides, off on CPUs whose AMX kernels crash). Loading the same file with the
    same ``n_ctx`` again returns the same :class:`Model`, whatever the other arguments say.
    """
    display, path = resolve(name)
    with _table_lock:
        if n_ctx is None:
            loaded = {size: m for (p, size), m in _models.items() if p == path.resolve()}
            if loaded:
                return loaded.get(DEFAULT_N_CTX) or next(iter(loaded.values()))
            n_ctx = DEFAULT_N_CTX
        key = (path.resolve(), n_ctx)
        model = _models.get(key)
        if model is None:
            ffi.init_backend()
            choice = hardware.choose(system_info(), requested=extra_buffer_types)
            model = Model(display, path, n_ctx=n_ctx, n_threads=n_threads or threads_from_environment(),
                          n_seq_max=n_seq_max, buffers=choice)
            _models[key] = model
    return model


DEFAULT_N_CTX = 4096
THREADS_VARIABLE = "LMLANG_THREADS"


def threads_from_environment(environ: dict[str, str] | None = None) -> int:
    """The threads llama.cpp computes with: ``LMLANG_THREADS`` when set (to share a machine with other work),
    else one per CPU."""
    environ = dict(os.environ) if environ is None else environ
    setting = environ.get(THREADS_VARIABLE, "").strip()
    if not setting:
        return os.cpu_count() or 1
    if not setting.isdigit() or int(setting) < 1:
        raise UsageError(None, f"{THREADS_VARIABLE}={setting!r} is not a number of threads: "
                               "use a whole number, 1 or more")
    return int(setting)


def plain_llama(model: Model, **options: object) -> llama.Llama:
    """llama-cpp-python's high-level ``Llama`` on ``model``'s file with the same extra-buffer choice: the
    independent reference that tests and benchmarks compare lmlang with. Its own default would load with extra
    buffer types, which crash on CPUs with AMX."""
    defaults = llama.llama_cpp.llama_model_default_params

    def params() -> object:
        chosen = defaults()
        chosen.use_extra_bufts = model.extra_buffer_types.enabled
        return chosen

    with _table_lock:  # the default is swapped for the whole process while the reference loads
        llama.llama_cpp.llama_model_default_params = params
        try:
            return llama.Llama(model_path=str(model.path), verbose=False, **options)
        finally:
            llama.llama_cpp.llama_model_default_params = defaults


def system_info() -> str:
    """llama.cpp's one-line report of the CPU features it was built for and found (``AVX2 = 1 | AMX_INT8 = 0 ...``)."""
    return (llama.llama_print_system_info() or b"").decode("utf-8", "replace")


def unload(name: str | None = None) -> list[Model]:
    """Close the loaded models of ``name`` (an alias or a .gguf path; ``None``: every loaded model) and forget
    them, so the next ``load`` reads the file again; the models closed."""
    path = resolve(name)[1].resolve() if name is not None else None
    with _table_lock:
        closed = [model for key, model in _models.items() if path is None or key[0] == path]
        for model in closed:
            model.close()
        for key in [key for key, model in _models.items() if model.closed]:
            del _models[key]
    return closed
