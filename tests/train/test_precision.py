"""bf16 training stays where the CPU has bf16 matrix instructions and falls back to fp32 elsewhere."""

import pytest

from crossrank.cli import train as train_cli
from crossrank.runtime.hardware import CpuInfo
from crossrank.train.precision import training_precision
from tests.conftest import ROOT

ZEN4 = CpuInfo("EPYC 9R14", frozenset({"avx2", "avx512f", "avx512_bf16"}))
AMX = CpuInfo("Xeon", frozenset({"avx2", "avx512f", "amx_bf16", "amx_tile"}))
AVX2 = CpuInfo("EPYC 7B13", frozenset({"avx2", "fma"}))
SKYLAKE = CpuInfo("Xeon Skylake", frozenset({"avx2", "avx512f", "avx512_vnni"}))


@pytest.mark.parametrize("cpu", [ZEN4, AMX])
def test_native_bf16_cpus_keep_the_request(cpu):
    assert training_precision("bf16-mixed", True, cpu) == ("bf16-mixed", None)


@pytest.mark.parametrize("cpu", [AVX2, SKYLAKE])
@pytest.mark.parametrize("requested", ["bf16-mixed", "bf16-true", "bf16"])
def test_cpus_without_bf16_train_in_fp32_and_say_so(cpu, requested):
    precision, note = training_precision(requested, True, cpu)
    assert precision == "32-true"
    assert requested in note and cpu.name in note and "--cpu_bf16 always" in note


def test_gpu_always_and_non_bf16_requests_are_left_alone():
    assert training_precision("bf16-mixed", False, AVX2) == ("bf16-mixed", None)
    assert training_precision("bf16-mixed", True, AVX2, "always") == ("bf16-mixed", None)
    for requested in ("32-true", "16-mixed", 32, None):
        assert training_precision(requested, True, AVX2) == (requested, None)


def test_unknown_policy_is_a_clear_error():
    with pytest.raises(ValueError, match="expected cpu_bf16 'native' or 'always', got 'yes'"):
        training_precision("bf16-mixed", True, ZEN4, "yes")


def _trainer_precision(monkeypatch, cpu, *extra):
    monkeypatch.setattr("crossrank.runtime.hardware.cpu_info", lambda: cpu)
    args = ["--config", str(ROOT / "configs" / "tiny.yaml"), "--trainer.precision", "bf16-mixed"]
    args += ["--trainer.accelerator", "cpu", "--trainer.logger", "false", *extra]
    cli = train_cli.main(args, run=False)
    return cli.trainer.precision_plugin.precision, cli.config.trainer.precision


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_the_train_command_applies_it(monkeypatch, capsys):
    assert _trainer_precision(monkeypatch, AVX2) == ("32-true", "32-true")
    assert "bf16-mixed -> 32-true" in capsys.readouterr().err
    assert _trainer_precision(monkeypatch, ZEN4) == ("bf16-mixed", "bf16-mixed")
    assert _trainer_precision(monkeypatch, AVX2, "--cpu_bf16", "always")[0] == "bf16-mixed"
