//! Resumable checkpoints in `OUT.checkpoint/`: the trainable weights, the optimiser moments, the
//! best weights so far and the loop state. A checkpoint is written to a temporary directory and
//! renamed into place, so a run killed mid-write leaves the previous checkpoint intact; only
//! the recipe that wrote it (same fingerprint) resumes from it.

use super::optim::AdamW;
use super::recipe::Recipe;
use super::trainer::EvalPoint;
use super::{TrainError, TrainResult};
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

const STATE: &str = "state.json";
const WEIGHTS: &str = "trainable.safetensors";
const OPTIMIZER: &str = "optimizer.safetensors";
const BEST: &str = "best.safetensors";

/// Named tensors: a set of weights.
pub type Weights = HashMap<String, Tensor>;

/// The loop state of a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The recipe fingerprint that wrote it.
    pub fingerprint: String,
    /// The next step to run.
    pub step: usize,
    pub best_score: f64,
    pub best_step: usize,
    pub history: Vec<EvalPoint>,
    /// Wall time of the run when written.
    pub seconds: f64,
    /// Wall time of the run before this process resumed it.
    #[serde(skip)]
    pub seconds_before: f64,
}

impl Checkpoint {
    /// The state of a run that has not started.
    pub fn fresh(fingerprint: String) -> Self {
        Self {
            fingerprint,
            step: 0,
            best_score: f64::NEG_INFINITY,
            best_step: 0,
            history: Vec::new(),
            seconds: 0.0,
            seconds_before: 0.0,
        }
    }
}

/// The checkpoint directory of the model directory `out`.
pub fn dir_of(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".checkpoint");
    out.with_file_name(name)
}

/// Writes a checkpoint to `dir` (atomically replacing the previous one).
pub fn save(
    dir: &Path,
    state: &Checkpoint,
    optimizer: &AdamW,
    best: Option<&HashMap<String, Tensor>>,
) -> TrainResult<()> {
    let mut tmp = dir.as_os_str().to_os_string();
    tmp.push(format!(".tmp{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| TrainError::io(&tmp, e))?;
    let weights: HashMap<String, Tensor> = optimizer
        .vars()
        .iter()
        .map(|(name, var)| (name.clone(), var.as_tensor().clone()))
        .collect();
    candle_core::safetensors::save(&weights, tmp.join(WEIGHTS))?;
    candle_core::safetensors::save(&optimizer.state(), tmp.join(OPTIMIZER))?;
    if let Some(best) = best {
        candle_core::safetensors::save(best, tmp.join(BEST))?;
    }
    let json = serde_json::to_string_pretty(state).map_err(|e| TrainError::Json {
        what: "checkpoint state".into(),
        source: e,
    })?;
    std::fs::write(tmp.join(STATE), json).map_err(|e| TrainError::io(tmp.join(STATE), e))?;
    remove(dir)?;
    std::fs::rename(&tmp, dir).map_err(|e| TrainError::io(dir, e))?;
    Ok(())
}

/// Loads the checkpoint in `dir` into `optimizer`'s variables and moments, if there is one
/// written by `recipe`; returns its state and best weights. A checkpoint of another recipe is
/// left alone (and reported), never mixed in.
pub fn load(
    dir: &Path,
    recipe: &Recipe,
    optimizer: &mut AdamW,
) -> TrainResult<Option<(Checkpoint, Option<Weights>)>> {
    let state_path = dir.join(STATE);
    let Ok(text) = std::fs::read_to_string(&state_path) else {
        return Ok(None);
    };
    let mut state: Checkpoint = serde_json::from_str(&text).map_err(|e| TrainError::Json {
        what: state_path.display().to_string(),
        source: e,
    })?;
    if state.fingerprint != recipe.fingerprint() {
        tracing::warn!(
            "{} was written by another recipe ({} vs {}); starting afresh",
            dir.display(),
            state.fingerprint,
            recipe.fingerprint()
        );
        return Ok(None);
    }
    let weights = candle_core::safetensors::load(dir.join(WEIGHTS), &Device::Cpu)?;
    super::trainer::restore(optimizer.vars(), &weights)?;
    let moments = candle_core::safetensors::load(dir.join(OPTIMIZER), &Device::Cpu)?;
    optimizer.restore(&moments, state.step)?;
    let best = if dir.join(BEST).is_file() {
        Some(candle_core::safetensors::load(
            dir.join(BEST),
            &Device::Cpu,
        )?)
    } else {
        None
    };
    state.seconds_before = state.seconds;
    Ok(Some((state, best)))
}

/// Removes the checkpoint in `dir`, if any.
pub fn remove(dir: &Path) -> TrainResult<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(TrainError::io(dir, e)),
        _ => Ok(()),
    }
}
