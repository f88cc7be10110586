"""The demo: train the tiny model on the fixture, export it, and rerank BM25 side by side."""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path

import yaml
from rich.console import Console
from rich.table import Table

from crossrank.data.beir import load_beir
from crossrank.data.examples import fixture_path
from crossrank.data.metrics import mean, mrr_at_k, ndcg_at_k, percentile
from crossrank.io import cache_dir as default_cache
from crossrank.pipeline.two_stage import PipelineResult, RetrieveThenRerank
from crossrank.retrieval.bm25 import bm25_for
from crossrank.runtime.reranker import OnnxReranker

PACKAGE = Path(__file__).resolve().parents[1]
# What the trained tiny model depends on: a change here retrains it.
TRAINING_SOURCES = ["train", "runtime/tokenization.py", "data"]


def _newest_mtime(paths: list[Path]) -> float:
    times = []
    for p in paths:
        files = p.rglob("*") if p.is_dir() else [p]
        times.extend(f.stat().st_mtime for f in files if f.is_file())
    return max(times, default=0.0)


def _checkpoint_path(config: Path) -> Path:
    cfg = yaml.safe_load(config.read_text())
    for cb in cfg.get("trainer", {}).get("callbacks", []) or []:
        if cb.get("class_path", "").endswith("ModelCheckpoint"):
            args = cb.get("init_args", {})
            return Path(args["dirpath"]) / f"{args.get('filename', 'best')}.ckpt"
    raise ValueError(f"{config}: expected a ModelCheckpoint callback with a dirpath, found none")


def ensure_checkpoint(config: Path, console: Console) -> Path:
    """Train with ``config`` unless its best checkpoint is newer than every training source."""
    ckpt = _checkpoint_path(config)
    sources = [config, fixture_path(), *(PACKAGE / s for s in TRAINING_SOURCES)]
    if ckpt.is_file() and ckpt.stat().st_mtime >= _newest_mtime(sources):
        console.print(f"[green]reusing[/] {ckpt} (newer than its sources)")
        return ckpt
    console.print(f"[bold]training[/] the tiny cross-encoder with {config} …")
    from crossrank.cli.train import main as train

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*args parameter is intended.*")
        train(["fit", "--config", str(config), "--trainer.enable_progress_bar", "false"])
    return ckpt


def ensure_artifact(ckpt: Path, console: Console) -> Path:
    out = ckpt.parent / "onnx"
    manifest = out / "crossrank.json"
    if manifest.is_file() and manifest.stat().st_mtime >= ckpt.stat().st_mtime:
        console.print(f"[green]reusing[/] {out} (exported from the current checkpoint)")
        return out
    from crossrank.export.onnx import export
    from crossrank.export.sources import from_checkpoint

    item, source = from_checkpoint(ckpt)
    result = export(item, out, int8=True, source=source)
    console.print(
        f"exported {out}: parity max |Δ| {result.parity['max_abs_diff']:.1e}, "
        f"int8 top-10 agreement {result.int8['top10_agreement']:.2f}"
    )
    return out


def _side_by_side(
    result: PipelineResult,
    judged: dict[str, int],
    titles: dict[str, str],
    k: int,
    answers: list[float] | None = None,
) -> Table:
    """BM25's top ``k`` beside the reranked top ``k`` (and its answer probabilities)."""
    table = Table(title=f"[bold]{result.query}[/]", show_lines=False)
    columns = ["#", "BM25 doc", "title", "score", "gold", "reranked doc", "title", "score", "gold"]
    for col in columns + (["answer"] if answers is not None else []):
        table.add_column(
            col, overflow="ellipsis", no_wrap=True, max_width=34 if col == "title" else None
        )
    for i in range(k):
        row = [str(i + 1)]
        for hit in (result.first_stage, result.reranked):
            if i < len(hit):
                h = hit[i]
                grade = judged.get(h.doc_id)
                gold = "-" if grade is None else f"[{'green' if grade else 'red'}]{grade}[/]"
                row += [h.doc_id, titles[h.doc_id], f"{h.score:.2f}", gold]
            else:
                row += ["", "", "", ""]
        if answers is not None:
            row.append(f"{answers[i]:.2f}" if i < len(answers) else "")
        table.add_row(*row)
    return table


