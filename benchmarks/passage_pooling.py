"""Long documents: truncation against passage pooling, on the same scores.

    python benchmarks/passage_pooling.py --model ARTIFACT --data BEIR_DIR [--split dev] [--max-queries 120]

For each judged query, the BM25 top 100 are scored once truncated to the window and once as
passages (crossrank.runtime.passages: word-aligned, a quarter overlap, at most 16 per document); every
pooling is then evaluated on those passage scores, so the rows differ only in pooling. Choose
the pooling on dev; `crossrank eval --passages --pooling P` reproduces a row on any split.
"""

from __future__ import annotations

import argparse

import numpy as np
from common import dataset_and_bm25, machine, machine_line, output_path, write_json

from crossrank.runtime.precision import PRECISIONS


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True, help="crossrank artifact directory")
    parser.add_argument("--data", required=True, help="BEIR folder, e.g. NFCorpus")
    parser.add_argument("--split", default="dev")
    parser.add_argument("--max-queries", type=int)
    parser.add_argument("--precision", default="int8", choices=PRECISIONS)
    parser.add_argument("--batch-size", type=int, help="pairs per call (default: the backend's)")
    parser.add_argument("--max-length", type=int, help="a narrower window than the artifact's")
    parser.add_argument(
        "--output", default=output_path("passage_pooling_{split}.json"), help="default: %(default)s"
    )
    args = parser.parse_args()

    from rich.progress import track

    from crossrank.data.metrics import ndcg_at_k
    from crossrank.eval.evaluate import select_queries
    from crossrank.runtime import OnnxReranker
    from crossrank.runtime.passages import POOLINGS, document_units, flatten, pool_units

    info = machine()
    print(machine_line(info))
    ds, bm25 = dataset_and_bm25(args.data, args.split)
    reranker = OnnxReranker(
        args.model,
        precision=args.precision,
        batch_size=args.batch_size,
        max_length=args.max_length,
    )
    qids, _ = select_queries(ds, args.max_queries)
    ndcg: dict[str, list[float]] = {"truncation": [], **{p: [] for p in POOLINGS}}
    passages_per_doc = []
    for qid in track(qids, description=f"{args.split} queries", transient=True):
        query = ds.queries[qid]
        hits = bm25.retrieve(query, 100)
        docs, texts = [h.doc_id for h in hits], [h.text for h in hits]
        units = document_units(reranker.tokenizer, query, texts, reranker.max_length)
        flat = flatten(units)
        scores = reranker.score_pairs([query] * len(flat), flat)
        passages_per_doc += [len(u) for u in units]
        runs = {"truncation": reranker.score(query, texts)}
        runs.update({p: pool_units(scores, units, p) for p in POOLINGS})
        for name, s in runs.items():
            ranked = [docs[i] for i in np.argsort(-s, kind="stable")]
            ndcg[name].append(ndcg_at_k(ranked, ds.qrels[qid], 10))
    counts = np.array(passages_per_doc)
    result = {
        "machine": info,
        "model": args.model, "precision": reranker.precision, "data": args.data, "split": args.split,
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
    write_json(args.output.format(split=args.split), result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
