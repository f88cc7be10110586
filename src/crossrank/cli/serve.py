"""``crossrank serve``: command-line options and the uvicorn server."""

from __future__ import annotations

import argparse

from crossrank.cli.common import add_cache_dir, add_pooling, add_precision, prepare_first_stage
from crossrank.serve.service import ServerConfig


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    return ServerConfig(
        model=args.model,
        precision=args.precision,
        pipeline=args.pipeline,
        max_docs=args.max_docs,
        max_body_bytes=int(args.max_body_mb * (1 << 20)),
        max_queue=args.max_queue,
        workers=args.workers,
        threads=args.threads,
        max_batch_pairs=1 if args.no_micro_batching else args.max_batch_pairs,
        batch_size=args.batch_size,
        cache_mb=args.cache_mb,
        passages=args.passages,
        pooling=args.pooling,
        max_passages=args.max_passages,
        min_score=args.min_score,
        cache_dir=args.cache_dir,
    )


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from crossrank.serve.app import create_app

    if args.pipeline:
        from crossrank.pipeline.pinning import PipelineSpec

        prepare_first_stage(PipelineSpec.load(args.pipeline).retriever.kind, args.cache_dir)
    app = create_app(config_from_args(args))
    uvicorn.run(
        app,
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
    p.add_argument("--max-queue", type=int, default=32, help="waiting requests (429 above)")
    p.add_argument("--workers", type=int, default=1, help="inference threads sharing the model")
    p.add_argument("--threads", type=int, help="onnxruntime threads per call (default: all cores)")
    p.add_argument("--max-batch-pairs", type=int, default=256, help="pairs merged per micro-batch")
    p.add_argument("--no-micro-batching", action="store_true", help="score each request alone")
    p.add_argument("--cache-mb", type=float, default=64.0, help="score cache bound (0: off)")
    p.add_argument("--passages", action="store_true", help="score long documents by passages")
    add_pooling(p)
    p.add_argument("--max-passages", type=int, default=16, help="passages per document at most")
    p.add_argument("--min-score", type=float, help="flag low_confidence below this rank-1 score")
    add_cache_dir(p)
    p.add_argument("--log-level", default="warning")
    p.add_argument("--access-log", action="store_true")
    p.set_defaults(func=cmd_serve)
