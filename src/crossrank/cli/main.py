"""The ``crossrank`` command: train, average, export, fuse, calibrate, eval, sweep, rerank, serve, demo."""

from __future__ import annotations

import argparse
import sys

from crossrank.cli import average, calibrate, demo, export, fuse, rerank, serve, sweep, train
from crossrank.cli import eval as eval_command

COMMANDS = (train, average, export, fuse, calibrate, eval_command, sweep, rerank, serve, demo)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crossrank", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["train"]:  # everything after it, --help included, is Lightning's
        train.main(argv[1:])
        return 0
    args = build_parser().parse_args(argv)
    try:
        if getattr(args, "precision", None) == "auto" and getattr(args, "model", None):
            from crossrank.runtime.precision import resolve_precision

            args.precision = resolve_precision(args.model, "auto")  # reports name the real one
        return args.func(args)
    except (ValueError, FileNotFoundError, TypeError) as exc:  # ArtifactError is a ValueError
        print(f"crossrank {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
