"""``crossrank train`` (also ``scripts/train.py``): Lightning's CLI over the cross-encoder module
and the triples data module, whose type hints are the config schema."""

from __future__ import annotations

import argparse
import sys

from crossrank.cli.common import prepare_first_stage


def runs_on_cpu(accelerator: object) -> bool:
    """Whether Lightning's ``trainer.accelerator`` setting lands on the CPU on this machine."""
    if not isinstance(accelerator, str):
        return False  # an Accelerator instance or class_path: the user chose a device
    if accelerator == "auto":
        import torch

        return not (torch.cuda.is_available() or torch.backends.mps.is_available())
    return accelerator == "cpu"


def main(args: list[str] | None = None, run: bool = True):
    """``LightningCLI(CrossEncoderModule, TriplesDataModule)`` with atomic checkpoint writes."""
    from lightning.pytorch.cli import LightningCLI

    from crossrank.runtime.hardware import cpu_info
    from crossrank.train.datamodule import TriplesDataModule
    from crossrank.train.module import AtomicCheckpointIO, CrossEncoderModule
    from crossrank.train.precision import CpuBf16, training_precision

    class CLI(LightningCLI):
        def add_arguments_to_parser(self, parser) -> None:
            parser.add_argument(
                "--cpu_bf16",
                type=CpuBf16,
                default="native",
                help="bf16 precision on a CPU: 'native' keeps it only where the CPU has bf16 "
                "matrix instructions (else 32-true), 'always' keeps it everywhere",
            )

        def before_instantiate_classes(self) -> None:
            config = self.config[self.subcommand] if self.subcommand else self.config
            trainer = config.trainer
            precision, note = training_precision(
                trainer.precision, runs_on_cpu(trainer.accelerator), cpu_info(), config.cpu_bf16
            )
            if note:
                print(note, file=sys.stderr, flush=True)
                trainer.precision = precision

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
