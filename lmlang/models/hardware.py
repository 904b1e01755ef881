"""Whether llama.cpp may load weights into its extra buffer types on this machine.

llama.cpp can repack weights at load time into "extra" CPU buffers laid out for a faster kernel: ``CPU_REPACK``
(interleaved blocks for AVX2/AVX-512 and ARM) and, on Intel CPUs with Advanced Matrix Extensions, ``AMX``. The AMX
kernels crash on the first decode on such machines (a segmentation fault in ``ggml_backend_amx_mul_mat``: the
thread that runs the tile instructions never asked the kernel for permission to use the tile registers), so any
program on llama.cpp dies there, before printing a token. Loading without extra buffer types runs the plain CPU
kernels, which are correct everywhere.

The choice, in order of precedence:

1. a load option (``lmlang.load(model, extra_buffer_types=False)``),
2. the environment variable ``LMLANG_EXTRA_BUFFER_TYPES`` (``on``/``off``/``auto``; also ``1``/``0``,
   ``true``/``false``, ``yes``/``no``),
3. ``auto``: off where llama.cpp would use its AMX path (its system info says ``AMX_INT8 = 1``, or the CPU
   reports the ``amx_tile`` flag), on elsewhere.

This module does not import llama.cpp: the backend hands it llama.cpp's system info.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib

from lmlang.errors import UsageError

ENVIRONMENT_VARIABLE = "LMLANG_EXTRA_BUFFER_TYPES"

_ON = {"1", "on", "true", "yes"}
_OFF = {"0", "off", "false", "no"}
_AUTO = {"", "auto"}


@dataclasses.dataclass(frozen=True)
class BufferChoice:
    """Whether to load with llama.cpp's extra buffer types, and the reason, said the way a user would check it."""

    enabled: bool
    reason: str


def cpu_flags(cpuinfo: pathlib.Path = pathlib.Path("/proc/cpuinfo")) -> frozenset[str]:
    """The feature flags the kernel reports for the first CPU (empty where there is no /proc/cpuinfo)."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def amx_evidence(system_info: str, flags: frozenset[str]) -> str | None:
    """What says llama.cpp would run its AMX kernels here, or None."""
    if "AMX_INT8 = 1" in system_info:
        return "llama.cpp reports AMX_INT8 = 1"
    if "amx_tile" in flags:
        return "the CPU reports amx_tile"
    return None


def choose(system_info: str, *, requested: bool | None = None, flags: frozenset[str] | None = None,
           environ: dict[str, str] | None = None) -> BufferChoice:
    """The buffer choice for a load; ``requested`` is the load option (None: not given)."""
    if requested is not None:
        return BufferChoice(bool(requested), f"extra_buffer_types={bool(requested)} was asked for at load")
    environ = os.environ if environ is None else environ
    setting = environ.get(ENVIRONMENT_VARIABLE, "").strip().lower()
    if setting in _ON:
        return BufferChoice(True, f"{ENVIRONMENT_VARIABLE}={environ[ENVIRONMENT_VARIABLE]}")
    if setting in _OFF:
        return BufferChoice(False, f"{ENVIRONMENT_VARIABLE}={environ[ENVIRONMENT_VARIABLE]}")
    if setting not in _AUTO:
        raise UsageError(None, f"{ENVIRONMENT_VARIABLE}={environ[ENVIRONMENT_VARIABLE]!r} is not a setting: "
                               "use on, off or auto")
    evidence = amx_evidence(system_info, cpu_flags() if flags is None else flags)
    if evidence is not None:
        return BufferChoice(False, f"{evidence}, and llama.cpp's AMX kernels crash: loading without extra "
                                   "buffer types")
    return BufferChoice(True, "no AMX on this machine")
