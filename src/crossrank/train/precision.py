"""Which training precision a config's request becomes on the machine that runs it.

The recipes ask for ``bf16-mixed``: on an AVX512-BF16 CPU it measured 1.5-2.3x fp32 per step at
equal dev nDCG (RESULTS.md; not measured on AMX or a GPU, where bf16 is the usual fast path).
On a CPU without bf16 matrix instructions (avx512_bf16, amx_bf16) PyTorch's bf16 matmul runs
tens of times slower than fp32, so a 55-minute budget would reach a few dozen steps; there the
request falls back to ``32-true`` unless ``cpu_bf16`` is ``always``.
"""

from __future__ import annotations

from typing import Literal

from crossrank.runtime.hardware import CpuInfo

CpuBf16 = Literal["native", "always"]


def training_precision(
    requested: str | int | None, on_cpu: bool, cpu: CpuInfo, cpu_bf16: CpuBf16 = "native"
) -> tuple[str | int | None, str | None]:
    """(precision to train in, a one-line note when it differs from ``requested``)."""
    if cpu_bf16 not in ("native", "always"):
        raise ValueError(f"expected cpu_bf16 'native' or 'always', got {cpu_bf16!r}")
    wants_bf16 = isinstance(requested, str) and requested.startswith("bf16")
    if not wants_bf16 or not on_cpu or cpu_bf16 == "always" or cpu.native_bf16:
        return requested, None
    return "32-true", (
        f"trainer.precision {requested} -> 32-true: {cpu.name} has no bf16 matrix instructions "
        f"(avx512_bf16 or amx_bf16), where bf16 runs far slower than fp32; "
        f"--cpu_bf16 always keeps {requested}"
    )
