//! Typed configuration: where the store lives and where the bundled ontology, shapes and KB are.
//! Built from command-line flags and `ASSETKG_*` environment variables (clap reads both), and
//! checked once here so that the rest of the code can trust it.

use std::path::{Path, PathBuf};
use thiserror::Error;

/// A configuration value that cannot be used.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// A directory that must exist does not.
    #[error("{what} directory not found: {path}")]
    MissingDir { what: &'static str, path: PathBuf },
    /// A file that must exist does not.
    #[error("{what} file not found: {path}")]
    MissingFile { what: &'static str, path: PathBuf },
}

/// The base embedding model, as scripts/fetch-models.sh unpacks it.
pub const BASE_MODEL_DIR: &str = "models/all-MiniLM-L6-v2";

/// Paths of the knowledge-base sources and of the on-disk store.
#[derive(Debug, Clone)]
pub struct Config {
    /// Data directory: the RocksDB store lives in `<data_dir>/store`.
    pub data_dir: PathBuf,
    /// Directory of the ontology (`assetkg.ttl`) and the SHACL shapes (`shapes.ttl`).
    pub ontology_dir: PathBuf,
    /// Directory of the bundled knowledge base (`*.ttl`).
    pub kb_dir: PathBuf,
    /// Embedding model directory (sentence-transformers layout).
    pub model_dir: PathBuf,
    /// ONNX Runtime shared library that fastembed loads.
    pub ort_dylib: PathBuf,
    /// Where the entity index lives: a LanceDB directory (object storage comes with deployment).
    pub index_uri: String,
}

impl Config {
    /// Checks that the ontology and KB directories hold what the KB needs.
    pub fn new(
        data_dir: PathBuf,
        ontology_dir: PathBuf,
        kb_dir: PathBuf,
    ) -> Result<Self, ConfigError> {
        for (what, dir) in [("ontology", &ontology_dir), ("knowledge base", &kb_dir)] {
            if !dir.is_dir() {
                return Err(ConfigError::MissingDir {
                    what,
                    path: dir.clone(),
                });
            }
        }
        let index_uri = data_dir.join("index").to_string_lossy().into_owned();
        let config = Self {
            data_dir,
            ontology_dir,
            kb_dir,
            model_dir: PathBuf::from(BASE_MODEL_DIR),
            ort_dylib: PathBuf::from("models/onnxruntime/libonnxruntime.so"),
            index_uri,
        };
        for (what, file) in [
            ("ontology", config.ontology_file()),
            ("shapes", config.shapes_file()),
        ] {
            if !file.is_file() {
                return Err(ConfigError::MissingFile { what, path: file });
            }
        }
        Ok(config)
    }

    /// Uses another embedding model directory, ONNX Runtime library or index location.
    pub fn with_models(
        mut self,
        model_dir: Option<PathBuf>,
        ort_dylib: Option<PathBuf>,
        index_uri: Option<String>,
    ) -> Self {
        if let Some(dir) = model_dir {
            self.model_dir = dir;
        }
        if let Some(dylib) = ort_dylib {
            self.ort_dylib = dylib;
        }
        if let Some(uri) = index_uri {
            self.index_uri = uri;
        }
        self
    }

    /// The on-disk store directory.
    pub fn store_dir(&self) -> PathBuf {
        self.data_dir.join("store")
    }

    /// The OWL ontology file.
    pub fn ontology_file(&self) -> PathBuf {
        self.ontology_dir.join("assetkg.ttl")
    }

    /// The SHACL shapes file.
    pub fn shapes_file(&self) -> PathBuf {
        self.ontology_dir.join("shapes.ttl")
    }

    /// The ontology and every `*.ttl` file of the KB directory, sorted, i.e. the bundled KB.
    pub fn bundled_files(&self) -> std::io::Result<Vec<PathBuf>> {
        let mut files = vec![self.ontology_file()];
        files.extend(ttl_files(&self.kb_dir)?);
        Ok(files)
    }
}

/// The `*.ttl` files directly inside `dir`, sorted by name.
fn ttl_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_file() && path.extension().is_some_and(|e| e == "ttl") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}
