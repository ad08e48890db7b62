"""Refuse to run a llama.cpp build on a CPU that lacks the instructions it was compiled for.

    check_build(llama_cpp.llama_print_system_info().decode(), cpu_flags())   # ValueError naming what is missing

scripts/llama-cmake-args compiles llama.cpp for x86-64-v3 (AVX2, FMA, F16C, BMI2) where the build machine has it,
AVX alone otherwise. A virtual environment or image built on one machine and run on an older one would die with
an illegal instruction at the first matrix product; checked at model load, it stops start-up with the reason and
the way out instead. The compiled features are what llama.cpp reports ("AVX2 = 1"), the CPU's from /proc/cpuinfo;
on a system without /proc/cpuinfo (not Linux, or not x86) nothing is checked.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["check_build", "cpu_flags"]

# llama.cpp's name for a feature -> the /proc/cpuinfo flag that says the CPU has it.
_FLAGS = {
    "AVX": "avx",
    "AVX2": "avx2",
    "FMA": "fma",
    "F16C": "f16c",
    "BMI2": "bmi2",
    "AVX512": "avx512f",
    "AVX512_VBMI": "avx512_vbmi",
    "AVX512_VNNI": "avx512_vnni",
    "AVX512_BF16": "avx512_bf16",
    "AVX_VNNI": "avx_vnni",
    "AMX_INT8": "amx_int8",
}
_FEATURE = re.compile(r"\b([A-Z0-9_]+) = 1\b")


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str] | None:
    """The CPU's feature flags, or None when the system does not say (then nothing is checked)."""
    try:
        text = cpuinfo.read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return None


def check_build(system_info: str, flags: frozenset[str] | None) -> None:
    """ValueError when the build uses an instruction set `flags` lacks."""
    if flags is None:
        return
    compiled = {name for name in _FEATURE.findall(system_info) if name in _FLAGS}
    missing = sorted(name for name in compiled if _FLAGS[name] not in flags)
    if missing:
        raise ValueError(
            f"llama-cpp-python here was compiled for {', '.join(missing)}, which this CPU lacks (it would stop "
            "with an illegal instruction). Reinstall it for this machine: "
            'CMAKE_ARGS="$(scripts/llama-cmake-args)" pip install --force-reinstall --no-cache-dir '
            "llama-cpp-python (or --portable for a build that runs on any x86-64 with AVX)"
        )
