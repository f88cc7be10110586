"""What the CPU can do, and which precision runs fastest on it.

``precision="auto"`` looks the CPU's kernel class up in :data:`FASTEST`, a table measured by
``benchmarks/rerank_speed.py`` on the CPUs we ran it on (RESULTS.md; the AMX row from the
issue's Xeon numbers, the VNNI row not measured), and takes the first path this install and
this artifact can run. Every path in the table scores a pair independently of its
batch-mates (int8 one pair per call), so ``auto`` never trades that for speed.
"""

from __future__ import annotations

import importlib.util
import platform
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path


@dataclass(frozen=True)
class CpuInfo:
    name: str
    flags: frozenset[str]

    @property
    def kernel_class(self) -> str:
        """The instruction set that decides the fastest kernels, best first."""
        for cls, needs in KERNEL_CLASSES:
            if needs <= self.flags:
                return cls
        return "baseline"

    @property
    def native_bf16(self) -> bool:
        """bf16 matrix products in hardware (AVX512-BF16 or AMX). Without them PyTorch's bf16
        matmul takes a slow fallback: 56-83x slower than fp32 on AVX2-only EPYCs (RESULTS.md)."""
        return bool(BF16_FLAGS & self.flags)


BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
# (class, flags it needs), best first. AMX: bf16 and int8 matrix tiles (Intel Sapphire Rapids
# and later); avx512_bf16: bf16 dot products (AMD Zen 4, Intel Cooper Lake); VNNI: int8 dot
# products.
KERNEL_CLASSES = (
    ("amx", frozenset({"amx_bf16", "amx_int8", "amx_tile"})),
    ("avx512_bf16", frozenset({"avx512_bf16"})),
    ("avx512_vnni", frozenset({"avx512_vnni"})),
    ("avx2", frozenset({"avx2"})),
)
# Kernel class -> precisions, fastest first, per 100 pairs at 256 tokens on 2 cores
# (benchmarks/rerank_speed.py; RESULTS.md "Rerank speed, this session" and "Inference on this
# CPU"). bf16 runs on OpenVINO.
FASTEST = {
    "amx": ("bf16", "int8", "fp32"),  # Xeon with AMX: bf16 1.5-1.7 s, int8 1.9-2.1 s, fp32 4.1 s
    "avx512_bf16": ("bf16", "int8", "fp32"),  # EPYC here: see RESULTS.md
    "avx512_vnni": ("int8", "fp32"),
    "avx2": ("int8", "fp32"),
    "baseline": ("fp32",),
}


@cache
def cpu_info() -> CpuInfo:
    """The CPU's model name and feature flags (Linux ``/proc/cpuinfo``; empty elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return CpuInfo(platform.processor() or "unknown CPU", frozenset())
    name = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    flags = re.search(r"^flags\s*:\s*(.+)$", text, re.M)
    return CpuInfo(
        name.group(1).strip() if name else "unknown CPU",
        frozenset(flags.group(1).split()) if flags else frozenset(),
    )


def has_openvino() -> bool:
    return importlib.util.find_spec("openvino") is not None


def fastest_precision(has_int8: bool, cpu: CpuInfo | None = None) -> tuple[str, str]:
    """(precision, why) for ``auto``: the table's first path this install and artifact have."""
    cpu = cpu or cpu_info()
    for precision in FASTEST[cpu.kernel_class]:
        if precision == "bf16" and not has_openvino():
            continue
        if precision == "int8" and not has_int8:
            continue
        return precision, f"{cpu.name} ({cpu.kernel_class}): {precision} measured fastest"
    return "fp32", f"{cpu.name} ({cpu.kernel_class}): fp32, the only path available"
