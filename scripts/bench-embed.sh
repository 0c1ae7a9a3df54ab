#!/usr/bin/env bash
# Embedding benchmark, side by side in one run on this machine's CPU, of three embedders of the
# same model (all-MiniLM-L6-v2 in models/): fastembed + ONNX Runtime and our candle encoder
# (examples/bench_embed.rs, which also times search per mode) and Python sentence-transformers
# on PyTorch (scripts/bench_sentence_transformers.py). Writes docs/benchmarks.md.
#
# Usage: ./scripts/bench-embed.sh
#
# The Python side gets its own venv, target/bench/venv, made on the first run and reused after.
# About torch: PyPI's Linux torch wheel is a CUDA build whose libraries (libtorch_cuda.so,
# libtorch_cpu.so, libc10_cuda.so) link libcudart, cuBLAS, cuDNN, NCCL, ... at load time, so
# `pip install --no-deps torch` without the nvidia-* packages fails at `import torch`; the
# CPU-only wheels live on an index other than PyPI. So torch is installed with its normal
# dependencies: the first run downloads about 3 GB and the venv takes about 6 GB. No GPU is
# used: every embedder runs on the CPU.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=target/bench
VENV="$OUT/venv"
MODEL_DIR=models/all-MiniLM-L6-v2
# The versions measured; tokenizers and numpy are pinned too because they do part of the work.
PY_PINS=(torch==2.15.0 transformers==5.25.0 sentence-transformers==6.3.0 tokenizers==0.23.3 numpy==2.4.6)

step() { echo "bench-embed: $*"; }

step "[1/5] model weights and ONNX Runtime (scripts/fetch-models.sh)"
./scripts/fetch-models.sh

step "[2/5] Python venv $VENV"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
# The pins, once installed, are stamped in the venv: a rerun then skips pip (and the network).
STAMP="$VENV/.bench-pins"
if [ "$(cat "$STAMP" 2>/dev/null || true)" != "${PY_PINS[*]}" ]; then
  step "installing ${PY_PINS[*]} (the first time about 3 GB, see the note on torch above)"
  "$VENV/bin/python" -m pip install --disable-pip-version-check "${PY_PINS[@]}"
  echo "${PY_PINS[*]}" > "$STAMP"
fi

# Results of an earlier run must not end up in this run's report if a step below fails.
rm -f "$OUT/rust.json" "$OUT/python.json"

step "[3/5] Rust: fastembed + ONNX Runtime, candle, search latency (examples/bench_embed.rs)"
cargo run --example bench_embed -- --out "$OUT"

step "[4/5] Python: sentence-transformers on the same texts and queries"
"$VENV/bin/python" scripts/bench_sentence_transformers.py \
  "$OUT/texts.jsonl" "$OUT/queries.jsonl" "$OUT/python.json" "$MODEL_DIR"

step "[5/5] report"
python3 scripts/bench_report.py "$OUT" docs/benchmarks.md
step "done: docs/benchmarks.md"
