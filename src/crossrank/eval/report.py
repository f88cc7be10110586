"""Tables and plots of eval and sweep results."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from crossrank.io import atomic_file


def print_report(report: dict, console: Console | None = None) -> None:
    """The ``crossrank eval`` report as a table: one row per stage."""
    console = console or Console(width=140)
    table = Table(
        title=f"{report['dataset']} {report['split']}: {report['queries']} queries, "
        f"{report['retriever']} top {report['top_n']}"
    )
    metrics = list(report["first_stage"])
    for col in ("stage", *metrics, "p50 ms", "p95 ms"):
        table.add_column(col, justify="left" if col == "stage" else "right")
    lat = report["latency_ms"]
    rows = [(report["retriever"], report["first_stage"], lat["retrieve"])]
    if report.get("reranker_alone") is not None:
        rows.append(
            (f"reranker alone ({report['precision']})", report["reranker_alone"], lat["rerank"])
        )
    if report["reranked"] is not None:
        name = "fused" if report.get("reranker_alone") is not None else "reranked"
        rows.append((f"{name} ({report['precision']})", report["reranked"], lat["rerank"]))
    for name, values, timing in rows:
        table.add_row(
            name,
            *(f"{values[m]:.4f}" for m in metrics),
            *((f"{timing['p50']:.1f}", f"{timing['p95']:.1f}") if timing else ("-", "-")),
        )
    console.print(table)


def print_sweep(result: dict, console: Console | None = None) -> None:
    """The ``crossrank sweep`` rows as a table, the knee in the title."""
    table = Table(title=f"sweep ({result['queries']} queries); knee N={result['knee']}")
    for col in ("N", "nDCG@10", "R@1", "MRR@10", "ceiling R@N", "p50 ms", "p95 ms"):
        table.add_column(col, justify="right")
    for r in result["rows"]:
        table.add_row(
            str(r["n"]),
            f"{r['ndcg@10']:.4f}",
            f"{r['recall@1']:.4f}",
            f"{r['mrr@10']:.4f}",
            f"{r['ceiling_recall@n']:.4f}",
            f"{r['rerank_p50_ms']:.1f}",
            f"{r['rerank_p95_ms']:.1f}",
        )
    console = console or Console(width=140)
    console.print(table)
    if result.get("knee_any_n", result["knee"]) < result["knee"]:
        console.print(
            f"the curve's knee lies at N={result['knee_any_n']}, below 3 x top_k = "
            f"{result['min_n']}; pinned N={result['knee']} so the reranker can reorder the top "
            f"{result['top_k']}"
        )


def plot_sweep(result: dict, path: Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    ns = [r["n"] for r in rows]
    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    ax.plot(ns, [r["ndcg@10"] for r in rows], "o-", label="nDCG@10 (reranked)")
    ax.plot(ns, [r["mrr@10"] for r in rows], "s-", label="MRR@10 (reranked)")
    ax.plot(ns, [r["recall@1"] for r in rows], "^-", label="Recall@1 (reranked)")
    ax.plot(ns, [r["ceiling_recall@n"] for r in rows], "k--", label="stage-1 Recall@N (ceiling)")
    k = result["knee"]
    ax.axvline(
        k,
        color="tab:red",
        linestyle=":",
        label=f"knee N={k} (within {result['knee_tolerance']} of best nDCG@10)",
    )
    ax.set_xscale("log")
    ax.set_xticks(ns, [str(n) for n in ns])
    ax.set_xlabel("candidates reranked (N)")
    ax.set_ylabel("quality")
    ax.set_ylim(0, 1)
    lat = ax.twinx()
    for q, style in (("p50", "-"), ("p95", "--")):
        values = [r[f"rerank_{q}_ms"] for r in rows]
        lat.plot(
            ns, values, color="tab:gray", marker="x", linestyle=style, label=f"rerank {q} (ms)"
        )
    lat.set_ylabel("rerank latency per query (ms)")
    lines = ax.get_legend_handles_labels()
    more = lat.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], loc="upper left", fontsize=8)
    ax.set_title(title or f"{result['dataset']} {result['split']} ({result['queries']} queries)")
    fig.tight_layout()
    with atomic_file(path, "wb") as f:
        fig.savefig(f, format="png")
    plt.close(fig)
