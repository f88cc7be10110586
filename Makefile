# Every target creates .venv and installs the project when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast check format train export serve clean reproduce-nfcorpus train-general zero-shot-general

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
DATA := ../shared/data
# The novelty guard's reference: the training queries of the BEIR sets it trained on.
GENERAL_REFERENCE := --novelty-reference $(DATA)/nfcorpus:train --novelty-reference $(DATA)/wikiqa:train
train-general: $(STAMP)
	$(BIN)/crossrank train fit --config configs/minilm-general.yaml
	$(BIN)/crossrank export --checkpoint $(GENERAL)/best.ckpt --output $(GENERAL)/onnx --int8
	for r in bm25 hybrid; do $(BIN)/crossrank fuse --model $(GENERAL)/onnx --data $(DATA)/nfcorpus --retriever $$r --precision int8 $(GENERAL_REFERENCE) --novelty-reference $(DATA)/scifact:train || exit 1; done

# The zero-shot check of the general recipe: the same training without SciFact, then SciFact's
# train split (never seen) through scripts/zero_shot.py.
GENERAL_ZS := checkpoints/minilm-general-no-scifact
zero-shot-general: $(STAMP)
	$(BIN)/crossrank train fit --config configs/minilm-general.yaml --config configs/minilm-general-no-scifact.yaml
	$(BIN)/crossrank export --checkpoint $(GENERAL_ZS)/best.ckpt --output $(GENERAL_ZS)/onnx --int8
	for r in bm25 hybrid; do $(BIN)/crossrank fuse --model $(GENERAL_ZS)/onnx --data $(DATA)/nfcorpus --retriever $$r --precision int8 $(GENERAL_REFERENCE) || exit 1; done
	$(BIN)/python scripts/zero_shot.py --model $(GENERAL_ZS)/onnx --set $(DATA)/scifact:train --out $(GENERAL_ZS)/zero-shot
