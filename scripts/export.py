"""Export a cross-encoder to an ONNX artifact directory.

python scripts/export.py --checkpoint checkpoints/tiny/best.ckpt --output checkpoints/tiny/onnx --int8
python scripts/export.py --from-hf PATH_OR_HUB_ID --output DIR
"""

from crossrank.cli.export import main

if __name__ == "__main__":
    raise SystemExit(main())
