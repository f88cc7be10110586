"""The import contracts of pyproject.toml hold, and they catch an arrow pointing up a layer."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

LINT = Path(sys.executable).with_name("lint-imports")
pytestmark = pytest.mark.skipif(not LINT.is_file(), reason="import-linter is not installed")


def lint(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root / "src")}
    return subprocess.run(
        [str(LINT), "--no-cache"], cwd=root, env=env, capture_output=True, text=True, timeout=120
    )


def copy_tree(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(ROOT / "src", root / "src", ignore=shutil.ignore_patterns("*.egg-info"))
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


def test_the_tree_keeps_every_contract():
    out = lint(ROOT)
    assert out.returncode == 0, out.stdout[-2000:]


@pytest.mark.parametrize(
    ("module", "line"),
    [
        ("runtime/artifact.py", "import crossrank.cli.main"),  # a library module imports a command
        ("data/beir.py", "import crossrank.retrieval.bm25"),  # data reaches up into retrieval
        ("runtime/reranker.py", "import torch"),  # the runtime must stay torch-free
    ],
)
def test_an_upward_or_forbidden_import_breaks_a_contract(tmp_path, module, line):
    root = copy_tree(tmp_path)
    path = root / "src" / "crossrank" / module
    path.write_text(path.read_text() + f"\n{line}  # noqa\n")
    out = lint(root)
    assert out.returncode != 0
    assert "BROKEN" in out.stdout
