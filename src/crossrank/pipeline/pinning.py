"""``pipeline.json`` (:class:`PipelineSpec`): a two-stage pipeline pinned by hashes, and the one
way to open it again (:func:`open_pipeline`), which refuses when anything pinned changed."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from crossrank.io import write_text_atomic
from crossrank.pipeline.stages import artifact_fusion, build_reranker, build_retriever
from crossrank.pipeline.two_stage import RetrieveThenRerank
from crossrank.retrieval.bm25 import BM25Params, texts_fingerprint
from crossrank.runtime.artifact import MANIFEST, ArtifactError, check_sha256, sha256_file
from crossrank.runtime.passages import POOLINGS

PIPELINE_FORMAT = 1


def index_sha256(retriever) -> str:
    """A hash of what determines a first stage's index: the corpus text and ids, the
    parameters, and the library or model that built it. (The bytes of a bm25s index vary
    with the process's hash seed, so they are not hashed.)"""
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


@dataclass(frozen=True)
class RetrieverPin:
    kind: str
    index_sha256: str
    params: dict[str, Any] = field(default_factory=dict)
    approximate: bool = False  # dense/hybrid: HNSW search instead of exact


@dataclass(frozen=True)
class RerankerPin:
    path: str
    sha256: str
    precision: str


@dataclass(frozen=True)
class SweepPin:
    path: str
    sha256: str
    split: str
    knee: int


@dataclass(frozen=True)
class PipelineSpec:
    """Everything that determines a pipeline's results, each artifact by its sha256."""

    data: str
    retriever: RetrieverPin
    reranker: RerankerPin
    top_n: int
    top_k: int
    sweep: SweepPin
    fusion: str = "off"  # "auto": the artifact's fitted fusion with this first stage
    passages: str | None = None  # a pooling: documents read as pooled passages; None: truncated
    format_version: int = PIPELINE_FORMAT

    def save(self, path: str | Path) -> None:
        write_text_atomic(path, json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, path: str | Path) -> PipelineSpec:
        """Read ``pipeline.json`` and check the files it pins (reranker manifest, sweep)."""
        path = Path(path)
        if not path.is_file():
            raise ArtifactError(f"{path}: expected a pipeline.json, found none")
        try:
            raw = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ArtifactError(f"{path}: expected JSON, got unreadable content ({exc})") from None
        if not isinstance(raw, dict) or raw.get("format_version") != PIPELINE_FORMAT:
            got = raw.get("format_version") if isinstance(raw, dict) else type(raw).__name__
            raise ArtifactError(f"{path}: expected format_version {PIPELINE_FORMAT}, got {got!r}")
        try:
            spec = cls(
                **{
                    **raw,
                    "retriever": RetrieverPin(**raw["retriever"]),
                    "reranker": RerankerPin(**raw["reranker"]),
                    "sweep": SweepPin(**raw["sweep"]),
                }
            )
        except (KeyError, TypeError) as exc:
            raise ArtifactError(f"{path}: expected a crossrank pipeline record ({exc})") from None
        if not isinstance(spec.retriever.approximate, bool):
            raise ArtifactError(
                f"{path}: expected retriever.approximate true or false, got "
                f"{spec.retriever.approximate!r}"
            )
        if spec.passages is not None and spec.passages not in POOLINGS:
            raise ArtifactError(
                f"{path}: expected passages null or one of {list(POOLINGS)}, got {spec.passages!r}"
            )
        for file, expected in (
            (Path(spec.reranker.path) / MANIFEST, spec.reranker.sha256),
            (Path(spec.sweep.path), spec.sweep.sha256),
        ):
            check_sha256(
                file,
                expected,
                f"pinned by {path} but missing",
                f"changed since {path} pinned it; refusing to run",
            )
        return spec


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
    approximate: bool = False,
    passages: str | None = None,
) -> PipelineSpec:
    """Write ``pipeline.json`` recording every artifact of the pipeline by sha256, and how
    it was run: ``approximate`` first-stage search, ``passages`` (their pooling) or not."""
    sweep = json.loads(Path(sweep_json).read_text())
    spec = PipelineSpec(
        data=str(Path(data).resolve()),
        retriever=RetrieverPin(
            retriever_kind,
            index_sha256(retriever),
            getattr(getattr(retriever, "params", None), "__dict__", {}),
            approximate,
        ),
        reranker=RerankerPin(
            str(Path(model_dir).resolve()), sha256_file(Path(model_dir) / MANIFEST), precision
        ),
        top_n=top_n,
        top_k=top_k,
        sweep=SweepPin(
            str(Path(sweep_json).resolve()), sha256_file(sweep_json), sweep["split"], sweep["knee"]
        ),
        fusion=fusion,
        passages=passages,
    )
    spec.save(path)
    return spec


def check_index(spec: PipelineSpec, retriever, pipeline_path: str | Path) -> None:
    """Refuse when the rebuilt first-stage index differs from the pinned one."""
    actual = index_sha256(retriever)
    if actual != spec.retriever.index_sha256:
        raise ArtifactError(
            f"{spec.data}/corpus.jsonl: the {spec.retriever.kind} index built from it "
            f"changed since {pipeline_path} pinned it (sha256 {actual[:12]}…, pinned "
            f"{spec.retriever.index_sha256[:12]}…); refusing to run"
        )


def open_pipeline(
    path: str | Path,
    cache_dir: str | Path | None = None,
    batch_size: int | None = None,
    threads: int | None = None,
    model: str | Path | None = None,
    precision: str | None = None,
    score_store: str | Path | None = None,
) -> tuple[PipelineSpec, RetrieveThenRerank]:
    """The pinned pipeline, rebuilt and checked; ``model``/``precision`` override the pinned
    reranker (the service's ``--model``); ``score_store``: see ``build_reranker``."""
    spec = PipelineSpec.load(path)
    params = spec.retriever.params
    retriever = build_retriever(
        spec.retriever.kind,
        spec.data,
        cache_dir,
        BM25Params(**params) if params else None,
        spec.retriever.approximate,
    )
    check_index(spec, retriever, path)
    reranker = build_reranker(
        model or spec.reranker.path,
        precision or spec.reranker.precision,
        batch_size,
        passages=spec.passages is not None,
        pooling=spec.passages or "first_max",
        threads=threads,
        score_store=score_store,
    )
    fusion = (
        artifact_fusion(reranker, spec.retriever.kind, cache_dir, threads)
        if spec.fusion == "auto"
        else None
    )
    return spec, RetrieveThenRerank(
        retriever, reranker, top_n=spec.top_n, top_k=spec.top_k, fusion=fusion
    )
