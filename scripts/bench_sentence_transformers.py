#!/usr/bin/env python3
"""Python sentence-transformers (PyTorch, CPU) side of the embedding benchmark.

Usage: python3 scripts/bench_sentence_transformers.py TEXTS QUERIES OUT_JSON [MODEL_DIR]
  TEXTS, QUERIES  JSON lines, one string each (written by `cargo run --example bench_embed`)
  OUT_JSON        where the result goes (scripts/bench-embed.sh uses target/bench/python.json)
  MODEL_DIR       defaults to models/all-MiniLM-L6-v2 (fetched by scripts/fetch-models.sh)

Measures what examples/bench_embed.rs measures for the Rust embedders, the same way, so the
numbers sit side by side in docs/benchmarks.md:
  - throughput: texts/s over all texts, sent in order in chunks of 32, best of 3 runs;
  - single-query latency: p50/p99 of each query embedded alone, after warm-up.
"""

import json
import math
import os
import sys
import time

BATCH = 32
ROUNDS = 3
WARMUP_QUERIES = 5


def read_lines(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def percentile(values, q):
    # Same nearest-rank rule as examples/bench_embed.rs: round((n - 1) * q), halves away from zero.
    values = sorted(values)
    if not values:
        return float("nan")
    return values[int(math.floor((len(values) - 1) * q + 0.5))]


def main():
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    texts_path, queries_path, out_path = sys.argv[1:4]
    model_dir = sys.argv[4] if len(sys.argv) == 5 else "models/all-MiniLM-L6-v2"
    if not os.path.isdir(model_dir):
        sys.exit(f"bench-st: {model_dir} is not a directory (run ./scripts/fetch-models.sh)")

    texts = read_lines(texts_path)
    queries = read_lines(queries_path)
    if len(texts) < BATCH or not queries:
        sys.exit(f"bench-st: need at least {BATCH} texts and one query, got {len(texts)} and {len(queries)}")

    # Imported only now: they take seconds, and bad arguments should fail at once. The model is a
    # local directory, so huggingface_hub and transformers must never go online.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    import torch
    from sentence_transformers import SentenceTransformer

    # Every core of the machine; CPU only (the PyPI wheel is a CUDA build, but no GPU is used).
    threads = os.cpu_count() or 1
    torch.set_num_threads(threads)
    model = SentenceTransformer(model_dir, device="cpu")

    def embed(batch):
        # encode() runs under torch's inference mode and returns numpy arrays, as users call it.
        return model.encode(batch, batch_size=BATCH, show_progress_bar=False)

    # Warm-up both paths: a full batch and a few single queries (first calls allocate).
    embed(texts[:BATCH])
    for q in queries[:WARMUP_QUERIES]:
        embed([q])

    # Chunks of 32 in the given order, like the Rust side: encode() of the whole list would
    # sort by length first and pad less, which would not be the same work.
    best = 0.0
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for i in range(0, len(texts), BATCH):
            embed(texts[i : i + BATCH])
        best = max(best, len(texts) / (time.perf_counter() - start))

    times = []
    for q in queries:
        start = time.perf_counter()
        embed([q])
        times.append((time.perf_counter() - start) * 1000.0)

    version = torch.__version__.split("+")[0]  # drop the local tag (e.g. +cu132): runs on CPU
    result = {
        "system": f"sentence-transformers (PyTorch {version})",
        "batch": BATCH,
        "texts": len(texts),
        "texts_per_s": best,
        "single_p50_ms": percentile(times, 0.50),
        "single_p99_ms": percentile(times, 0.99),
        "threads": threads,
    }
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    print(
        f"bench-st: {result['texts_per_s']:.1f} texts/s, single query p50 "
        f"{result['single_p50_ms']:.2f} ms, p99 {result['single_p99_ms']:.2f} ms ({threads} threads)",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
