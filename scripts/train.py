"""Train a cross-encoder: ``python scripts/train.py fit --config configs/tiny.yaml``."""

from crossrank.cli.train import main

if __name__ == "__main__":
    main()
