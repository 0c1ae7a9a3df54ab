//! Times the embedded chat model: load, prompt reading, generation and candidate scoring.
//! `cargo run --example llm_probe -- [MODEL.gguf]`
use assetkg::agent::gguf::{GgufModel, DEFAULT_GGUF};
use assetkg::augment::llm::ChatMessage;
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| DEFAULT_GGUF.to_owned());
    let t = Instant::now();
    let model = GgufModel::load(std::path::Path::new(&path))?;
    println!("load {:.2}s", t.elapsed().as_secs_f32());
    let messages = vec![ChatMessage::user(
        "What is the capital of France? Answer in one sentence.",
    )];
    let prompt = GgufModel::prompt(&messages);
    println!("prompt tokens {}", model.encode(&prompt)?.len());
    let t = Instant::now();
    let r = model.generate(&prompt, 24, 0.0, &[])?;
    println!(
        "generate {:.2}s {:?} -> {:?}",
        t.elapsed().as_secs_f32(),
        r.completion_tokens,
        r.text
    );
    let long =
        "The centrifugal pump shows rising vibration and falling discharge pressure. ".repeat(20);
    let messages = vec![ChatMessage::user(format!(
        "{long}\nWhich is relevant? 1) vibration 2) colour\nAnswer with the number."
    ))];
    let t = Instant::now();
    let s = model.continuation_logprobs(
        &GgufModel::prompt(&messages),
        &["1".into(), "2".into(), "vibration sensor".into()],
    )?;
    println!(
        "score ({} prompt tokens) {:.2}s {:?}",
        model.encode(&GgufModel::prompt(&messages))?.len(),
        t.elapsed().as_secs_f32(),
        s
    );
    Ok(())
}
