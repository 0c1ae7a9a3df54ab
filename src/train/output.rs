//! The trained model as a sentence-transformers directory: the base model's configuration,
//! tokenizer and pooling files, the new `model.safetensors`, its ONNX export (what fastembed
//! serves), a model card and `training.json` (recipe, history, scores). It is assembled in a
//! temporary directory and renamed into place, so the output is either the old model or the
//! complete new one.

use super::trainer::TrainOutcome;
use super::{TrainError, TrainResult};
use crate::embed::bert::BertEncoder;
use crate::embed::ModelDir;
use crate::eval::report::{line_chart, LineChart};
use std::path::{Path, PathBuf};

/// Files of the base model that the trained one shares unchanged.
const SHARED_FILES: &[&str] = &[
    "config.json",
    "config_sentence_transformers.json",
    "modules.json",
    "sentence_bert_config.json",
    "special_tokens_map.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "1_Pooling/config.json",
];

/// Writes the model of `encoder` to `outcome.recipe.out`; returns that directory.
pub fn write_model(
    encoder: &BertEncoder,
    base: &ModelDir,
    outcome: &TrainOutcome,
) -> TrainResult<PathBuf> {
    let out = outcome.recipe.out.clone();
    let mut tmp_name = out.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = out.with_file_name(tmp_name);
    let _ = std::fs::remove_dir_all(&tmp);
    for file in SHARED_FILES {
        let from = base.dir.join(file);
        if !from.is_file() {
            continue;
        }
        let to = tmp.join(file);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(|e| TrainError::io(parent, e))?;
        }
        std::fs::copy(&from, &to).map_err(|e| TrainError::io(&to, e))?;
    }
    encoder
        .varmap()
        .save(tmp.join("model.safetensors"))
        .map_err(TrainError::from)?;
    let json = serde_json::to_string_pretty(outcome).map_err(|e| TrainError::Json {
        what: "training.json".into(),
        source: e,
    })?;
    write(&tmp.join("training.json"), &json)?;
    // The curve is for people; a missing chart font must not cost the trained model.
    if let Err(e) = training_chart(outcome, &tmp.join("training.png")) {
        tracing::warn!("training.png not drawn: {e}");
    }
    write(
        &tmp.join("README.md"),
        &model_card(outcome, crate::embed::Embedder::dim(encoder)),
    )?;
    crate::embed::ensure_onnx(&ModelDir::open(&tmp)?)?;
    if out.exists() {
        std::fs::remove_dir_all(&out).map_err(|e| TrainError::io(&out, e))?;
    }
    std::fs::rename(&tmp, &out).map_err(|e| TrainError::io(&out, e))?;
    Ok(out)
}

/// Validation score (and mean training loss, scaled to fit) against the step.
pub fn training_chart(outcome: &TrainOutcome, path: &Path) -> TrainResult<()> {
    let points = |f: &dyn Fn(&super::trainer::EvalPoint) -> Option<f64>| -> Vec<(f64, f64)> {
        outcome
            .history
            .iter()
            .filter_map(|p| f(p).map(|y| (p.step as f64, y)))
            .collect()
    };
    let chart = LineChart {
        title: format!(
            "Training {}: validation score by step",
            outcome.recipe.out.display()
        ),
        x_label: "step".into(),
        y_label: "%  (loss × 10)".into(),
        series: vec![
            (
                "validation: mean of HIT@1, MAP@100, NDCG@10 (%)".into(),
                points(&|p| Some(p.validation * 100.0)),
            ),
            (
                "mean training loss × 10".into(),
                points(&|p| p.loss.map(|l| l * 10.0)),
            ),
        ],
    };
    line_chart(path, &chart)?;
    Ok(())
}

fn write(path: &Path, text: &str) -> TrainResult<()> {
    std::fs::write(path, text).map_err(|e| TrainError::io(path, e))
}

/// A short model card: what it is, how it was made, how good it is.
fn model_card(o: &TrainOutcome, dim: usize) -> String {
    let r = &o.recipe;
    let pct = |v: f64| format!("{:.1}", v * 100.0);
    format!(
        "# {name}\n\n\
         A sentence embedding model for industrial asset maintenance retrieval, fine-tuned by \
         `assetkg train` from `{base}` on the nine assetkg task datasets (method of arXiv \
         2506.12607). Mean pooling, L2-normalised, {dim} dimensions; `model.onnx` is the same \
         network for ONNX Runtime.\n\n\
         - loss: {loss}, {epochs} epochs, batch {batch}, positive ratio {ratio}, lr {lr:e}, \
         seed {seed}\n\
         - frozen layers: {frozen} (cached), p_desc {p_desc}, max length {max_len}\n\
         - steps: {steps}, kept step {best}, {minutes:.1} min\n\n\
         Test split, unweighted mean over tasks: HIT@1 {h1}, MAP@100 {map}, NDCG@10 {ndcg} \
         (in-memory scoring; `assetkg eval --model DIR` reproduces them through ONNX Runtime).\n\n\
         Training data derive from the FailureSensorIQ relevance matrix (CC BY 4.0) and the \
         assetkg knowledge base; see `training.json` for the full recipe and history.\n",
        name = r.out.file_name().unwrap_or_default().to_string_lossy(),
        base = o.base_model_id,
        loss = r.schedule.loss.as_str(),
        epochs = r.schedule.epochs,
        batch = r.schedule.batch_size,
        ratio = r.schedule.positive_ratio,
        lr = r.schedule.learning_rate,
        seed = r.seed,
        frozen = r.frozen_layers,
        p_desc = r.data.p_desc,
        max_len = r.data.max_length,
        steps = o.steps,
        best = o.best_step,
        minutes = (o.seconds + o.resumed_seconds) / 60.0,
        h1 = pct(o.test.mean.hit_at_1),
        map = pct(o.test.mean.map_at_100),
        ndcg = pct(o.test.mean.ndcg_at_10),
    )
}
