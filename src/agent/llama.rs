//! A llama-architecture decoder (SmolLM2, TinyLlama, Llama 2/3 …) over candle tensors, with its
//! weights read from a GGUF file and held as f32.
//!
//! Why our own and not `candle_transformers::models::quantized_llama`: that one returns the
//! logits of the last position only and cannot extend a cached prefix by more than one token
//! (its causal mask assumes an empty cache), while the agent scores candidate continuations
//! after a shared prompt; and the crate's `fancy-regex` dependency changes `regex-automata`'s
//! features, which rebuilds Arrow, DataFusion and Lance. Why f32: candle's quantized CPU kernels
//! use SIMD only when the whole build targets the CPU; f32 products run on `gemm`, which picks
//! AVX2/AVX-512 at run time.

use candle_core::quantized::gguf_file;
use candle_core::{DType, Device, IndexOp, Result, Tensor, D};
use candle_nn::ops::{rms_norm, silu, softmax_last_dim};
use candle_nn::rotary_emb::rope_i;

/// The hyper-parameters the GGUF metadata gives.
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaConfig {
    /// Transformer blocks.
    pub layers: usize,
    /// Width of the residual stream.
    pub hidden: usize,
    /// Attention heads.
    pub heads: usize,
    /// Key/value heads (grouped-query attention when fewer than `heads`).
    pub kv_heads: usize,
    /// RMS norm epsilon.
    pub rms_eps: f64,
    /// Rotary embedding base.
    pub rope_base: f32,
    /// Longest sequence the model was trained on (the rotary table's length).
    pub context: usize,
}

impl LlamaConfig {
    fn head_dim(&self) -> usize {
        self.hidden / self.heads
    }
}

struct Block {
    attn_norm: Tensor,
    wq: Tensor,
    wk: Tensor,
    wv: Tensor,
    wo: Tensor,
    ffn_norm: Tensor,
    gate: Tensor,
    up: Tensor,
    down: Tensor,
}

/// The decoder's weights (read-only; share it behind an `Arc`).
pub struct Llama {
    config: LlamaConfig,
    embeddings: Tensor,
    blocks: Vec<Block>,
    norm: Tensor,
    output: Tensor,
    cos: Tensor,
    sin: Tensor,
}

/// The keys and values of the tokens read so far, one pair per block. Cloning is cheap (tensors
/// are reference-counted), so a prompt read once can be continued several ways.
#[derive(Clone, Default)]
pub struct KvCache {
    entries: Vec<(Tensor, Tensor)>,
    len: usize,
}

