"""``crossrank average``: one checkpoint whose weights are the (weighted) mean of several
fine-tuned from the same encoder ("model soup"); export it like any other checkpoint."""

from __future__ import annotations

import argparse
import json


def run(args: argparse.Namespace) -> int:
    from crossrank.train.averaging import average_checkpoints  # torch: only this command

    print(json.dumps(average_checkpoints(args.checkpoint, args.output, args.weight), indent=2))
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("average", help="average the weights of checkpoints into one")
    p.add_argument(
        "--checkpoint", action="append", required=True, help="a checkpoint (give two or more)"
    )
    p.add_argument(
        "--weight", action="append", type=float, help="one per --checkpoint (default: equal)"
    )
    p.add_argument("--output", required=True, help="the averaged checkpoint (.ckpt) to write")
    p.set_defaults(func=run)
