//! Embedding and search benchmark (run by scripts/bench-embed.sh, which adds Python
//! sentence-transformers on the same model and writes docs/benchmarks.md).
//!
//! Measures, in one run on the same texts: throughput (texts/s at batch 32), single-query
//! latency and agreement with the float32 vectors (cosine) of fastembed + ONNX Runtime (float32
//! and int8 graphs) and of our candle encoder, then search latency (p50/p99,
//! k = 10) of each search mode over an index of the bundled KB. Writes `texts.jsonl`,
//! `queries.jsonl` and `rust.json` into `--out DIR`.
//!
//! Usage: cargo run --example bench_embed -- --out target/bench

use anyhow::{Context, Result};
use assetkg::config::Config;
use assetkg::embed::{cosine, load_embedder, Backend, Embedder};
use assetkg::index::{entity_documents, EntityIndex, SearchMode, SearchRequest};
use assetkg::kb::KnowledgeBase;
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;

const BATCH: usize = 32;
const TEXTS: usize = 512;
const ROUNDS: usize = 3;

fn main() -> Result<()> {
    let out = std::env::args()
        .skip_while(|a| a != "--out")
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/bench"));
    std::fs::create_dir_all(&out)?;
    let config = Config::new("target/bench/data".into(), "ontology".into(), "kb".into())?;

    eprintln!("bench: loading the bundled KB in memory");
    let kb = KnowledgeBase::in_memory(&config.shapes_file())?;
    kb.load_files(&config.bundled_files()?)?;
    let docs = entity_documents(&kb)?;
    let texts: Vec<String> = docs
        .iter()
        .map(|d| d.text.clone())
        .cycle()
        .take(TEXTS)
        .collect();
    let queries = queries();
    write_lines(&out.join("texts.jsonl"), &texts)?;
    write_lines(&out.join("queries.jsonl"), &queries)?;

    let mut embed_results = Vec::new();
    let mut fastembed = None;
    // The float32 fastembed vectors of the texts: what the others are compared with.
    let mut reference: Option<Vec<Vec<f32>>> = None;
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    for (backend, name) in [
        (Backend::Fastembed, "fastembed + ONNX Runtime"),
        (Backend::FastembedInt8, "fastembed + ONNX Runtime, int8"),
        (Backend::Candle, "candle (ours)"),
    ] {
        eprintln!("bench: {name}");
        let embedder = load_embedder(backend, &config.model_dir, &config.ort_dylib)?;
        let (texts_per_s, p50, p99) = measure(embedder.as_ref(), &texts, &queries)?;
        let vectors = embedder.embed(&refs)?;
        let agreement: Vec<f32> = match &reference {
            Some(r) => r.iter().zip(&vectors).map(|(a, b)| cosine(a, b)).collect(),
            None => vec![1.0; vectors.len()],
        };
        let min_cosine = agreement.iter().copied().fold(f32::INFINITY, f32::min);
        let mean_cosine = agreement.iter().sum::<f32>() / agreement.len().max(1) as f32;
        eprintln!(
            "bench:   {texts_per_s:.1} texts/s, single query p50 {p50:.2} ms, p99 {p99:.2} ms, \
             cosine to float32 min {min_cosine:.5} mean {mean_cosine:.5}"
        );
        embed_results.push(json!({
            "system": name, "batch": BATCH, "texts": texts.len(),
            "texts_per_s": texts_per_s, "single_p50_ms": p50, "single_p99_ms": p99,
            "cosine_to_float32_min": min_cosine, "cosine_to_float32_mean": mean_cosine,
        }));
        if backend == Backend::Fastembed {
            reference = Some(vectors);
            fastembed = Some(embedder);
        }
    }
    let embedder = fastembed.context("fastembed embedder")?;

    eprintln!(
        "bench: indexing {} entities for the search benchmark",
        docs.len()
    );
    let index_dir = out.join("index");
    let _ = std::fs::remove_dir_all(&index_dir);
    let runtime = tokio::runtime::Runtime::new()?;
    let search_results = runtime.block_on(async {
        let index = EntityIndex::open(&index_dir.to_string_lossy()).await?;
        index.sync(&docs, embedder.as_ref(), true).await?;
        let mut results = Vec::new();
        for mode in [SearchMode::Vector, SearchMode::Lexical, SearchMode::Hybrid] {
            let mut times = Vec::new();
            for query in &queries {
                let request = SearchRequest::new(query.clone()).mode(mode).limit(10);
                let start = Instant::now();
                index.search(&request, embedder.as_ref()).await?;
                times.push(start.elapsed().as_secs_f64() * 1000.0);
            }
            let (p50, p99) = (percentile(&mut times, 0.50), percentile(&mut times, 0.99));
            eprintln!("bench:   search {mode:?}: p50 {p50:.2} ms, p99 {p99:.2} ms");
            results.push(json!({"mode": format!("{mode:?}").to_lowercase(), "k": 10, "queries": queries.len(), "p50_ms": p50, "p99_ms": p99}));
        }
        anyhow::Ok(results)
    })?;

    let report = json!({ "machine": machine(), "embed": embed_results, "search": search_results });
    std::fs::write(
        out.join("rust.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    eprintln!("bench: wrote {}", out.join("rust.json").display());
    Ok(())
}

/// Best-of-`ROUNDS` throughput at batch 32, then p50/p99 of single-query latency.
fn measure(
    embedder: &dyn Embedder,
    texts: &[String],
    queries: &[String],
) -> Result<(f64, f64, f64)> {
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    embedder.embed(&refs[..BATCH])?; // warm-up
    let mut best = 0.0f64;
    for _ in 0..ROUNDS {
        let start = Instant::now();
        for chunk in refs.chunks(BATCH) {
            embedder.embed(chunk)?;
        }
        best = best.max(refs.len() as f64 / start.elapsed().as_secs_f64());
    }
    let mut times = Vec::new();
    for q in queries {
        let start = Instant::now();
        embedder.embed(&[q.as_str()])?;
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    Ok((
        best,
        percentile(&mut times, 0.50),
        percentile(&mut times, 0.99),
    ))
}

fn percentile(values: &mut [f64], q: f64) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    let rank = ((values.len() as f64 - 1.0) * q).round() as usize;
    values.get(rank).copied().unwrap_or(f64::NAN)
}

/// 200 short maintenance queries: every sensor and failure-mode phrase of a fixed list,
/// combined with assets.
fn queries() -> Vec<String> {
    let symptoms = [
        "bearing wear",
        "high vibration",
        "oil leak",
        "overheating",
        "noisy gearbox",
        "low discharge pressure",
        "insulation breakdown",
        "seal leakage",
        "fails to start",
        "exhaust temperature high",
        "compressor surge",
        "cavitation noise",
        "winding fault",
        "tap changer fault",
        "fouled impeller",
        "misalignment",
        "unbalance",
        "loose foundation bolts",
        "fuel injector fault",
        "partial discharge",
    ];
    let assets = [
        "pump",
        "compressor",
        "electric motor",
        "gas turbine",
        "transformer",
        "fan",
        "steam turbine",
        "generator",
        "diesel engine",
        "heat exchanger",
    ];
    symptoms
        .iter()
        .flat_map(|s| assets.iter().map(move |a| format!("{s} on the {a}")))
        .collect()
}

fn write_lines(path: &std::path::Path, lines: &[String]) -> Result<()> {
    let text: Vec<String> = lines
        .iter()
        .map(serde_json::to_string)
        .collect::<Result<_, _>>()?;
    std::fs::write(path, text.join("\n") + "\n")
        .with_context(|| format!("writing {}", path.display()))
}

fn machine() -> serde_json::Value {
    let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    json!({ "cpus": cpus, "cpu_model": cpu_model, "os": std::env::consts::OS })
}