impl KvCache {
    /// Tokens read so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True before the first token.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// `x · wᵀ` for a 2-D `x` (`[tokens, in]`) and a weight `w` (`[out, in]`).
fn linear(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    x.matmul(&w.t()?)
}

impl Llama {
    /// Reads a llama GGUF: hyper-parameters from the metadata, every tensor dequantized to f32.
    pub fn from_gguf<R: std::io::Read + std::io::Seek>(
        content: &gguf_file::Content,
        reader: &mut R,
    ) -> Result<Self> {
        let device = Device::Cpu;
        let md = |key: &str| {
            content
                .metadata
                .get(key)
                .ok_or_else(|| candle_core::Error::Msg(format!("GGUF metadata `{key}` is missing")))
        };
        let heads = md("llama.attention.head_count")?.to_u32()? as usize;
        let config = LlamaConfig {
            layers: md("llama.block_count")?.to_u32()? as usize,
            hidden: md("llama.embedding_length")?.to_u32()? as usize,
            heads,
            kv_heads: md("llama.attention.head_count_kv")
                .and_then(|v| v.to_u32())
                .map_or(heads, |v| v as usize),
            rms_eps: f64::from(md("llama.attention.layer_norm_rms_epsilon")?.to_f32()?),
            rope_base: md("llama.rope.freq_base")
                .and_then(|v| v.to_f32())
                .unwrap_or(10_000.0),
            context: md("llama.context_length")
                .and_then(|v| v.to_u32())
                .map_or(2048, |v| v as usize),
        };
        let mut tensor = |name: &str| -> Result<Tensor> {
            content
                .tensor(reader, name, &device)?
                .dequantize(&device)
                .map_err(|e| candle_core::Error::Msg(format!("tensor {name}: {e}")))
        };
        let embeddings = tensor("token_embd.weight")?;
        let norm = tensor("output_norm.weight")?;
        // Small models tie the output projection to the embeddings.
        let output = if content.tensor_infos.contains_key("output.weight") {
            tensor("output.weight")?
        } else {
            embeddings.clone()
        };
        let mut blocks = Vec::with_capacity(config.layers);
        for i in 0..config.layers {
            let mut t = |suffix: &str| tensor(&format!("blk.{i}.{suffix}.weight"));
            blocks.push(Block {
                attn_norm: t("attn_norm")?,
                wq: t("attn_q")?,
                wk: t("attn_k")?,
                wv: t("attn_v")?,
                wo: t("attn_output")?,
                ffn_norm: t("ffn_norm")?,
                gate: t("ffn_gate")?,
                up: t("ffn_up")?,
                down: t("ffn_down")?,
            });
        }
        let (cos, sin) = rotary_tables(&config, &device)?;
        Ok(Self {
            config,
            embeddings,
            blocks,
            norm,
            output,
            cos,
            sin,
        })
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &LlamaConfig {
        &self.config
    }

    /// Reads `tokens` after what `cache` holds and returns their final hidden states
    /// (`[tokens, hidden]`); the cache then holds them too.
    pub fn forward(&self, tokens: &[u32], cache: &mut KvCache) -> Result<Tensor> {
        let seq = tokens.len();
        let start = cache.len;
        if seq == 0 || start + seq > self.config.context {
            candle_core::bail!(
                "{} tokens after {start} do not fit the context of {}",
                seq,
                self.config.context
            );
        }
        let device = self.embeddings.device();
        let ids = Tensor::new(tokens, device)?;
        let mut x = self.embeddings.index_select(&ids, 0)?;
        let mask = causal_mask(seq, start, device)?;
        let cos = self.cos.narrow(0, start, seq)?;
        let sin = self.sin.narrow(0, start, seq)?;
        let (heads, kv_heads, hd) = (
            self.config.heads,
            self.config.kv_heads,
            self.config.head_dim(),
        );
        for (i, block) in self.blocks.iter().enumerate() {
            let h = rms_norm(&x, &block.attn_norm, self.config.rms_eps as f32)?;
            // [seq, n·hd] → [1, n, seq, hd]
            let split =
                |t: Tensor, n: usize| t.reshape((1, seq, n, hd))?.transpose(1, 2)?.contiguous();
            let q = rope_i(&split(linear(&h, &block.wq)?, heads)?, &cos, &sin)?;
            let k = rope_i(&split(linear(&h, &block.wk)?, kv_heads)?, &cos, &sin)?;
            let v = split(linear(&h, &block.wv)?, kv_heads)?;
            let (k, v) = match cache.entries.get(i) {
                Some((ck, cv)) => (Tensor::cat(&[ck, &k], 2)?, Tensor::cat(&[cv, &v], 2)?),
                None => (k, v),
            };
            if i < cache.entries.len() {
                cache.entries[i] = (k.clone(), v.clone());
            } else {
                cache.entries.push((k.clone(), v.clone()));
            }
            let k = repeat_kv(&k, heads / kv_heads)?;
            let v = repeat_kv(&v, heads / kv_heads)?;
            let scores = (q.matmul(&k.t()?)? / (hd as f64).sqrt())?.broadcast_add(&mask)?;
            let attn = softmax_last_dim(&scores)?.matmul(&v)?;
            let attn = attn.transpose(1, 2)?.reshape((seq, heads * hd))?;
            x = (x + linear(&attn, &block.wo)?)?;
            let h = rms_norm(&x, &block.ffn_norm, self.config.rms_eps as f32)?;
            let ff = (silu(&linear(&h, &block.gate)?)? * linear(&h, &block.up)?)?;
            x = (x + linear(&ff, &block.down)?)?;
        }
        cache.len = start + seq;
        rms_norm(&x, &self.norm, self.config.rms_eps as f32)
    }

    /// Next-token logits (`[vocab]`) from the hidden state at `position` of a [`Self::forward`]
    /// output. Only the positions asked for are projected: the vocabulary is large.
    pub fn logits_at(&self, hidden: &Tensor, position: usize) -> Result<Tensor> {
        linear(&hidden.i(position..position + 1)?, &self.output)?.squeeze(0)
    }

    /// Log-probabilities (`[vocab]`) at `position`.
    pub fn log_probs_at(&self, hidden: &Tensor, position: usize) -> Result<Tensor> {
        candle_nn::ops::log_softmax(&self.logits_at(hidden, position)?, D::Minus1)
    }
}

/// `[seq, start + seq]`: 0 where a token may attend, −∞ after it.
fn causal_mask(seq: usize, start: usize, device: &Device) -> Result<Tensor> {
    let total = start + seq;
    let values: Vec<f32> = (0..seq)
        .flat_map(|i| {
            (0..total).map(move |j| {
                if j > start + i {
                    f32::NEG_INFINITY
                } else {
                    0.0
                }
            })
        })
        .collect();
    Tensor::from_vec(values, (seq, total), device)
}

/// Each key/value head repeated `times` (grouped-query attention).
fn repeat_kv(x: &Tensor, times: usize) -> Result<Tensor> {
    if times == 1 {
        return Ok(x.clone());
    }
    let (b, n, seq, hd) = x.dims4()?;
    x.unsqueeze(2)?
        .expand((b, n, times, seq, hd))?
        .reshape((b, n * times, seq, hd))
}

/// Cosine and sine of the rotary angles, `[context, head_dim / 2]` each.
fn rotary_tables(config: &LlamaConfig, device: &Device) -> Result<(Tensor, Tensor)> {
    let hd = config.head_dim();
    let inv_freq: Vec<f32> = (0..hd)
        .step_by(2)
        .map(|i| 1.0 / config.rope_base.powf(i as f32 / hd as f32))
        .collect();
    let inv_freq = Tensor::new(inv_freq.as_slice(), device)?.unsqueeze(0)?;
    let positions = Tensor::arange(0u32, config.context as u32, device)?
        .to_dtype(DType::F32)?
        .unsqueeze(1)?;
    let angles = positions.matmul(&inv_freq)?;
    Ok((angles.cos()?, angles.sin()?))
}
