"""Run a ``crossrank`` subcommand in a child process, echoing it first (for scripts and benchmarks
that chain commands, so each step's output and exit status are the command's own)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def crossrank(*args: str, cwd: str | Path | None = None) -> None:
    """``crossrank ARGS`` with this interpreter; raises ``CalledProcessError`` when it fails."""
    print("$ crossrank", " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "crossrank.cli.main", *args], check=True, cwd=cwd)
