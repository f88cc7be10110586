"""Load test of ``crossrank serve`` on 127.0.0.1: throughput, latency and correctness under
concurrency 1/4/16/64, requests of 20-100 real documents, bounded to ~60 s of load.

    python benchmarks/serve_load.py --model ARTIFACT --data BEIR_DIR [--seconds 12] [--no-micro-batching]

Requests come from a fixed pool whose expected rankings are computed first with a direct
runtime call; the server runs with its score cache off so every request is inferred. Every
200 response is checked against the direct ranking (nothing lost or mixed between concurrent
requests). Scores do not depend on batch-mates at any precision (int8 scores one pair per
call), so every score must equal the direct one.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
from common import (
    Column,
    dataset_and_bm25,
    machine,
    machine_line,
    output_path,
    print_table,
    write_json,
)

from crossrank.runtime.precision import PRECISIONS

LEVELS = (1, 4, 16, 64)


def request_pool(
    data: str, size: int, seed: int = 0, docs: tuple[int, int] = (20, 100)
) -> list[tuple[str, list[str]]]:
    """(query, ``docs`` BM25 candidates, a range) from the dev split of a BEIR folder (else test)."""
    split = "dev" if (Path(data) / "qrels" / "dev.tsv").is_file() else "test"
    ds, bm25 = dataset_and_bm25(data, split)
    rng = random.Random(seed)
    pool = []
    for qid in ds.judged_queries()[:size]:
        hits = bm25.retrieve(ds.queries[qid], rng.randint(*docs))
        pool.append((ds.queries[qid], [h.text for h in hits]))
    return pool


def add_server_args(parser, precision: str) -> None:
    """--model, --data and --precision, shared by the service benchmarks."""
    parser.add_argument("--model", required=True, help="crossrank artifact directory")
    parser.add_argument("--data", required=True, help="BEIR folder (its dev split, else test)")
    parser.add_argument("--precision", default=precision, choices=PRECISIONS)


def start_server(model: str, port: int, extra: list[str]) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "crossrank.cli.main", "serve", "--model", model, "--port", str(port),
           "--cache-mb", "0", *extra]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"server did not start: {proc.stderr.read()}")


def check(expected: np.ndarray, body: dict, tol: float) -> str:
    """'exact', 'ties' (orders differ only where direct scores are within tol) or 'wrong'."""
    got = [r["index"] for r in body["results"]]
    if sorted(got) != list(range(len(expected))):
        return "wrong"
    server = {r["index"]: r["relevance_score"] for r in body["results"]}
    if max(abs(server[i] - expected[i]) for i in server) > 10 * tol:
        return "wrong"
    want = list(np.argsort(-expected, kind="stable"))
    if got == want:
        return "exact"
    rank = {d: r for r, d in enumerate(got)}
    for a in range(len(want)):
        for b in range(a + 1, len(want)):
            i, j = want[a], want[b]
            if rank[i] > rank[j] and expected[i] - expected[j] > tol:
                return "wrong"
    return "ties"


async def level(url, pool, expected, concurrency, seconds, tol) -> dict:
    statuses: dict[int, int] = {}
    latencies, outcomes = [], {"exact": 0, "ties": 0, "wrong": 0}
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:

        async def user(k: int) -> None:
            rng = random.Random(k)
            while time.perf_counter() < deadline:
                i = rng.randrange(len(pool))
                query, docs = pool[i]
                t0 = time.perf_counter()
                r = await client.post(
                    url, json={"query": query, "documents": docs, "raw_scores": True}
                )
                latencies.append(time.perf_counter() - t0)
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                if r.status_code == 200:
                    outcomes[check(expected[i], r.json(), tol)] += 1
                elif r.status_code == 429:
                    await asyncio.sleep(0.05)  # a client backs off before retrying

        t0 = time.perf_counter()
        await asyncio.gather(*(user(k) for k in range(concurrency)))
        wall = time.perf_counter() - t0
    ok = statuses.get(200, 0)
    ms = sorted(x * 1e3 for x in latencies)
    pct = lambda q: ms[min(len(ms) - 1, int(q / 100 * len(ms)))] if ms else float("nan")  # noqa: E731
    return {
        "concurrency": concurrency,
        "requests": len(latencies),
        "ok_per_s": ok / wall,
        "docs_per_s": ok / wall * statistics.mean(len(d) for _, d in pool),
        "p50_ms": pct(50), "p95_ms": pct(95), "p99_ms": pct(99),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "checked": outcomes,
    }  # fmt: skip


COLUMNS: list[Column] = [
    ("conc", "concurrency", ">5"),
    ("req", "requests", ">6"),
    ("ok/s", "ok_per_s", ">7.2f"),
    ("docs/s", "docs_per_s", ">8.0f"),
    ("p50", "p50_ms", ">8.0f"),
    ("p95", "p95_ms", ">8.0f"),
    ("p99", "p99_ms", ">8.0f"),
    ("  statuses / checks", lambda r: f"  {r['statuses']} {r['checked']}", ""),
]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_server_args(parser, "int8")
    parser.add_argument("--seconds", type=float, default=12.0, help="per concurrency level")
    parser.add_argument("--pool", type=int, default=40, help="distinct requests")
    parser.add_argument("--max-queue", type=int, default=8)
    parser.add_argument("--no-micro-batching", action="store_true")
    parser.add_argument(
        "--output",
        default=output_path("serve_load.json"),
        help="default: results/serve_load.json (serve_load_no_microbatch.json with --no-micro-batching)",
    )
    args = parser.parse_args()
    if args.seconds * len(LEVELS) > 60:
        parser.error(f"expected at most 60 s of load in all, got {args.seconds} x {len(LEVELS)}")
    from crossrank.runtime import OnnxReranker

    info = machine()
    pool = request_pool(args.data, args.pool)
    direct = OnnxReranker(args.model, precision=args.precision)
    expected = [direct.score(q, d) for q, d in pool]
    tol = 1e-6
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    extra = ["--precision", args.precision, "--max-queue", str(args.max_queue)]
    if args.no_micro_batching:
        extra.append("--no-micro-batching")
    proc = start_server(args.model, port, extra)
    try:
        url = f"http://127.0.0.1:{port}/v2/rerank"
        rows = [asyncio.run(level(url, pool, expected, c, args.seconds, tol)) for c in LEVELS]
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        healthy = httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200
    finally:
        proc.terminate()
        proc.wait(30)
    print(machine_line(info))
    batching = "off" if args.no_micro_batching else "on"
    title = f"{args.model} ({args.precision}), max-queue {args.max_queue}, micro-batching "
    title += f"{batching}, {args.seconds:.0f} s per level"
    print_table(title, COLUMNS, rows)
    batches = [line for line in metrics.splitlines() if line.startswith("crossrank_batch_pairs_")]
    result = {
        "machine": info, "model": args.model, "precision": args.precision, "max_queue": args.max_queue,
        "micro_batching": not args.no_micro_batching, "seconds_per_level": args.seconds,
        "pool": len(pool), "tolerance": tol, "levels": rows, "healthy_after": healthy,
        "batch_metrics": batches,
    }  # fmt: skip
    out = Path(args.output)
    if args.no_micro_batching and out.name == "serve_load.json":
        out = out.with_name("serve_load_no_microbatch.json")
    write_json(out, result)
    print("healthy after:", healthy)
    wrong = sum(r["checked"]["wrong"] for r in rows)
    errors = sum(v for r in rows for k, v in r["statuses"].items() if k.startswith("5"))
    return 1 if wrong or errors or not healthy else 0


if __name__ == "__main__":
    raise SystemExit(main())
