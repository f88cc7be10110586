"""Training throughput of the MiniLM cross-encoder on this CPU: pairs per second through a
full step (forward, backward, optimizer), fp32 against bf16 autocast, at 128 and 256 tokens,
padded to each batch's longest pair against length-sorted micro-batches, with the encoder's own
attention dropout (0.1) against none (``attention_dropout: 0``: no random mask over every head's
attention matrix, and PyTorch's fused CPU attention), PyTorch's default AdamW (a loop over
the parameters on CPU) against the fused one that training uses (``crossrank.train.optim``),
and, with ``--freeze K``, the recipe's step with the embeddings and the bottom K layers frozen
(``model.freeze_layers``: backward stops above them).

    python benchmarks/train_speed.py --data BEIR_DIR [--steps 6] [--groups 8] [--negatives 7]
                                     [--force-bf16] [--freeze K ...] [--recipe-only]

Batches are what training sees: ``--groups`` queries of the train split, each with a judged
positive and ``--negatives`` BM25 candidates (64 pairs per step by default), through the real
``CrossEncoderModule``, its listwise loss, gradient clipping at 1.0 and the recipe's AdamW
(lr 5e-5, head 1e-3, weight decay 0.01). The first step of each variant is a warm-up and
is not timed; the rest are timed one by one (medians). Peak RSS is this whole process's.

First a matmul probe (the FFN's shape, 2,048 tokens x 384 -> 1,536) in fp32 and bf16 shows
whether this CPU has fast bf16; where it has no bf16 matrix instructions (avx512_bf16, amx_bf16)
the bf16 training rows are skipped, as ``crossrank train`` trains in fp32 there, unless
``--force-bf16``. Then an optimizer probe times one AdamW ``step()`` over the model's
parameters, looped and fused.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from common import (
    Column,
    dataset_and_bm25,
    machine,
    machine_line,
    output_path,
    print_table,
    write_json,
)

from crossrank.runtime.hardware import cpu_info


def make_batches(data: str, steps: int, groups: int, negatives: int) -> list[tuple[list, list]]:
    ds, bm25 = dataset_and_bm25(data, "train")
    batches, queries, docs = [], [], []
    for qid in ds.judged_queries():
        positives = [d for d, g in ds.qrels[qid].items() if g > 0 and d in ds.corpus]
        hits = [h for h in bm25.retrieve(ds.queries[qid], 50) if h.doc_id not in ds.qrels[qid]]
        if not positives or len(hits) < negatives:
            continue
        for d in [positives[0], *(h.doc_id for h in hits[:negatives])]:
            queries.append(ds.queries[qid])
            docs.append(ds.doc_text(d))
        if len(queries) == groups * (negatives + 1):
            batches.append((queries, docs))
            queries, docs = [], []
            if len(batches) == steps:
                break
    return batches


def matmul_probe(repeats: int = 3) -> dict[str, float]:
    """GFLOP/s of one FFN-shaped matmul in fp32 and in bf16 on this CPU (best of ``repeats``)."""
    a, b = torch.randn(2048, 384), torch.randn(384, 1536)
    out = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        x, y = a.to(dtype), b.to(dtype)
        x @ y  # warm-up: oneDNN picks and caches its kernel
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            x @ y
            best = min(best, time.perf_counter() - t0)
        out[f"{name}_gflops"] = 2 * 2048 * 384 * 1536 / best / 1e9
    return out


RECIPE_ADAMW = (5e-5, 1e-3, 0.01)  # configs/minilm-nfcorpus.yaml: lr, head_lr, weight_decay


def optimizer_probe(repeats: int = 5) -> dict[str, float]:
    """Seconds per ``step()`` of the training AdamW over the MiniLM cross-encoder's parameters
    (random gradients, median of ``repeats``): PyTorch's default loop against the fused kernel."""
    from crossrank.train.model import CrossEncoder, CrossEncoderConfig
    from crossrank.train.optim import adamw

    model = CrossEncoder(CrossEncoderConfig(pretrained="minilm-l6"))
    for p in model.parameters():
        p.grad = torch.randn_like(p) * 1e-3
    out = {}
    for name, fused in (("loop_s", False), ("fused_s", True)):
        optimizer = adamw(model, *RECIPE_ADAMW, fused=fused)
        optimizer.step()  # warm-up: creates the moment buffers
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            optimizer.step()
            times.append(time.perf_counter() - t0)
        out[name] = statistics.median(times)
    return out


