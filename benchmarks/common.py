"""Set-up shared by the benchmark scripts: the machine, the data, the output.

The scripts run as ``python benchmarks/NAME.py``; Python puts their folder first on the import
path, so ``import common`` (and ``import compute_floor``) works without touching ``sys.path``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
# CPU features that decide which kernels run (int8 dot products, bf16, AMX tiles).
FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")


def machine() -> dict[str, Any]:
    """CPU model, the kernel-relevant flags it has, and the cores this process may use."""
    from crossrank.runtime.backends import default_threads
    from crossrank.runtime.hardware import cpu_info

    cpu = cpu_info()
    return {
        "cpu": cpu.name,
        "flags": [f for f in FLAGS if f in cpu.flags],
        "cores": default_threads(),
    }


def machine_line(info: dict[str, Any] | None = None) -> str:
    info = info or machine()
    return f"{info['cpu']}, {info['cores']} cores, {' '.join(info['flags']) or 'no AVX2'}"


def dataset_and_bm25(data: str | Path, split: str = "test"):
    """A BEIR dataset and BM25 over its corpus, the index cached under ``crossrank.io.cache_dir``."""
    from crossrank.data.beir import load_beir
    from crossrank.io import cache_dir
    from crossrank.retrieval.bm25 import bm25_for

    ds = load_beir(data, split)
    return ds, bm25_for(ds, cache_dir())


def real_pairs(data: str | Path, n: int = 100) -> tuple[str, list[str]]:
    """The first judged test query with ``n`` BM25 candidates, and those candidates' texts."""
    ds, bm25 = dataset_and_bm25(data, "test")
    for qid in ds.judged_queries():
        hits = bm25.retrieve(ds.queries[qid], n)
        if len(hits) == n:
            return ds.queries[qid], [h.text for h in hits]
    raise ValueError(f"{data}: no judged test query with {n} BM25 hits")


def pct(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile, NaN for no values."""
    import numpy as np

    return float(np.percentile(values, q)) if len(values) else float("nan")


def output_path(name: str) -> str:
    """The default ``--output``: ``benchmarks/results/NAME``."""
    return str(RESULTS / name)


def write_json(path: str | Path, result: dict) -> Path:
    """Write ``result`` atomically (a reader never sees half a file) and say where."""
    from crossrank.io import write_text_atomic

    write_text_atomic(path, json.dumps(result, indent=2) + "\n")
    print("wrote", path)
    return Path(path)


# A column: header, then the row's key or a function of the row, then a format spec that
# starts with the alignment and width (e.g. ">8.0f"); a row without the key leaves it blank.
Column = tuple[str, str | Callable[[dict], Any], str]


def print_table(title: str, columns: Sequence[Column], rows: Sequence[dict]) -> None:
    """A title line, a header and one line per row, columns placed by their format specs."""
    widths = [re.match(r"[<>^]?\d*", spec).group() for _, _, spec in columns]
    print(title)
    print("".join(f"{header:{w}}" for (header, _, _), w in zip(columns, widths, strict=True)))
    for row in rows:
        cells = []
        for (_, key, spec), w in zip(columns, widths, strict=True):
            if callable(key):
                cells.append(f"{key(row):{spec}}")
            elif key in row:
                cells.append(f"{row[key]:{spec}}")
            else:
                cells.append(f"{'':{w}}")
        print("".join(cells))