def run_demo(
    config: str | Path = "configs/tiny.yaml",
    top_n: int = 30,
    top_k: int = 5,
    show: int = 3,
    cache_dir: str | None = None,
    model: str | Path | None = None,
    console: Console | None = None,
) -> dict:
    """Run the whole demo and return its summary (nDCG@10 before and after, latencies).

    ``model``: an exported artifact to rerank with instead of training the tiny one."""
    if console is None:
        console = Console()
        if not console.is_terminal:
            console = Console(width=150)
    logging.getLogger("lightning").setLevel(logging.WARNING)
    started = time.perf_counter()
    if model is None:
        artifact = ensure_artifact(ensure_checkpoint(Path(config), console), console)
    else:
        artifact = Path(model)
        console.print(f"reranking with {artifact} (no training)")
    data = load_beir(fixture_path(), "eval")
    doc_ids = list(data.corpus)
    retriever = bm25_for(data, default_cache(cache_dir))
    reranker = OnnxReranker(artifact)
    two_stage = RetrieveThenRerank(retriever, reranker, top_n=top_n, top_k=max(top_k, 10))
    titles = {d: data.corpus[d]["title"] for d in doc_ids}
    before, after, timings = [], [], {"retrieve": [], "rerank": []}
    mrr, first_right = [], 0
    for i, qid in enumerate(data.judged_queries()):
        result = two_stage.run(data.queries[qid])
        judged = data.qrels[qid]
        ranked = [h.doc_id for h in result.reranked]
        before.append(ndcg_at_k([h.doc_id for h in result.first_stage], judged))
        after.append(ndcg_at_k(ranked, judged))
        mrr.append(mrr_at_k(ranked, judged, 10))
        first_right += bool(ranked) and judged.get(ranked[0], 0) >= 1
        for stage in timings:
            timings[stage].append(result.timings_ms[stage])
        if i < show:
            answers = None
            if reranker.has_answer_head:
                shown = [h.text for h in result.reranked[:top_k]]
                answers = reranker.score_with_answer(result.query, shown)[1].tolist()
            console.print(_side_by_side(result, judged, titles, top_k, answers))
    lat = Table(title="latency per query (ms)")
    for col in ("stage", "p50", "p95"):
        lat.add_column(col)
    for stage, values in timings.items():
        lat.add_row(stage, f"{percentile(values, 50):.2f}", f"{percentile(values, 95):.2f}")
    console.print(lat)
    summary = {
        "queries": len(before),
        "top_n": top_n,
        "ndcg@10_first_stage": mean(before),
        "ndcg@10_reranked": mean(after),
        "mrr@10_reranked": mean(mrr),
        "gold_at_rank_1": first_right,
        "latency_ms": {
            s: {"p50": percentile(v, 50), "p95": percentile(v, 95)} for s, v in timings.items()
        },
        "wall_s": time.perf_counter() - started,
    }
    lift = summary["ndcg@10_reranked"] - summary["ndcg@10_first_stage"]
    console.print(
        f"nDCG@10 over {len(before)} eval queries: BM25 {summary['ndcg@10_first_stage']:.3f} → "
        f"reranked {summary['ndcg@10_reranked']:.3f} ([bold {'green' if lift > 0 else 'red'}]"
        f"{lift:+.3f}[/]) in {summary['wall_s']:.1f} s"
    )
    console.print(
        f"reranked rank 1 is a gold document (grade >= 1) for {first_right} of {len(before)} "
        f"queries; reranked MRR@10 {summary['mrr@10_reranked']:.3f}"
    )
    return summary


def run(args) -> int:
    summary = run_demo(args.config, top_n=args.top_n, top_k=args.top_k, model=args.model)
    return 0 if summary["ndcg@10_reranked"] > summary["ndcg@10_first_stage"] else 1


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="train, export and rerank the fixture corpus end to end")
    p.add_argument("--config", default="configs/tiny.yaml")
    p.add_argument("--model", help="an exported artifact (e.g. a trained MiniLM) instead of tiny")
    p.add_argument("--top-n", type=int, default=30)
    p.add_argument("--top-k", type=int, default=5)
    p.set_defaults(func=run)
