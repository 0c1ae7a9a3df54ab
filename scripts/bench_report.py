#!/usr/bin/env python3
"""Writes the embedding and search benchmark report (docs/benchmarks.md).

Usage: python3 scripts/bench_report.py BENCH_DIR OUT_MD
  BENCH_DIR  holds rust.json (cargo run --example bench_embed) and python.json
             (scripts/bench_sentence_transformers.py); scripts/bench-embed.sh uses target/bench
  OUT_MD     the Markdown report

Standard library only, so it runs with any python3. It states the measurements and what they
are; it makes no other claims.
"""

import datetime
import json
import os
import sys

COMMAND = "./scripts/bench-embed.sh"
MODEL = "all-MiniLM-L6-v2"


def load(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        sys.exit(f"bench-report: {path} is missing (run {COMMAND})")


def ratio(value, reference):
    return f"{value / reference:.2f}×" if reference else "n/a"


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    bench_dir, out_md = sys.argv[1:3]
    rust = load(os.path.join(bench_dir, "rust.json"))
    python = load(os.path.join(bench_dir, "python.json"))

    embedders = rust["embed"] + [python]
    # The ratios and the notes say "same texts": refuse to compare runs over different inputs.
    if len({(e["texts"], e["batch"]) for e in embedders}) != 1:
        sys.exit("bench-report: the embedders did not run on the same texts and batch size: " + ", ".join(
            f"{e['system']}: {e['texts']} texts, batch {e['batch']}" for e in embedders))
    texts, batch = embedders[0]["texts"], embedders[0]["batch"]

    machine = rust["machine"]
    cpus = machine.get("cpus", "?")
    threads = python.get("threads", cpus)
    # Queries: the Rust search entries count them; the single-query embedding uses the same file.
    queries = rust["search"][0]["queries"] if rust.get("search") else "?"
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")

    lines = [
        "# Embedding and search benchmark",
        "",
        f"- Machine: {machine.get('cpu_model') or 'unknown CPU'}, {cpus} CPUs, {machine.get('os', '?')}, no GPU used",
        f"- Command: `{COMMAND}`",
        f"- Date: {date}",
        "",
        "## Embedders",
        "",
        f"| System | texts/s (batch {batch}) | throughput vs sentence-transformers | single query p50 (ms) "
        "| single query p99 (ms) | p50 latency vs sentence-transformers | cosine to float32 (min / mean) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for e in embedders:
        if "cosine_to_float32_min" in e:
            agreement = f"{e['cosine_to_float32_min']:.5f} / {e['cosine_to_float32_mean']:.5f}"
        else:
            agreement = "(parity test)"
        lines.append(
            f"| {e['system']} | {e['texts_per_s']:.1f} | {ratio(e['texts_per_s'], python['texts_per_s'])} "
            f"| {e['single_p50_ms']:.2f} | {e['single_p99_ms']:.2f} "
            f"| {ratio(e['single_p50_ms'], python['single_p50_ms'])} | {agreement} |"
        )
    lines += [
        "",
        f"Notes: every embedder runs the same model ({MODEL}, `models/{MODEL}`) on the same {texts} texts on the CPU "
        f"only ({cpus} CPUs; PyTorch set to {threads} threads), with throughput the best of 3 runs over all texts "
        f"in batches of {batch} and latency each of the {queries} queries embedded alone after warm-up; the "
        "ratios divide each row by sentence-transformers (throughput: higher is faster; latency: lower is faster). "
        "The last column compares each embedder's vectors of all texts with those of fastembed + ONNX Runtime in "
        "float32 (cosine; 1 is identical); sentence-transformers agrees with them to cosine ≥ 0.999 by the parity "
        "tests of `make test`.",
        "",
        "## Search latency",
        "",
        "| Mode | k | queries | p50 (ms) | p99 (ms) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for s in rust.get("search", []):
        lines.append(f"| {s['mode']} | {s['k']} | {s['queries']} | {s['p50_ms']:.2f} | {s['p99_ms']:.2f} |")
    lines += [
        "",
        f"Notes: each row is the latency of one search call (k = 10, no filter) over an index of the bundled KB for "
        f"each of the {queries} queries, on the same machine in the same run; the vector and hybrid modes include "
        "embedding the query with fastembed + ONNX Runtime, the lexical mode embeds nothing.",
    ]

    os.makedirs(os.path.dirname(os.path.abspath(out_md)), exist_ok=True)
    with open(out_md, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print(f"bench-report: wrote {out_md}", file=sys.stderr)


if __name__ == "__main__":
    main()
