# Every target creates .venv and installs the project when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast check format train export serve clean reproduce-nfcorpus train-general

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/crossrank demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

check: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/ruff check src scripts tests benchmarks
	$(BIN)/ruff format --check src scripts tests benchmarks

format: $(STAMP)
	$(BIN)/ruff check --fix src scripts tests benchmarks
	$(BIN)/ruff format src scripts tests benchmarks

train: $(STAMP)
	$(BIN)/python scripts/train.py fit --config configs/tiny.yaml

export: $(STAMP)
	$(BIN)/python scripts/export.py --checkpoint checkpoints/tiny/best.ckpt --output checkpoints/tiny/onnx --int8

serve: $(STAMP)
	test -f checkpoints/tiny/onnx/crossrank.json || $(BIN)/crossrank demo
	$(BIN)/crossrank serve --model checkpoints/tiny/onnx

clean:
	rm -rf checkpoints/tiny checkpoints/tiny-cls .cache

reproduce-nfcorpus: $(STAMP)
	$(BIN)/python scripts/reproduce_nfcorpus.py

# The general-purpose reranker: every labeled set in ../shared/data, 80 min of training on 2 cores.
GENERAL := checkpoints/minilm-general
train-general: $(STAMP)
	$(BIN)/crossrank train fit --config configs/minilm-general.yaml
	$(BIN)/crossrank export --checkpoint $(GENERAL)/best.ckpt --output $(GENERAL)/onnx --int8
	$(BIN)/crossrank fuse --model $(GENERAL)/onnx --data ../shared/data/nfcorpus --retriever bm25 --precision int8
	$(BIN)/crossrank fuse --model $(GENERAL)/onnx --data ../shared/data/nfcorpus --retriever hybrid --precision int8
