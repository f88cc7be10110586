"""``LightningCLI`` for training: the type hints of the module and data module are the schema."""

from __future__ import annotations

from typing import Any

from lightning.pytorch.cli import LightningCLI

from crossrank.data.datamodule import TriplesDataModule
from crossrank.training import AtomicCheckpointIO, CrossEncoderModule


class CrossrankCLI(LightningCLI):
    """Lightning's CLI with atomic checkpoint writes always on."""

    def instantiate_trainer(self, **kwargs: Any):
        kwargs.setdefault("plugins", [AtomicCheckpointIO()])
        return super().instantiate_trainer(**kwargs)


def main(args: list[str] | None = None, run: bool = True) -> CrossrankCLI:
    return CrossrankCLI(
        CrossEncoderModule,
        TriplesDataModule,
        seed_everything_default=13,
        args=args,
        run=run,
        save_config_kwargs={"overwrite": True},
    )
