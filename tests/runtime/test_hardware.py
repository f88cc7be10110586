"""``auto`` picks the precision measured fastest for the CPU's kernel class."""

import pytest

from crossrank.runtime import hardware
from crossrank.runtime.hardware import CpuInfo, fastest_precision

AMX = CpuInfo("Xeon", frozenset({"avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16",
                                 "amx_int8", "amx_tile"}))  # fmt: skip
ZEN4 = CpuInfo("EPYC", frozenset({"avx2", "avx512f", "avx512_vnni", "avx512_bf16"}))
VNNI = CpuInfo("Cascade Lake", frozenset({"avx2", "avx512f", "avx512_vnni"}))
OLD = CpuInfo("Haswell", frozenset({"avx2"}))
BARE = CpuInfo("?", frozenset())


def test_kernel_classes():
    assert [c.kernel_class for c in (AMX, ZEN4, VNNI, OLD, BARE)] == [
        "amx", "avx512_bf16", "avx512_vnni", "avx2", "baseline"
    ]  # fmt: skip


@pytest.mark.parametrize("openvino", [True, False])
def test_the_fastest_available_path_is_chosen(monkeypatch, openvino):
    monkeypatch.setattr(hardware, "has_openvino", lambda: openvino)
    bf16_or_int8 = "bf16" if openvino else "int8"
    assert fastest_precision(True, AMX)[0] == bf16_or_int8
    assert fastest_precision(True, ZEN4)[0] == bf16_or_int8
    assert fastest_precision(True, VNNI)[0] == "int8"
    assert fastest_precision(False, VNNI)[0] == "fp32"  # no int8 graph in the artifact
    assert fastest_precision(True, BARE)[0] == "fp32"
    _, why = fastest_precision(True, AMX)
    assert "Xeon" in why and "amx" in why


def test_cpu_info_reads_this_machine():
    info = hardware.cpu_info()
    assert info.name and info.kernel_class in hardware.FASTEST
