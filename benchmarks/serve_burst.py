"""A burst against ``crossrank serve``: many large requests at once, with small requests
arriving during it. What a service on a network must hold: no 5xx, no request lost, every
429 with ``Retry-After``, and small requests served while the large ones wait their turn.

    python benchmarks/serve_burst.py --model ARTIFACT --data BEIR_DIR [--large 100] [--docs 100]

Each large request is (query, ``--docs`` BM25 candidates); each client retries a 429 after
the ``Retry-After`` it got, for at most ``--patience`` seconds in all. Small requests (3 documents) arrive
every 100 ms during the burst. The same small requests are first timed on an idle server,
so the table shows what the burst costs them. Every 200's scores are compared with a direct
runtime call on the same pairs: with batch-independent scoring they must be equal.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

import httpx
from common import Column, machine, machine_line, output_path, pct, print_table, write_json
from serve_load import add_server_args, request_pool, start_server


async def burst(url: str, large, small, patience: float, expected) -> dict:
    out = {"5xx": 0, "lost": 0, "429": 0, "429_retry_after": 0, "mismatch": 0}
    large_ms, small_ms, gave_up, waits = [], [], 0, []
    limits = httpx.Limits(max_connections=len(large) + 8)
    async with httpx.AsyncClient(timeout=300, limits=limits) as client:

        async def call(body: dict, key: int) -> tuple[float, httpx.Response | None]:
            t0 = time.perf_counter()
            while True:
                try:
                    r = await client.post(url, json=body)
                except httpx.HTTPError:
                    out["lost"] += 1
                    return time.perf_counter() - t0, None
                if r.status_code >= 500:
                    out["5xx"] += 1
                if r.status_code != 429:
                    break
                out["429"] += 1
                wait = r.headers.get("retry-after")
                out["429_retry_after"] += wait is not None
                waits.append(float(wait or 1))
                if time.perf_counter() - t0 + float(wait or 1) > patience:
                    break
                await asyncio.sleep(float(wait or 1))
            if r.status_code == 200 and key >= 0:
                got = {x["index"]: x["relevance_score"] for x in r.json()["results"]}
                want = expected[key]
                out["mismatch"] += any(got[i] != float(want[i]) for i in got)
            return time.perf_counter() - t0, r

        async def one_large(i: int) -> None:
            nonlocal gave_up
            q, docs = large[i]
            ms, r = await call(
                {"query": q, "documents": docs, "raw_scores": True}, i % len(expected)
            )
            if r is not None and r.status_code == 200:
                large_ms.append(ms * 1e3)
            elif r is not None:
                gave_up += 1

        async def smalls(stop: asyncio.Event) -> None:
            k = 0
            while not stop.is_set():
                q, docs = small[k % len(small)]
                ms, r = await call({"query": q, "documents": docs, "raw_scores": True}, -1)
                if r is not None and r.status_code == 200:
                    small_ms.append(ms * 1e3)
                k += 1
                await asyncio.sleep(0.1)

        stop = asyncio.Event()
        side = asyncio.create_task(smalls(stop))
        t0 = time.perf_counter()
        await asyncio.gather(*(one_large(i) for i in range(len(large))))
        wall = time.perf_counter() - t0
        stop.set()
        await side
    return {
        **out,
        "large_ok": len(large_ms),
        "large_gave_up": gave_up,
        "large_p50_ms": pct(large_ms, 50),
        "large_p95_ms": pct(large_ms, 95),
        "small_ok": len(small_ms),
        "small_p50_ms": pct(small_ms, 50),
        "small_p95_ms": pct(small_ms, 95),
        "wall_s": wall,
        "retry_after_p50_s": pct(waits, 50),
        "retry_after_max_s": max(waits, default=0.0),
    }


async def idle_smalls(url: str, small) -> list[float]:
    ms = []
    async with httpx.AsyncClient(timeout=60) as client:
        for q, docs in small:
            t0 = time.perf_counter()
            r = await client.post(url, json={"query": q, "documents": docs})
            r.raise_for_status()
            ms.append((time.perf_counter() - t0) * 1e3)
    return ms


COLUMNS: list[Column] = [
    ("large", "large", ">6"),
    ("ok", "large_ok", ">5"),
    ("gave up", "large_gave_up", ">8"),
    ("5xx", "5xx", ">5"),
    ("lost", "lost", ">5"),
    ("429", "429", ">6"),
    ("w/ Retry-After", "429_retry_after", ">15"),
    ("mismatch", "mismatch", ">9"),
    ("small p50 idle", "idle_p50_ms", ">15.0f"),
    ("small p50", "small_p50_ms", ">10.0f"),
    ("small p95", "small_p95_ms", ">10.0f"),
    ("large p95", "large_p95_ms", ">10.0f"),
    (
        "Retry-After p50/max",
        lambda r: f"{r['retry_after_p50_s']:.0f}/{r['retry_after_max_s']:.0f}",
        ">20",
    ),
    ("wall s", "wall_s", ">8.1f"),
]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_server_args(parser, "int8")
    parser.add_argument("--large", type=int, default=100, help="large requests in the burst")
    parser.add_argument("--docs", type=int, default=100, help="documents per large request")
    parser.add_argument(
        "--patience", type=float, default=300.0, help="seconds a client keeps retrying 429s"
    )
    parser.add_argument("--max-wait", type=float, default=30.0, help="the server's --max-wait")
    parser.add_argument("--output", default=output_path("serve_burst.json"))
    args = parser.parse_args()
    from crossrank.runtime import OnnxReranker

    info = machine()
    pool = request_pool(args.data, 20, docs=(args.docs, args.docs))
    small = [(q, d[:3]) for q, d in request_pool(args.data, 20, docs=(3, 3))]
    direct = OnnxReranker(args.model, precision=args.precision)
    expected = [direct.score(q, d) for q, d in pool]
    port = 18000 + int(time.time()) % 1000
    proc = start_server(
        args.model, port, ["--precision", args.precision, "--max-wait", str(args.max_wait)]
    )
    try:
        url = f"http://127.0.0.1:{port}/v2/rerank"
        idle = asyncio.run(idle_smalls(url, small))
        large = [pool[i % len(pool)] for i in range(args.large)]
        row = asyncio.run(burst(url, large, small, args.patience, expected))
        healthy = httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    row.update(large=args.large, idle_p50_ms=pct(idle, 50), idle_p95_ms=pct(idle, 95))
    print(machine_line(info))
    print_table(
        f"{args.model} ({args.precision}), {args.large} x {args.docs} documents at once, "
        f"max-wait {args.max_wait:g} s, clients retry 429s for {args.patience:g} s",
        COLUMNS,
        [row],
    )
    errors_logged = err.count("Traceback") + err.count("Exception in ASGI")
    print("healthy after:", healthy, "| tracebacks in the server log:", errors_logged)
    write_json(
        Path(args.output),
        {"machine": info, "model": args.model, "precision": args.precision,
         "docs": args.docs, "max_wait_s": args.max_wait, "patience_s": args.patience,
         "result": row, "healthy_after": healthy, "tracebacks": errors_logged},
    )  # fmt: skip
    bad = row["5xx"] or row["lost"] or row["mismatch"] or row["429"] != row["429_retry_after"]
    return 1 if bad or not healthy or errors_logged else 0


if __name__ == "__main__":
    raise SystemExit(main())
