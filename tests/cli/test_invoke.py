import subprocess

import pytest

from crossrank.cli.invoke import crossrank


def test_echoes_the_command_and_runs_it(capfd, tmp_path):
    crossrank("--help", cwd=tmp_path)
    out = capfd.readouterr().out
    assert out.startswith("$ crossrank --help\n")
    assert "usage:" in out.lower()  # the child's own output, not just the echo


def test_a_failing_command_raises():
    with pytest.raises(subprocess.CalledProcessError):
        crossrank("no-such-subcommand")
