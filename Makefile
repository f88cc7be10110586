# Every target creates .venv and installs the project when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast check format train export serve clean reproduce-nfcorpus reproduce-nfcorpus-gpu train-general zero-shot-general

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

# The same recipe on a GPU (configs/minilm-nfcorpus-gpu.yaml); needs a CUDA build of torch in .venv.
reproduce-nfcorpus-gpu: $(STAMP)
	$(BIN)/python scripts/reproduce_nfcorpus.py --config configs/minilm-nfcorpus-gpu.yaml --out checkpoints/minilm-nfcorpus-gpu

# The general-purpose reranker: every labeled set in ../shared/data, 60 min of training on 2 cores (under 90 with set-up, export and the dev fits).
# It ships last.ckpt, the end of the time-based schedule.
GENERAL := checkpoints/minilm-general
DATA := ../shared/data
# The novelty guard's reference: the training queries of the BEIR sets it trained on.
GENERAL_REFERENCE := --novelty-reference $(DATA)/nfcorpus:train --novelty-reference $(DATA)/wikiqa:train
# ... and each set's novelty scale: its dev split (SciFact has none: leave-one-out over its train split).
GENERAL_REFERENCE += --novelty-calibration $(DATA)/nfcorpus:dev --novelty-calibration $(DATA)/wikiqa:dev
train-general: $(STAMP)
	$(BIN)/crossrank train fit --config configs/minilm-general.yaml
	$(BIN)/crossrank export --checkpoint $(GENERAL)/last.ckpt --output $(GENERAL)/onnx --int8
	for r in bm25 hybrid; do $(BIN)/crossrank fuse --model $(GENERAL)/onnx --data $(DATA)/nfcorpus --retriever $$r --precision int8 --score-cache $(GENERAL_REFERENCE) --novelty-reference $(DATA)/scifact:train || exit 1; done

# The zero-shot check of the general recipe: the same training without SciFact, then SciFact's
# train split (never seen) through scripts/zero_shot.py.
GENERAL_ZS := checkpoints/minilm-general-no-scifact
zero-shot-general: $(STAMP)
	$(BIN)/crossrank train fit --config configs/minilm-general.yaml --config configs/minilm-general-no-scifact.yaml
	$(BIN)/crossrank export --checkpoint $(GENERAL_ZS)/last.ckpt --output $(GENERAL_ZS)/onnx --int8
	for r in bm25 hybrid; do $(BIN)/crossrank fuse --model $(GENERAL_ZS)/onnx --data $(DATA)/nfcorpus --retriever $$r --precision int8 --score-cache $(GENERAL_REFERENCE) || exit 1; done
	$(BIN)/python scripts/zero_shot.py --model $(GENERAL_ZS)/onnx --set $(DATA)/scifact:train --out $(GENERAL_ZS)/zero-shot
