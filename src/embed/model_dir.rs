//! A model directory in sentence-transformers layout: `config.json` (BERT sizes),
//! `model.safetensors`, `tokenizer.json`, `1_Pooling/config.json`, `sentence_bert_config.json`,
//! and — once exported — `model.onnx`.

use super::{EmbedError, EmbedResult};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The BERT hyper-parameters of `config.json` that the encoder and the exporter need.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub layer_norm_eps: f64,
    pub hidden_act: String,
}

#[derive(Debug, Deserialize)]
struct SentenceBertConfig {
    max_seq_length: usize,
}

#[derive(Debug, Deserialize)]
struct PoolingConfig {
    pooling_mode_mean_tokens: bool,
}

/// A checked model directory.
#[derive(Debug, Clone)]
pub struct ModelDir {
    /// The directory.
    pub dir: PathBuf,
    /// BERT sizes.
    pub config: BertConfig,
    /// Longest input in tokens (longer texts are truncated).
    pub max_seq_length: usize,
}

impl ModelDir {
    /// Opens `dir`, checking that the files are there and that pooling is mean pooling.
    pub fn open(dir: &Path) -> EmbedResult<Self> {
        let config: BertConfig = read_json(&dir.join("config.json"))?;
        if config.hidden_act != "gelu" {
            return Err(EmbedError::BadModel {
                path: dir.join("config.json"),
                message: format!(
                    "hidden_act {:?} is not supported (only gelu)",
                    config.hidden_act
                ),
            });
        }
        let max_seq_length =
            match read_json::<SentenceBertConfig>(&dir.join("sentence_bert_config.json")) {
                Ok(c) => c.max_seq_length,
                Err(EmbedError::Io { .. }) => config.max_position_embeddings,
                Err(e) => return Err(e),
            };
        let pooling_path = dir.join("1_Pooling/config.json");
        let pooling: PoolingConfig = read_json(&pooling_path)?;
        if !pooling.pooling_mode_mean_tokens {
            return Err(EmbedError::BadModel {
                path: pooling_path,
                message: "only mean pooling is supported".to_owned(),
            });
        }
        for file in ["model.safetensors", "tokenizer.json"] {
            if !dir.join(file).is_file() {
                return Err(EmbedError::io(
                    dir.join(file),
                    std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "missing (run scripts/fetch-models.sh)",
                    ),
                ));
            }
        }
        let max_seq_length = max_seq_length.min(config_max(&config));
        Ok(Self {
            dir: dir.to_owned(),
            config,
            max_seq_length,
        })
    }

    /// `model.safetensors`.
    pub fn weights(&self) -> PathBuf {
        self.dir.join("model.safetensors")
    }

    /// `tokenizer.json`.
    pub fn tokenizer(&self) -> PathBuf {
        self.dir.join("tokenizer.json")
    }

    /// `model.onnx` (written by [`super::onnx::export`]).
    pub fn onnx(&self) -> PathBuf {
        self.dir.join("model.onnx")
    }

    /// The ONNX graph of `precision`: `model.onnx`, or `model.int8.onnx` for int8.
    pub fn onnx_of(&self, precision: super::onnx::Precision) -> PathBuf {
        match precision {
            super::onnx::Precision::Float32 => self.onnx(),
            super::onnx::Precision::Int8 => self.dir.join("model.int8.onnx"),
        }
    }

    /// The model id: directory name and the first 16 hex digits of the weights' SHA-256.
    pub fn model_id(&self) -> EmbedResult<String> {
        let bytes = std::fs::read(self.weights()).map_err(|e| EmbedError::io(self.weights(), e))?;
        let name = self
            .dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(format!(
            "{name}@{}",
            &hex::encode(Sha256::digest(&bytes))[..16]
        ))
    }

    /// Loads the tokenizer with truncation to [`Self::max_seq_length`] and no fixed padding
    /// (the shipped `tokenizer.json` pads every input to 128 tokens).
    pub fn load_tokenizer(&self) -> EmbedResult<tokenizers::Tokenizer> {
        let mut tokenizer = tokenizers::Tokenizer::from_file(self.tokenizer())
            .map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(tokenizers::TruncationParams {
                max_length: self.max_seq_length,
                ..Default::default()
            }))
            .map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        Ok(tokenizer)
    }
}

fn config_max(config: &BertConfig) -> usize {
    config.max_position_embeddings
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> EmbedResult<T> {
    let text = std::fs::read_to_string(path).map_err(|e| EmbedError::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| EmbedError::BadModel {
        path: path.to_owned(),
        message: e.to_string(),
    })
}