def run(
    batches,
    max_length: int,
    bf16: bool,
    micro: int | None,
    groups: int,
    attention: float | None,
    fused: bool,
    freeze: int = 0,
) -> dict:
    from crossrank.train.losses import get_loss
    from crossrank.train.model import CrossEncoderConfig
    from crossrank.train.module import CrossEncoderModule
    from crossrank.train.optim import adamw

    torch.manual_seed(0)
    module = CrossEncoderModule(
        CrossEncoderConfig(
            pretrained="minilm-l6", max_length=max_length, attention_dropout=attention
        ),
        micro_batch=micro,
        freeze_layers=freeze,
    )
    module.train()
    loss_fn = get_loss("listwise")
    optimizer = adamw(module.model, *RECIPE_ADAMW, fused=fused)
    times, tokens = [], []
    for step, (queries, docs) in enumerate(batches):
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            scores, _ = module.outputs(queries, docs)
        labels = torch.zeros(groups, len(docs) // groups, dtype=torch.long)
        labels[:, 0] = 1
        loss = loss_fn(scores.float().view_as(labels), labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(module.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step:
            times.append(time.perf_counter() - t0)
            tokens.append(sum(len(x) for x in module.tokenizer.token_ids(docs, max_length)))
    per_step = statistics.median(times)
    return {
        "max_length": max_length,
        "precision": "bf16 autocast" if bf16 else "fp32",
        "batches": f"sorted micro-batches of {micro}" if micro else "padded to longest",
        "attention_dropout": 0.1 if attention is None else attention,
        "optimizer": "fused AdamW" if fused else "AdamW loop",
        "frozen_layers": freeze,
        "pairs_per_s": len(batches[0][0]) / per_step,
        "s_per_step": per_step,
        "loss_last": float(loss),
    }


COLUMNS: list[Column] = [
    ("window", "max_length", ">6"),
    ("  precision", lambda r: f"  {r['precision']}", "<17"),
    ("batches", "batches", "<30"),
    ("attn dropout", "attention_dropout", ">12.1f"),
    ("  optimizer", lambda r: f"  {r['optimizer']}", "<13"),
    ("frozen", lambda r: r.get("frozen_layers", 0), ">6"),
    ("pairs/s", "pairs_per_s", ">9.1f"),
    ("s/step", "s_per_step", ">8.2f"),
]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", required=True, help="BEIR folder with a train split")
    parser.add_argument("--steps", type=int, default=6, help="steps per variant (1 warm-up)")
    parser.add_argument("--groups", type=int, default=8)
    parser.add_argument("--negatives", type=int, default=7)
    parser.add_argument("--micro", type=int, default=16, help="pairs per sorted micro-batch")
    parser.add_argument("--output", default=output_path("train_speed.json"))
    parser.add_argument(
        "--force-bf16", action="store_true", help="time bf16 even without bf16 instructions"
    )
    parser.add_argument(
        "--freeze",
        type=int,
        action="append",
        default=[],
        help="also time the recipe's step with the embeddings and this many bottom layers frozen",
    )
    parser.add_argument(
        "--recipe-only", action="store_true", help="skip the reference variants (PyTorch defaults)"
    )
    args = parser.parse_args()
    info = machine()
    torch.set_num_threads(info["cores"])
    probe = matmul_probe()
    native = cpu_info().native_bf16
    print(
        f"matmul probe: fp32 {probe['fp32_gflops']:.1f} GFLOP/s, bf16 {probe['bf16_gflops']:.1f} "
        f"GFLOP/s; bf16 matrix instructions: {'yes' if native else 'no'}",
        flush=True,
    )
    optim = optimizer_probe()
    print(
        f"AdamW step(): {optim['loop_s']:.3f} s looped, {optim['fused_s']:.3f} s fused", flush=True
    )
    precisions = (False, True) if native or args.force_bf16 else (False,)
    batches = make_batches(args.data, args.steps, args.groups, args.negatives)
    rows = []
    recipe = (None, 0.0, True, 0)  # what the NFCorpus recipe trains with
    variants = [  # (micro-batch, attention dropout, fused AdamW, frozen layers)
        (None, None, False, 0),  # the reference: PyTorch's defaults; None: MiniLM's own 0.1
        (None, 0.0, False, 0),
        recipe,
        (args.micro, 0.0, True, 0),
    ]
    if args.recipe_only:
        variants = [recipe]
    variants += [(None, 0.0, True, k) for k in args.freeze]
    for max_length in (128, 256):
        for bf16 in precisions:
            for micro, attention, fused, freeze in variants:
                rows.append(
                    run(batches, max_length, bf16, micro, args.groups, attention, fused, freeze)
                )
                print(rows[-1], flush=True)
    print(machine_line(info))
    print_table(
        f"MiniLM-L6 cross-encoder, {len(batches[0][0])} pairs per step (listwise, AdamW), "
        f"median of {args.steps - 1} steps",
        COLUMNS,
        rows,
    )
    rss = next(
        line.split()[1] for line in Path("/proc/self/status").read_text().splitlines()
        if line.startswith("VmHWM")
    )  # fmt: skip
    result = {
        "machine": info,
        "matmul_probe": probe,
        "optimizer_probe": optim,
        "native_bf16": native,
        "rows": rows,
    }
    write_json(args.output, {**result, "peak_rss_mib": int(rss) / 1024})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
