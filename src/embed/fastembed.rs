//! The serving embedder: fastembed running our exported `model.onnx` on ONNX Runtime, which is
//! loaded at run time from the PyPI wheel's `libonnxruntime.so` (see scripts/fetch-models.sh).

use super::onnx::Precision;
use super::{l2_normalize, EmbedError, EmbedResult, Embedder, ModelDir};
use fastembed::{
    InitOptionsUserDefined, Pooling, TextEmbedding, TokenizerFiles, UserDefinedEmbeddingModel,
};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// Texts per ONNX Runtime call.
const BATCH: usize = 32;

/// [`Embedder`] over fastembed and ONNX Runtime.
pub struct FastEmbedder {
    // fastembed's `embed` takes `&mut self`; the lock lets one embedder serve many threads.
    inner: Mutex<TextEmbedding>,
    model_id: String,
    dim: usize,
}

impl std::fmt::Debug for FastEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FastEmbedder")
            .field("model_id", &self.model_id)
            .finish_non_exhaustive()
    }
}

/// Loads ONNX Runtime from `dylib` once per process. ORT panics when it cannot find its
/// library, so the path is checked here first and a missing file is a clear error.
pub fn init_onnx_runtime(dylib: &Path) -> EmbedResult<()> {
    static LOADED: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let loaded = LOADED.get_or_init(|| {
        if !dylib.is_file() {
            return Err(format!(
                "{} not found (run scripts/fetch-models.sh)",
                dylib.display()
            ));
        }
        ort::init_from(dylib)
            .map(|_| dylib.to_owned())
            .map_err(|e| format!("{}: {e}", dylib.display()))
    });
    loaded
        .as_ref()
        .map(|_| ())
        .map_err(|e| EmbedError::Runtime(e.clone()))
}

impl FastEmbedder {
    /// Loads `model.onnx` of `model` (export it first with [`super::onnx::export`]) with ONNX
    /// Runtime from `ort_dylib`.
    pub fn load(model: &ModelDir, ort_dylib: &Path) -> EmbedResult<Self> {
        Self::load_precision(model, Precision::Float32, ort_dylib)
    }

    /// Loads the graph of `precision` ([`ModelDir::onnx_of`]; export it first with
    /// [`super::onnx::export_with`]). An int8 graph gets the model id `…+int8`.
    pub fn load_precision(
        model: &ModelDir,
        precision: Precision,
        ort_dylib: &Path,
    ) -> EmbedResult<Self> {
        init_onnx_runtime(ort_dylib)?;
        let read = |name: &str| -> EmbedResult<Vec<u8>> {
            let path = model.dir.join(name);
            std::fs::read(&path).map_err(|e| EmbedError::io(path, e))
        };
        let path = model.onnx_of(precision);
        let onnx = std::fs::read(&path).map_err(|e| EmbedError::io(&path, e))?;
        let files = TokenizerFiles {
            tokenizer_file: read("tokenizer.json")?,
            config_file: read("config.json")?,
            special_tokens_map_file: read("special_tokens_map.json")?,
            tokenizer_config_file: read("tokenizer_config.json")?,
        };
        let user_model = UserDefinedEmbeddingModel::new(onnx, files).with_pooling(Pooling::Mean);
        // ONNX Runtime's intra-op threads busy-wait for work by default: between the short
        // calls of a server (one batch of query texts at a time) they burned half of both
        // cores while LanceDB waited for CPU (perf, search at concurrency 32). Sleeping
        // threads cost batch embedding nothing measurable (docs/benchmarks.md).
        let options = InitOptionsUserDefined::new()
            .with_max_length(model.max_seq_length)
            .with_session_config("session.intra_op.allow_spinning", "0");
        let inner = TextEmbedding::try_new_from_user_defined(user_model, options)
            .map_err(|e| EmbedError::Runtime(e.to_string()))?;
        Ok(Self {
            inner: Mutex::new(inner),
            model_id: match precision {
                Precision::Float32 => model.model_id()?,
                Precision::Int8 => format!("{}+int8", model.model_id()?),
            },
            dim: model.config.hidden_size,
        })
    }
}

impl Embedder for FastEmbedder {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn embed(&self, texts: &[&str]) -> EmbedResult<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let mut inner = self
            .inner
            .lock()
            .map_err(|_| EmbedError::Runtime("embedder lock poisoned".to_owned()))?;
        let mut vectors = inner
            .embed(texts, Some(BATCH))
            .map_err(|e| EmbedError::Runtime(e.to_string()))?;
        vectors.iter_mut().for_each(|v| l2_normalize(v));
        Ok(vectors)
    }
}
