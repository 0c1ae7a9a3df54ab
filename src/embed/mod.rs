//! Sentence embeddings. One trait, [`Embedder`] (texts → L2-normalised vectors), with two real
//! implementations over the same sentence-transformers model directory:
//! - [`bert::BertEncoder`]: our own BERT in candle, mean pooling; trainable (its LayerNorm has
//!   a backward pass), used for fine-tuning and as the reference implementation;
//! - [`fastembed::FastEmbedder`]: fastembed over ONNX Runtime, the serving default, running the
//!   graph that [`onnx::export`] writes from the same weights.

pub mod batch;
pub mod bert;
pub mod fastembed;
pub mod model_dir;
pub mod onnx;

pub use model_dir::{BertConfig, ModelDir};

use std::path::PathBuf;
use thiserror::Error;

/// An error while loading a model or embedding texts.
#[derive(Debug, Error)]
pub enum EmbedError {
    /// A model file is missing or unreadable.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A model file is present but malformed.
    #[error("{path}: {message}")]
    BadModel { path: PathBuf, message: String },
    /// The tokenizer failed.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// A candle tensor operation failed.
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
    /// ONNX Runtime (through fastembed) failed.
    #[error("onnx runtime: {0}")]
    Runtime(String),
    /// Writing the ONNX graph failed.
    #[error("onnx export: {0}")]
    Export(String),
}

impl EmbedError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

/// Result alias of the embed module.
pub type EmbedResult<T> = Result<T, EmbedError>;

/// Turns texts into L2-normalised vectors of one fixed dimension.
pub trait Embedder: Send + Sync {
    /// Identifies the weights: the model name and a hash of its safetensors file, so that an
    /// index knows when its vectors came from another model.
    fn model_id(&self) -> &str;
    /// Vector dimension.
    fn dim(&self) -> usize;
    /// Embeds a batch of texts; one vector per text, in order, each of unit length.
    fn embed(&self, texts: &[&str]) -> EmbedResult<Vec<Vec<f32>>>;
}

/// Cosine similarity of two vectors (dot product over the norms).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}

/// Scales `v` to unit length (leaves a zero vector as it is).
pub fn l2_normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// Makes sure `model.onnx` exists and is newer than the weights, exporting it if not. The
/// export goes to a temporary file first, so a reader never sees half a graph.
pub fn ensure_onnx(model: &ModelDir) -> EmbedResult<PathBuf> {
    ensure_onnx_of(model, onnx::Precision::Float32)
}

/// [`ensure_onnx`] for the graph of `precision` ([`ModelDir::onnx_of`]).
pub fn ensure_onnx_of(model: &ModelDir, precision: onnx::Precision) -> EmbedResult<PathBuf> {
    let onnx = model.onnx_of(precision);
    // The stamp names the exporter revision, so a fixed exporter re-exports old files.
    let stamp = onnx.with_extension("onnx.revision");
    let modified = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let newer = match (modified(&onnx), modified(&model.weights())) {
        (Some(o), Some(w)) => o >= w,
        _ => false,
    };
    let same_exporter = std::fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == onnx::REVISION);
    if !(newer && same_exporter) {
        tracing::info!(model = %model.dir.display(), ?precision, "exporting the model to ONNX");
        let tmp = onnx.with_extension(format!("onnx.tmp{}", std::process::id()));
        onnx::export_with(model, &tmp, precision)?;
        std::fs::rename(&tmp, &onnx).map_err(|e| EmbedError::io(&onnx, e))?;
        std::fs::write(&stamp, onnx::REVISION).map_err(|e| EmbedError::io(&stamp, e))?;
    }
    Ok(onnx)
}

/// Which implementation embeds: the serving default or our candle encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize)]
pub enum Backend {
    /// fastembed over ONNX Runtime, running the exported `model.onnx`.
    #[default]
    Fastembed,
    /// fastembed over ONNX Runtime, running the int8-quantized `model.int8.onnx`: faster, with
    /// vectors close to but not equal to float32 ones (its own model id, so an index never
    /// mixes the two).
    FastembedInt8,
    /// Our BERT in candle.
    Candle,
}

/// Loads the model of `model_dir` with `backend` (exporting `model.onnx` first if fastembed
/// needs it and it is missing or older than the weights).
pub fn load_embedder(
    backend: Backend,
    model_dir: &std::path::Path,
    ort_dylib: &std::path::Path,
) -> EmbedResult<Box<dyn Embedder>> {
    let model = ModelDir::open(model_dir)?;
    Ok(match backend {
        Backend::Fastembed => {
            ensure_onnx(&model)?;
            Box::new(fastembed::FastEmbedder::load(&model, ort_dylib)?)
        }
        Backend::FastembedInt8 => {
            let precision = onnx::Precision::Int8;
            ensure_onnx_of(&model, precision)?;
            Box::new(fastembed::FastEmbedder::load_precision(
                &model, precision, ort_dylib,
            )?)
        }
        Backend::Candle => Box::new(bert::BertEncoder::load(&model)?),
    })
}
