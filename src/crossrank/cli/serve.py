"""``crossrank serve``: command-line options and the uvicorn server."""

from __future__ import annotations

import argparse
import os

from crossrank.cli.common import add_cache_dir, add_pooling, add_precision, prepare_first_stage
from crossrank.runtime.passages import MAX_PASSAGES
from crossrank.serve.security import AccessPolicy, default_hosts, load_keys
from crossrank.serve.service import ServerConfig


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    return ServerConfig(
        model=args.model,
        precision=args.precision,
        pipeline=args.pipeline,
        max_docs=args.max_docs,
        max_body_bytes=int(args.max_body_mb * (1 << 20)),
        max_queue=args.max_queue,
        max_wait_s=args.max_wait,
        workers=args.inference_threads,
        threads=args.threads or threads_per_process(args.workers),
        max_batch_pairs=1 if args.no_micro_batching else args.max_batch_pairs,
        batch_size=args.batch_size,
        cache_mb=args.cache_mb,
        passages=args.passages,
        pooling=args.pooling,
        max_passages=args.max_passages,
        max_pairs=args.max_pairs,
        body_timeout_s=args.body_timeout,
        min_score=args.min_score,
        cache_dir=args.cache_dir,
    )


def threads_per_process(processes: int) -> int | None:
    """The cores shared out between server processes (None: one process takes them all)."""
    if processes <= 1:
        return None
    from crossrank.runtime.backends import default_threads

    return max(1, default_threads() // processes)


def policy_from_args(args: argparse.Namespace) -> AccessPolicy:
    hosts = tuple(h.lower() for h in args.allowed_host) or default_hosts(args.host)
    return AccessPolicy(
        api_keys=load_keys(args.api_key_file) | frozenset(args.api_key),
        allowed_hosts=hosts,
        cors_origins=tuple(args.cors_origin),
        metrics_public=args.metrics_public,
    )


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from crossrank.serve.app import create_app

    if args.pipeline:
        from crossrank.pipeline.pinning import PipelineSpec

        prepare_first_stage(PipelineSpec.load(args.pipeline).retriever.kind, args.cache_dir)
    policy = policy_from_args(args)
    if not policy.api_keys and "*" in policy.allowed_hosts:
        print(
            f"warning: serving on {args.host} without API keys: anyone who can reach it can use it"
        )
    config = config_from_args(args)
    if args.workers < 1:
        raise ValueError(f"expected --workers >= 1, got {args.workers}")
    if args.workers > 1:  # uvicorn starts each process from an import string
        from crossrank.serve.app import CONFIG_ENV, config_to_env

        os.environ[CONFIG_ENV] = config_to_env(config, policy)
        app = "crossrank.serve.app:app_from_env"
    else:
        app = create_app(config, policy)
    uvicorn.run(
        app,
        factory=args.workers > 1,
        workers=args.workers,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=args.access_log,
        timeout_graceful_shutdown=10,
    )
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("serve", help="serve the reranker over HTTP (Cohere and TEI APIs)")
    p.add_argument("--model", help="reranker artifact directory (default: the pipeline's)")
    p.add_argument("--pipeline", help="pipeline.json from crossrank sweep: enables POST /search")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    add_precision(p)
    p.add_argument("--max-docs", type=int, default=1000, help="documents per request (413 above)")
    p.add_argument("--max-body-mb", type=float, default=8.0, help="request body limit (413 above)")
    p.add_argument(
        "--max-queue", type=int, default=256, help="waiting requests, small and large (429 above)"
    )
    p.add_argument(
        "--max-wait",
        type=float,
        default=30.0,
        help="seconds a request may be expected to wait (429 with Retry-After above)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes behind the one port, each with its own session and cores/N threads",
    )
    p.add_argument(
        "--inference-threads", type=int, default=1, help="inference threads sharing a session"
    )
    p.add_argument("--threads", type=int, help="onnxruntime threads per call (default: all cores)")
    p.add_argument("--max-batch-pairs", type=int, default=8, help="pairs merged per micro-batch")
    p.add_argument("--no-micro-batching", action="store_true", help="score each request alone")
    p.add_argument("--cache-mb", type=float, default=64.0, help="score cache bound (0: off)")
    p.add_argument("--passages", action="store_true", help="score long documents by passages")
    add_pooling(p)
    p.add_argument(
        "--max-passages", type=int, default=MAX_PASSAGES, help="passages per document at most"
    )
    p.add_argument(
        "--max-pairs", type=int, default=4096, help="pairs (documents x passages) per request"
    )
    p.add_argument(
        "--body-timeout", type=float, default=10.0, help="seconds to receive a body (408 after)"
    )
    p.add_argument(
        "--api-key-file",
        help="file of accepted API keys, one per line (also $CROSSRANK_API_KEYS, comma-separated); "
        "then every route but /health needs 'Authorization: Bearer KEY'",
    )
    p.add_argument("--api-key", action="append", default=[], help="an accepted API key (repeat)")
    p.add_argument("--metrics-public", action="store_true", help="serve /metrics without a key")
    p.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        help="a Host name clients may use (repeat; default: loopback names when bound to "
        "loopback, any otherwise)",
    )
    p.add_argument(
        "--cors-origin", action="append", default=[], help="an origin browsers may call from"
    )
    p.add_argument("--min-score", type=float, help="flag low_confidence below this rank-1 score")
    add_cache_dir(p)
    p.add_argument("--log-level", default="warning")
    p.add_argument("--access-log", action="store_true")
    p.set_defaults(func=cmd_serve)
