"""``crossrank serve`` at twice its measured capacity for 60 s, small and large requests mixed.

    python benchmarks/serve_overload.py --model ARTIFACT --data BEIR_DIR [--seconds 60] [--factor 2]

First one client measures capacity (documents per second, closed loop, 10 s). Then requests
arrive open-loop (Poisson) at ``--factor`` times that rate for ``--seconds``: 80% small (3
documents), 20% large (``--docs`` documents), in documents. Clients do not retry: every 429
is counted, with or without ``Retry-After``. Reported per size class: requests sent, 200s,
429s, 5xx, lost (no response), p50/p95/p99 of the 200s; and the server's peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from pathlib import Path

import httpx
from common import Column, machine, machine_line, output_path, pct, print_table, write_json
from serve_load import add_server_args, request_pool, start_server


async def capacity(url: str, pool, seconds: float) -> float:
    done, t0 = 0, time.perf_counter()
    async with httpx.AsyncClient(timeout=120) as client:
        while time.perf_counter() - t0 < seconds:
            q, docs = pool[done % len(pool)]
            (await client.post(url, json={"query": q, "documents": docs})).raise_for_status()
            done += 1
    return done * len(pool[0][1]) / (time.perf_counter() - t0)


async def overload(url: str, small, large, docs_per_s: float, seconds: float, seed: int) -> dict:
    rng = random.Random(seed)
    mean_docs = 0.8 * len(small[0][1]) + 0.2 * len(large[0][1])
    rate = docs_per_s / mean_docs  # requests per second
    stats = {k: {"sent": 0, "200": 0, "429": 0, "429_retry_after": 0, "5xx": 0, "lost": 0,
                 "ms": []} for k in ("small", "large")}  # fmt: skip
    tasks = []
    async with httpx.AsyncClient(timeout=300, limits=httpx.Limits(max_connections=1000)) as client:

        async def one(kind: str, q: str, docs: list[str]) -> None:
            s = stats[kind]
            s["sent"] += 1
            t0 = time.perf_counter()
            try:
                r = await client.post(url, json={"query": q, "documents": docs})
            except httpx.HTTPError:
                s["lost"] += 1
                return
            code = r.status_code
            if code == 200:
                s["200"] += 1
                s["ms"].append((time.perf_counter() - t0) * 1e3)
            elif code == 429:
                s["429"] += 1
                s["429_retry_after"] += "retry-after" in r.headers
            elif code >= 500:
                s["5xx"] += 1

        t_end = time.perf_counter() + seconds
        while time.perf_counter() < t_end:
            kind = "small" if rng.random() < 0.8 else "large"
            q, docs = rng.choice(small if kind == "small" else large)
            tasks.append(asyncio.create_task(one(kind, q, docs)))
            await asyncio.sleep(rng.expovariate(rate))
        await asyncio.gather(*tasks)
    rows = []
    for kind, s in stats.items():
        ms = s.pop("ms")
        rows.append({"class": kind, **s, "p50_ms": pct(ms, 50), "p95_ms": pct(ms, 95),
                     "p99_ms": pct(ms, 99)})  # fmt: skip
    return {"requests_per_s": rate, "rows": rows}


COLUMNS: list[Column] = [
    ("class", "class", "<7"),
    ("sent", "sent", ">6"),
    ("200", "200", ">6"),
    ("429", "429", ">6"),
    ("w/ Retry-After", "429_retry_after", ">15"),
    ("5xx", "5xx", ">5"),
    ("lost", "lost", ">5"),
    ("p50 ms", "p50_ms", ">9.0f"),
    ("p95 ms", "p95_ms", ">9.0f"),
    ("p99 ms", "p99_ms", ">9.0f"),
]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_server_args(parser, "auto")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--factor", type=float, default=2.0, help="load over measured capacity")
    parser.add_argument("--docs", type=int, default=100, help="documents per large request")
    parser.add_argument("--output", default=output_path("serve_overload.json"))
    args = parser.parse_args()
    info = machine()
    large = request_pool(args.data, 20, docs=(args.docs, args.docs))
    small = [(q, d[:3]) for q, d in large]
    port = 19000 + int(time.time()) % 1000
    proc = start_server(args.model, port, ["--precision", args.precision])
    try:
        url = f"http://127.0.0.1:{port}/v2/rerank"
        docs_per_s = asyncio.run(capacity(url, large, 10.0))
        result = asyncio.run(
            overload(url, small, large, args.factor * docs_per_s, args.seconds, seed=0)
        )
        healthy = httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200
        status = Path(f"/proc/{proc.pid}/status").read_text().splitlines()
        rss = int(next(x for x in status if x.startswith("VmHWM")).split()[1]) / 1024
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    print(machine_line(info))
    print(f"capacity {docs_per_s:.0f} documents/s; offered {args.factor:g}x that "
          f"({result['requests_per_s']:.1f} requests/s) for {args.seconds:g} s")  # fmt: skip
    print_table(f"{args.model} ({args.precision}), 80% 3-document / 20% {args.docs}-document "
                "requests, no retries", COLUMNS, result["rows"])  # fmt: skip
    tracebacks = err.count("Traceback")
    print(f"server peak RSS {rss:.0f} MiB | healthy after: {healthy} | tracebacks: {tracebacks}")
    write_json(args.output, {"machine": info, "model": args.model, "precision": args.precision,
                             "capacity_docs_per_s": docs_per_s, "factor": args.factor,
                             "seconds": args.seconds, **result, "peak_rss_mib": rss,
                             "healthy_after": healthy, "tracebacks": tracebacks})  # fmt: skip
    bad = any(r["5xx"] or r["lost"] or r["429"] != r["429_retry_after"] for r in result["rows"])
    return 1 if bad or not healthy or tracebacks else 0


if __name__ == "__main__":
    raise SystemExit(main())
