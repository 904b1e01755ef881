"""Extra buffer types are off where llama.cpp's AMX kernels would crash, and a user can force either choice."""

from __future__ import annotations

import os
import pathlib
import shutil

import pytest

import lmlang
from lmlang.errors import UsageError
from lmlang.models import hardware
from lmlang.models.llama import threads_from_environment

AMX_BUILD = "CPU : SSE3 = 1 | AVX2 = 1 | AVX512 = 1 | AMX_INT8 = 1 | LLAMAFILE = 1 | REPACK = 1 |"
PLAIN_BUILD = "CPU : SSE3 = 1 | AVX2 = 1 | AVX512 = 1 | LLAMAFILE = 1 | REPACK = 1 |"
SAPPHIRE_RAPIDS = frozenset("fpu sse2 avx2 avx512f amx_bf16 amx_tile amx_int8".split())
PLAIN_CPU = frozenset("fpu sse2 avx2 avx512f".split())


def test_amx_in_llamas_build_turns_them_off() -> None:
    choice = hardware.choose(AMX_BUILD, flags=PLAIN_CPU, environ={})
    assert not choice.enabled
    assert "AMX_INT8 = 1" in choice.reason


def test_amx_flag_of_the_cpu_turns_them_off() -> None:
    choice = hardware.choose(PLAIN_BUILD, flags=SAPPHIRE_RAPIDS, environ={})
    assert not choice.enabled
    assert "amx_tile" in choice.reason


def test_without_amx_they_stay_on() -> None:
    assert hardware.choose(PLAIN_BUILD, flags=PLAIN_CPU, environ={}).enabled


@pytest.mark.parametrize("value, enabled", [("on", True), ("1", True), ("TRUE", True), ("yes", True),
                                            ("off", False), ("0", False), ("false", False), ("No", False)])
def test_the_environment_variable_forces_either_choice(value: str, enabled: bool) -> None:
    for build, flags in ((AMX_BUILD, SAPPHIRE_RAPIDS), (PLAIN_BUILD, PLAIN_CPU)):
        choice = hardware.choose(build, flags=flags, environ={hardware.ENVIRONMENT_VARIABLE: value})
        assert choice.enabled is enabled
        assert hardware.ENVIRONMENT_VARIABLE in choice.reason


def test_auto_and_empty_mean_the_machine_decides() -> None:
    for value in ("auto", "", " AUTO "):
        environ = {hardware.ENVIRONMENT_VARIABLE: value}
        assert not hardware.choose(AMX_BUILD, flags=PLAIN_CPU, environ=environ).enabled
        assert hardware.choose(PLAIN_BUILD, flags=PLAIN_CPU, environ=environ).enabled


def test_a_load_option_wins_over_the_environment() -> None:
    environ = {hardware.ENVIRONMENT_VARIABLE: "on"}
    assert not hardware.choose(PLAIN_BUILD, requested=False, flags=PLAIN_CPU, environ=environ).enabled
    assert hardware.choose(AMX_BUILD, requested=True, flags=SAPPHIRE_RAPIDS, environ={}).enabled


def test_a_misspelt_setting_is_an_error_naming_the_variable() -> None:
    with pytest.raises(lmlang.UsageError, match="LMLANG_EXTRA_BUFFER_TYPES='maybe' is not a setting"):
        hardware.choose(PLAIN_BUILD, flags=PLAIN_CPU, environ={hardware.ENVIRONMENT_VARIABLE: "maybe"})


def test_cpu_flags_are_read_from_cpuinfo(tmp_path: pathlib.Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Intel(R) Xeon(R)\nflags\t\t: fpu avx2 amx_tile amx_int8\n\n"
                       "processor\t: 1\nflags\t\t: fpu avx2 amx_tile amx_int8\n")
    assert hardware.cpu_flags(cpuinfo) == {"fpu", "avx2", "amx_tile", "amx_int8"}
    assert hardware.cpu_flags(tmp_path / "missing") == frozenset()


def private_copy(name: str, directory: pathlib.Path) -> str:
    """A path of its own to a packaged model's file, so loading it makes a Model apart from the session's."""
    from lmlang.models.registry import resolve

    source = resolve(name)[1]
    target = directory / source.name
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
    return str(target)


@pytest.mark.model
def test_a_simulated_amx_cpu_loads_without_extra_buffers_and_decodes(monkeypatch: pytest.MonkeyPatch,
                                                                      tmp_path: pathlib.Path) -> None:
    from lmlang.models.llama import load, plain_llama

    monkeypatch.delenv(hardware.ENVIRONMENT_VARIABLE, raising=False)
    monkeypatch.setattr(hardware, "cpu_flags", lambda: SAPPHIRE_RAPIDS)
    path = private_copy("gemma3-270m", tmp_path)  # Q4_K weights, which llama.cpp repacks where it may
    try:
        result = lmlang.compile('"Q: What is 2+3?\\nA: [N]" where INT(N) and len(TOKENS(N)) < 4').run(path)
        assert isinstance(result.variables["N"], int)
        model = load(path)
        assert not model.extra_buffer_types.enabled
        assert "amx_tile" in model.extra_buffer_types.reason
        assert model.buffer_types, "llama.cpp's load log names the weights' buffers"
        assert not {"AMX", "CPU_REPACK"} & set(model.buffer_types)
        reference = plain_llama(model, n_ctx=256)  # tests' and benchmarks' llama-cpp-python follows the choice
        try:
            assert reference.model_params.use_extra_bufts is False
        finally:
            reference.close()
    finally:
        lmlang.unload(path)


@pytest.mark.model
def test_the_load_option_is_public(tmp_path: pathlib.Path) -> None:
    from lmlang.models.llama import load

    path = private_copy("smollm2", tmp_path)
    try:
        lmlang.load(path, extra_buffer_types=False)
        model = load(path)
        assert not model.extra_buffer_types.enabled
        assert "asked for at load" in model.extra_buffer_types.reason
        result = lmlang.compile('"Say hi:[X]" where len(TOKENS(X)) < 3').run(path)
        assert isinstance(result.variables["X"], str)
        assert 1 <= result.stats.generated_tokens <= 2
    finally:
        lmlang.unload(path)


def test_threads_come_from_the_environment_when_set() -> None:
    assert threads_from_environment({}) == (os.cpu_count() or 1)
    assert threads_from_environment({"LMLANG_THREADS": " 3 "}) == 3
    for bad in ("0", "two", "-1", "1.5"):
        with pytest.raises(UsageError, match="LMLANG_THREADS"):
            threads_from_environment({"LMLANG_THREADS": bad})
