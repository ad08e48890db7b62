"""A llama.cpp build for instructions the CPU lacks stops at model load with its reason, not an illegal instruction."""

from __future__ import annotations

import subprocess
from pathlib import Path

import llama_cpp
import pytest

from aoai_gateway.config.local_llm import LocalLlmSettings
from aoai_gateway.llm import model
from aoai_gateway.llm.cpu import check_build, cpu_flags
from aoai_gateway.llm.model import LocalChatModel

V3_INFO = "CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | LLAMAFILE = 1 |"
AVX_INFO = "CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | LLAMAFILE = 1 | OPENMP = 1 | REPACK = 1 |"
OLD_CPU = frozenset(["fpu", "sse", "sse2", "ssse3", "sse4_1", "sse4_2", "avx", "popcnt"])
V3_CPU = OLD_CPU | {"avx2", "fma", "f16c", "bmi2"}


def test_a_build_the_cpu_can_run_passes() -> None:
    check_build(V3_INFO, V3_CPU)
    check_build(AVX_INFO, OLD_CPU)
    check_build(AVX_INFO, V3_CPU)


def test_a_build_for_newer_instructions_is_refused_naming_them() -> None:
    with pytest.raises(ValueError, match=r"compiled for AVX2, BMI2, F16C, FMA, which this CPU lacks") as caught:
        check_build(V3_INFO, OLD_CPU)
    assert "scripts/llama-cmake-args" in str(caught.value)
    with pytest.raises(ValueError, match=r"compiled for AVX512,"):
        check_build("CPU : AVX = 1 | AVX2 = 1 | AVX512 = 1 |", V3_CPU)


def test_features_said_off_or_unknown_are_not_checked() -> None:
    check_build("CPU : AVX = 1 | AVX2 = 0 | LLAMAFILE = 1 | SOMETHING_NEW = 1 |", OLD_CPU)
    check_build(V3_INFO, None)  # no /proc/cpuinfo: nothing to compare with


def test_cpu_flags_reads_the_first_flags_line(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu avx avx2\nprocessor\t: 1\nflags\t\t: fpu\n", encoding="ascii")
    assert cpu_flags(info) == {"fpu", "avx", "avx2"}
    assert cpu_flags(tmp_path / "missing") is None


def test_this_build_runs_on_this_cpu() -> None:
    """What scripts/test installed passes the check here (the suite would not get this far otherwise)."""
    check_build(llama_cpp.llama_print_system_info().decode(), cpu_flags())


def test_the_install_script_picks_the_flavour_this_cpu_has() -> None:
    script = Path(__file__).parents[2] / "scripts" / "llama-cmake-args"
    chosen = subprocess.run([script], capture_output=True, text=True, check=True).stdout.split()
    portable = subprocess.run([script, "--portable"], capture_output=True, text=True, check=True).stdout.split()
    assert "-DGGML_NATIVE=OFF" in chosen and "-DGGML_AVX512=OFF" in chosen
    assert "-DGGML_AVX2=OFF" in portable and "-DGGML_AVX=ON" in portable
    flags = cpu_flags() or frozenset()
    v3 = {"avx2", "fma", "f16c", "bmi2"} <= flags
    assert ("-DGGML_AVX2=ON" in chosen) == v3


def test_loading_a_model_on_a_cpu_without_the_builds_instructions_stops(
    tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(model, "llama_print_system_info", lambda: V3_INFO.encode())
    monkeypatch.setattr(model, "cpu_flags", lambda: OLD_CPU)
    with pytest.raises(ValueError, match="which this CPU lacks"):
        LocalChatModel(str(tiny_model), LocalLlmSettings())
