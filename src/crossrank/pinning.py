"""``pipeline.json``: a two-stage pipeline pinned by hashes, and the check that refuses drift."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from crossrank.artifact import MANIFEST, ArtifactError, check_sha256, sha256_file
from crossrank.atomic import write_text_atomic

PIPELINE_FORMAT = 1


def index_sha256(retriever) -> str:
    """A hash of what determines a first stage's index: the corpus text and ids, the
    parameters, and the library or model that built it. (The bytes of a bm25s index vary
    with the process's hash seed, so they are not hashed.)"""
    from crossrank.retrieval.bm25 import texts_fingerprint

    h = hashlib.sha256()
    kind = type(retriever).__name__
    h.update(kind.encode())
    if kind == "BM25Retriever":
        import bm25s

        h.update(json.dumps(retriever.params.__dict__, sort_keys=True).encode())
        h.update(bm25s.__version__.encode())
        h.update(texts_fingerprint(retriever.doc_ids, retriever.texts or []).encode())
    elif kind == "DenseRetriever":
        h.update(retriever.embedder.sha256.encode())
        h.update(texts_fingerprint(retriever.doc_ids, retriever.texts or []).encode())
    elif kind == "HybridRetriever":
        h.update(
            json.dumps(
                {"k": retriever.k, "depth": retriever.depth, "weights": retriever.weights},
                sort_keys=True,
            ).encode()
        )
        for name in sorted(retriever.retrievers):
            h.update(name.encode())
            h.update(index_sha256(retriever.retrievers[name]).encode())
    else:
        raise ValueError(f"expected a BM25, dense or hybrid retriever, got {kind}")
    return h.hexdigest()


def pin_pipeline(
    path: str | Path,
    *,
    data: str | Path,
    retriever_kind: str,
    retriever,
    model_dir: str | Path,
    precision: str,
    top_n: int,
    top_k: int,
    sweep_json: str | Path,
    fusion: str = "off",
) -> dict:
    """Write ``pipeline.json`` recording every artifact of the pipeline by sha256."""
    sweep = json.loads(Path(sweep_json).read_text())
    record = {
        "format_version": PIPELINE_FORMAT,
        "data": str(Path(data).resolve()),
        "retriever": {
            "kind": retriever_kind,
            "params": getattr(getattr(retriever, "params", None), "__dict__", {}),
            "index_sha256": index_sha256(retriever),
        },
        "reranker": {
            "path": str(Path(model_dir).resolve()),
            "sha256": sha256_file(Path(model_dir) / MANIFEST),
            "precision": precision,
        },
        "top_n": top_n,
        "top_k": top_k,
        "fusion": fusion,
        "sweep": {
            "path": str(Path(sweep_json).resolve()),
            "sha256": sha256_file(sweep_json),
            "split": sweep["split"],
            "knee": sweep["knee"],
        },
    }
    write_text_atomic(path, json.dumps(record, indent=2))
    return record


def load_pipeline(path: str | Path) -> dict:
    """Read ``pipeline.json`` and check the files it pins (reranker manifest, sweep)."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: expected a pipeline.json, found none")
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{path}: expected JSON, got unreadable content ({exc})") from None
    if record.get("format_version") != PIPELINE_FORMAT:
        raise ArtifactError(
            f"{path}: expected format_version {PIPELINE_FORMAT}, got {record.get('format_version')!r}"
        )
    checks = [
        (Path(record["reranker"]["path"]) / MANIFEST, record["reranker"]["sha256"]),
        (Path(record["sweep"]["path"]), record["sweep"]["sha256"]),
    ]
    for file, expected in checks:
        check_sha256(
            file,
            expected,
            f"pinned by {path} but missing",
            f"changed since {path} pinned it; refusing to run",
        )
    return record


def check_index(record: dict, retriever, pipeline_path: str | Path) -> None:
    """Refuse when the rebuilt first-stage index differs from the pinned one."""
    actual = index_sha256(retriever)
    if actual != record["retriever"]["index_sha256"]:
        raise ArtifactError(
            f"{record['data']}/corpus.jsonl: the {record['retriever']['kind']} index built from it "
            f"changed since {pipeline_path} pinned it (sha256 {actual[:12]}…, pinned "
            f"{record['retriever']['index_sha256'][:12]}…); refusing to run"
        )
