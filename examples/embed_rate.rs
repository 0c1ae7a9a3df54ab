//! The query-embedding limit of one core, for scripts/bench-service.sh: embeds distinct
//! search-like queries one at a time (as the server embeds each request's text) with the
//! serving embedder and prints JSON with the rate and the per-query latency. Run it pinned to
//! one core (`taskset -c 0`) to measure the single-core limit.
//!
//! With `--batch N` it embeds N queries per call instead (the server batches the texts of
//! concurrent requests), and the rate counts queries.
//!
//! Usage: embed_rate [--model DIR] [--seconds N] [--batch N]

use anyhow::Result;
use assetkg::embed::{load_embedder, Backend};
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn arg(name: &str) -> Option<String> {
    std::env::args().skip_while(|a| a != name).nth(1)
}

fn main() -> Result<()> {
    let model = PathBuf::from(arg("--model").unwrap_or_else(|| "models/all-MiniLM-L6-v2".into()));
    let seconds: f64 = arg("--seconds").map_or(Ok(10.0), |s| s.parse())?;
    let batch: usize = arg("--batch").map_or(Ok(1), |s| s.parse())?;
    let embedder = load_embedder(
        Backend::Fastembed,
        &model,
        &PathBuf::from("models/onnxruntime/libonnxruntime.so"),
    )?;
    let subjects = [
        "bearing", "seal", "impeller", "winding", "valve", "gearbox", "coupling", "rotor",
    ];
    let symptoms = [
        "wear",
        "leak",
        "noise",
        "overheating",
        "vibration",
        "cracking",
        "fouling",
        "misalignment",
    ];
    let queries: Vec<String> = subjects
        .iter()
        .flat_map(|s| symptoms.iter().map(move |y| format!("{s} {y}")))
        .collect();
    // Warm-up: the first calls allocate ONNX Runtime's buffers.
    for q in queries.iter().take(8) {
        embedder.embed(&[q])?;
    }
    let started = Instant::now();
    let mut done = 0usize;
    let mut latencies = Vec::new();
    while started.elapsed() < Duration::from_secs_f64(seconds) {
        let texts: Vec<&str> = (done..done + batch)
            .map(|i| queries[i % queries.len()].as_str())
            .collect();
        let t = Instant::now();
        embedder.embed(&texts)?;
        latencies.push(t.elapsed().as_secs_f64() * 1e3);
        done += batch;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let p50 = latencies[latencies.len() / 2];
    println!(
        "{}",
        serde_json::json!({
            "queries": done,
            "seconds": elapsed,
            "queries_per_second": done as f64 / elapsed,
            "batch": batch,
            "p50_ms": p50,
            "model": embedder.model_id(),
        })
    );
    Ok(())
}
