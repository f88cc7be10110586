"""Command line of ``scripts/export.py`` (also ``crossrank export``)."""

from __future__ import annotations

import argparse
import json
import sys

from crossrank.export import OPSET, ParityError, export


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(description="Export a cross-encoder to ONNX.")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="a crossrank Lightning checkpoint (.ckpt)")
    source.add_argument(
        "--from-hf", metavar="DIR_OR_ID", help="a Hugging Face sequence-classification model"
    )
    parser.add_argument(
        "--output", required=True, help="artifact directory to write (replaced atomically)"
    )
    parser.add_argument(
        "--int8", action="store_true", help="also write model.int8.onnx (dynamic, per-channel)"
    )
    parser.add_argument(
        "--max-length", type=int, default=512, help="window for --from-hf models (default 512)"
    )
    parser.add_argument("--opset", type=int, default=OPSET)
    return parser


def run(args: argparse.Namespace) -> int:
    from crossrank.export_sources import from_checkpoint, from_hf

    try:
        if args.checkpoint:
            item, source = from_checkpoint(args.checkpoint)
        else:
            item, source = from_hf(args.from_hf, args.max_length)
        manifest = export(item, args.output, int8=args.int8, source=source, opset=args.opset)
    except (ParityError, FileNotFoundError, ValueError) as exc:
        print(f"export failed: {exc}", file=sys.stderr)
        return 1
    report = {
        "output": args.output,
        "parity": manifest["parity"],
        "files": sorted(manifest["files"]),
    }
    if "int8" in manifest:
        report["int8"] = manifest["int8"]
    print(json.dumps(report, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))
