"""Which queries the novelty guard touches: one pooled scale (the guard before per-collection
scales) against one scale per training collection, read on held-out splits of the training
collections (in domain: ~``--percentile`` % should be guarded) and on collections left out of the
reference (out of domain: as many as possible). Nothing is scored; trust is read the way
``crossrank fuse`` fits it.

    python benchmarks/guard_coverage.py \\
        --collection ../shared/data/nfcorpus:train:dev --collection ../shared/data/wikiqa:train:dev \\
        --probe ../shared/data/nfcorpus:test --probe ../shared/data/wikiqa:test \\
        --probe ../shared/data/scifact:train

A collection is ``DATA:REFERENCE_SPLIT[:CALIBRATION_SPLIT]`` (no calibration: leave-one-out).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import common
import numpy as np


def queries(data: str, split: str) -> list[str]:
    from crossrank.cli.novelty_guard import judged_queries

    return judged_queries([(data, split)])  # the texts `crossrank fuse` reads


def main() -> int:
    from crossrank.pipeline.novelty import Collection, fit_novelty
    from crossrank.pipeline.stages import require_bi_encoder
    from crossrank.retrieval.dense import OnnxEmbedder

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--collection", action="append", required=True)
    parser.add_argument("--probe", action="append", required=True, help="DATA:SPLIT, repeatable")
    parser.add_argument("--percentile", type=float, default=10.0)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--cache-dir", help="where the bi-encoder is (default: project cache)")
    parser.add_argument("--output", default=common.output_path("guard_coverage.json"))
    args = parser.parse_args()

    collections = []
    for entry in args.collection:
        data, reference, *calibration = entry.split(":")
        if len(calibration) > 1:
            raise SystemExit(f"expected DATA:REFERENCE[:CALIBRATION], got {entry!r}")
        cal = queries(data, calibration[0]) if calibration else None
        collections.append(Collection(Path(data).name, queries(data, reference), cal))
    named = [c.calibration for c in collections if c.calibration is not None]
    pooled = Collection(
        "pooled",
        [q for c in collections for q in c.reference],
        [q for cal in named for q in cal] if named else None,
    )
    probes = [(p, queries(*p.rsplit(":", 1))) for p in args.probe]
    fit = [q for _, texts in probes for q in texts]
    embedder = OnnxEmbedder(require_bi_encoder(args.cache_dir, "the guard coverage benchmark"))
    arms = {
        "pooled scale": fit_novelty(embedder, [pooled], fit, args.percentile, args.k)[2],
        "per-collection scales": fit_novelty(embedder, collections, fit, args.percentile, args.k)[
            2
        ],
    }
    rows, start = [], 0
    for probe, texts in probes:
        data = probe.rsplit(":", 1)[0]
        known = any(Path(data).name == c.name for c in collections)
        for arm, trusts in arms.items():
            part = trusts[start : start + len(texts)]
            rows.append(
                {
                    "probe": Path(data).name + ":" + probe.rsplit(":", 1)[1],
                    "in_reference": known,
                    "scale": arm,
                    "queries": len(texts),
                    "share_guarded": float(np.mean(part < 1.0)),
                    "mean_trust": float(np.mean(part)),
                }
            )
        start += len(texts)
    title = f"Novelty guard coverage (percentile {args.percentile:g}, k {args.k}), {common.machine_line()}"
    common.print_table(
        title,
        [
            ("probe", "probe", "<18"),
            ("collection", lambda r: "trained on" if r["in_reference"] else "left out", "<12"),
            ("scale", "scale", "<24"),
            ("queries", "queries", ">8d"),
            ("guarded", lambda r: f"{r['share_guarded']:.1%}", ">9"),
            ("mean trust", "mean_trust", ">11.3f"),
        ],
        rows,
    )
    common.write_json(
        args.output,
        {
            "machine": common.machine(),
            "collections": args.collection,
            "percentile": args.percentile,
            "k": args.k,
            "rows": rows,
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
