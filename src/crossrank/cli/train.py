"""``crossrank train`` (also ``scripts/train.py``): Lightning's CLI over the cross-encoder module
and the triples data module, whose type hints are the config schema."""

from __future__ import annotations

import argparse

from crossrank.cli.common import prepare_first_stage


def main(args: list[str] | None = None, run: bool = True):
    """``LightningCLI(CrossEncoderModule, TriplesDataModule)`` with atomic checkpoint writes."""
    from lightning.pytorch.cli import LightningCLI

    from crossrank.train.datamodule import TriplesDataModule
    from crossrank.train.module import AtomicCheckpointIO, CrossEncoderModule

    class CLI(LightningCLI):
        def before_fit(self) -> None:
            # The hybrid teacher reads the bi-encoder artifact: export it once (needs torch).
            hp = self.datamodule.hparams
            if hp.teacher != "none":
                prepare_first_stage("hybrid", hp.cache_dir)

    return CLI(
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
