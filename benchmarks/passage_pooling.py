"""Long documents: truncation against passage pooling, on the same scores.

    python benchmarks/passage_pooling.py [--model DIR] [--data BEIR] [--split dev] [--max-queries 120]

For each judged query, the BM25 top 100 are scored once truncated to the window and once as
passages (crossrank.passages: word-aligned, a quarter overlap, at most 16 per document); every
pooling is then evaluated on those passage scores, so the rows differ only in pooling. Choose
the pooling on dev; `crossrank eval --passages --pooling P` reproduces a row on any split.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    from rich.progress import track

    from crossrank.data.beir import load_beir
    from crossrank.evaluation import select_queries
    from crossrank.metrics import ndcg_at_k
    from crossrank.passages import POOLINGS, document_budget, per_document, pool, split_passages
    from crossrank.retrieval.bm25 import cached_bm25
    from crossrank.runtime import OnnxReranker

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--model", default=str(ROOT / "checkpoints" / "minilm-nfcorpus-long" / "onnx")
    )
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "nfcorpus"))
    parser.add_argument("--split", default="dev")
    parser.add_argument("--max-queries", type=int)
    parser.add_argument("--precision", default="int8")
    parser.add_argument("--batch-size", type=int, help="pairs per call (default: the backend's)")
    parser.add_argument(
        "--output", default=str(ROOT / "benchmarks" / "results" / "passage_pooling_{split}.json")
    )
    args = parser.parse_args()
    ds = load_beir(args.data, args.split)
    ids = list(ds.corpus)
    bm25 = cached_bm25(ids, [ds.doc_text(d) for d in ids], ROOT / ".cache" / "crossrank")
    reranker = OnnxReranker(args.model, precision=args.precision, batch_size=args.batch_size)
    qids, _ = select_queries(ds, args.max_queries)
    ndcg: dict[str, list[float]] = {"truncation": [], **{p: [] for p in POOLINGS}}
    passages_per_doc = []
    for qid in track(qids, description=f"{args.split} queries", transient=True):
        query = ds.queries[qid]
        hits = bm25.retrieve(query, 100)
        docs = [h.doc_id for h in hits]
        budget = document_budget(reranker.tokenizer, query, reranker.max_length)
        units = [split_passages(reranker.tokenizer, h.text, budget) for h in hits]
        flat = [t for u in units for t in u]
        scores = reranker.score_pairs([query] * len(flat), flat)
        per = per_document(scores, units)
        passages_per_doc += [len(u) for u in units]
        runs = {"truncation": reranker.score(query, [h.text for h in hits])}
        runs.update({p: np.array([pool(s, p) for s in per]) for p in POOLINGS})
        for name, s in runs.items():
            ranked = [docs[i] for i in np.argsort(-s, kind="stable")]
            ndcg[name].append(ndcg_at_k(ranked, ds.qrels[qid], 10))
    counts = np.array(passages_per_doc)
    result = {
        "model": args.model, "precision": args.precision, "data": args.data, "split": args.split,
        "queries": len(qids), "window": reranker.max_length, "batch_size": reranker.batch_size,
        "documents_longer_than_window": float((counts > 1).mean()),
        "passages_per_document": float(counts.mean()),
        "ndcg@10": {k: float(np.mean(v)) for k, v in ndcg.items()},
    }  # fmt: skip
    print(
        f"{args.split}: {len(qids)} queries, BM25 top 100, window {reranker.max_length}; "
        f"{result['documents_longer_than_window']:.1%} of candidates longer than the window, "
        f"{result['passages_per_document']:.2f} passages per document"
    )
    base = result["ndcg@10"]["truncation"]
    for name, value in result["ndcg@10"].items():
        print(f"{name:<12} nDCG@10 {value:.4f}  ({value - base:+.4f} vs truncation)")
    out = Path(args.output.format(split=args.split))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print("wrote", out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
