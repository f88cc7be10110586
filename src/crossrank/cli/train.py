"""``crossrank train`` (also ``scripts/train.py``): Lightning's CLI over the cross-encoder module
and the triples data module, whose type hints are the config schema."""

from __future__ import annotations

import argparse


def main(args: list[str] | None = None, run: bool = True):
    """``LightningCLI(CrossEncoderModule, TriplesDataModule)`` with atomic checkpoint writes."""
    from lightning.pytorch.cli import LightningCLI

    from crossrank.train.datamodule import TriplesDataModule
    from crossrank.train.module import AtomicCheckpointIO, CrossEncoderModule

    return LightningCLI(
        CrossEncoderModule,
        TriplesDataModule,
        seed_everything_default=13,
        trainer_defaults={"plugins": [AtomicCheckpointIO()]},
        args=args,
        run=run,
        save_config_kwargs={"overwrite": True},
    )


def run_train(args: argparse.Namespace) -> int:
    main(args.lightning_args)
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train a cross-encoder: crossrank train fit --config configs/tiny.yaml",
        add_help=False,  # --help goes to Lightning's CLI, which knows the schema
    )
    p.add_argument("lightning_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=run_train)
