//! Fine-tuning embedding models on the task datasets (the paper's recipe, on CPU): contrastive
//! and multiple-negatives ranking losses, balanced batches, AdamW with warm-up, validation with
//! the best weights kept, resumable checkpoints, ablation sweeps.
//!
//! - [`recipe`]: the TOML recipe and its checks;
//! - [`data`]: training texts, pairs and negative pools from a [`crate::tasks::Dataset`];
//! - [`sampler`]: balanced contrastive batches and duplicate-free MNRL batches;
//! - [`encoder`]: the frozen-layer cache and the trainable upper layers;
//! - [`loss`], [`optim`]: the losses and AdamW;
//! - [`validate`]: in-memory retrieval scores on the validation and test splits;
//! - [`trainer`], [`checkpoint`], [`output`]: the loop, its checkpoints, the model directory;
//! - [`ablate`]: sweeps of p_desc, positive ratio, loss and seed, as a table and a chart.

pub mod ablate;
pub mod checkpoint;
pub mod data;
pub mod encoder;
pub mod loss;
pub mod optim;
pub mod output;
pub mod recipe;
pub mod sampler;
pub mod trainer;
pub mod validate;

pub use recipe::{LossKind, Recipe};
pub use trainer::{train, RunOptions, TrainOutcome, Trained};

use std::path::PathBuf;
use thiserror::Error;

/// An error while training.
#[derive(Debug, Error)]
pub enum TrainError {
    /// The recipe file is malformed or a value is out of range.
    #[error("recipe {path}: {message}")]
    Recipe { path: PathBuf, message: String },
    /// The run cannot start as configured.
    #[error("{0}")]
    Setup(String),
    /// The loss became NaN or infinite.
    #[error("training diverged at step {step} (loss {loss}); lower schedule.learning_rate")]
    Diverged { step: usize, loss: f64 },
    /// Loading or exporting the model failed.
    #[error(transparent)]
    Embed(#[from] crate::embed::EmbedError),
    /// A tensor operation failed.
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Serialising a record failed.
    #[error("serialising {what}: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    /// Writing a report failed.
    #[error(transparent)]
    Report(#[from] crate::eval::report::ReportError),
}

impl TrainError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

/// Result alias of the train module.
pub type TrainResult<T> = Result<T, TrainError>;
