"""``crossrank export`` (also ``scripts/export.py``): a checkpoint, a Hugging Face cross-encoder
or a bi-encoder to an ONNX artifact directory."""

from __future__ import annotations

import argparse
import json
import sys

from crossrank.cli.common import add_cache_dir
from crossrank.io import cache_dir


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(description="Export a cross-encoder to ONNX.")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="a crossrank Lightning checkpoint (.ckpt)")
    source.add_argument(
        "--from-hf", metavar="DIR_OR_ID", help="a Hugging Face sequence-classification model"
    )
    source.add_argument(
        "--bi-encoder",
        nargs="?",
        const="minilm-l6",
        metavar="NAME",
        help="the first stage's bi-encoder (default minilm-l6) into the cache (--cache-dir)",
    )
    parser.add_argument("--output", help="artifact directory to write (replaced atomically)")
    parser.add_argument(
        "--int8", action="store_true", help="also write model.int8.onnx (dynamic, per-channel)"
    )
    parser.add_argument(
        "--max-length", type=int, default=512, help="window for --from-hf models (default 512)"
    )
    parser.add_argument(
        "--opset", type=int, help="ONNX opset (default: crossrank.export.onnx.OPSET)"
    )
    add_cache_dir(parser)
    return parser


def run(args: argparse.Namespace) -> int:
    # Imported here: torch is slow to load, and other commands never need it.
    from crossrank.export.checks import ParityError
    from crossrank.export.onnx import OPSET, export
    from crossrank.export.sources import from_checkpoint, from_hf

    try:
        if args.bi_encoder:
            from crossrank.export.bi_encoder import ensure_bi_encoder

            out = ensure_bi_encoder(cache_dir(args.cache_dir), args.bi_encoder)
            print(json.dumps({"output": str(out)}, indent=2))
            return 0
        if not args.output:
            raise ValueError("expected --output DIR for the artifact, got none")
        if args.checkpoint:
            item, source = from_checkpoint(args.checkpoint)
        else:
            item, source = from_hf(args.from_hf, args.max_length)
        manifest = export(
            item, args.output, int8=args.int8, source=source, opset=args.opset or OPSET
        )
    except (ParityError, FileNotFoundError, ValueError) as exc:
        print(f"export failed: {exc}", file=sys.stderr)
        return 1
    report = {"output": args.output, "parity": manifest.parity, "files": sorted(manifest.files)}
    if manifest.int8 is not None:
        report["int8"] = manifest.int8
    print(json.dumps(report, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


def add_parser(sub) -> None:
    p = build_parser(sub.add_parser("export", help="export a checkpoint or HF model to ONNX"))
    p.set_defaults(func=run)
